package bot

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// PaceConfig sets how fast the outbox may talk to Telegram. The defaults are
// Telegram's published limits: about 30 messages a second overall, one a
// second in a private chat and 20 a minute in a group.
type PaceConfig struct {
	Disabled       bool    // benchmarks only: no rate limits (429s are still honoured)
	Global         float64 // messages per second over all chats
	PrivatePerSec  float64 // messages per second in one private chat
	GroupPerMinute float64 // messages per minute in one group
	Burst          int     // how many messages a chat may send at once before pacing starts
	// PaidPerSec paces paid broadcasts (OutboxConfig.PaidBroadcast), which
	// Telegram lets past the global limit up to 1,000 a second.
	PaidPerSec float64
}

// DefaultPace returns Telegram's limits.
func DefaultPace() PaceConfig {
	return PaceConfig{Global: 30, PrivatePerSec: 1, GroupPerMinute: 20, Burst: 3, PaidPerSec: 1000}
}

// lane is the limit a call is paced by.
type lane int

const (
	// laneReply takes the global limit first come, first served: replies,
	// edits, everything but broadcasts.
	laneReply lane = iota
	// laneBroadcast takes only the global limit's spare capacity: while a
	// reply waits for a token, no broadcast takes one (pacer.spare).
	laneBroadcast
	// lanePaid is paid broadcasts: their own limit, PaidPerSec, leaving the
	// global one to replies.
	lanePaid
)

// ErrFloodDeadline means Telegram's flood waits (429 retry_after) for a
// call would run past OutboxConfig.FloodDeadline.
var ErrFloodDeadline = errors.New("telegram flood wait outlasts the deadline")

// pacer spaces outgoing calls so the bot never trips Telegram's flood limits,
// and holds calls back where Telegram told us to wait (429 retry_after): a
// chat's calls for a 429 about that chat, every call for a 429 about none.
type pacer struct {
	cfg    PaceConfig
	global *rate.Limiter
	paid   *rate.Limiter // paid broadcasts
	// spareMu makes a broadcast's look at the global bucket and its take
	// one step, so two broadcast messages never take the token kept back.
	spareMu sync.Mutex

	mu        sync.Mutex
	chats     map[int64]*chatPace
	heldUntil time.Time // the latest retry_after of a call without a chat
}

type chatPace struct {
	lim       *rate.Limiter // nil when pacing is disabled
	heldUntil time.Time     // the latest retry_after Telegram gave for the chat
	// turn lets one call to the chat be in flight at a time, so no call
	// starts while an earlier one's answer, maybe a 429, is on its way.
	turn  chan struct{}
	users int // turns taken or waited for; the sweep keeps the chat while > 0
}

// sweepAt is how many chats the pacer remembers before it forgets idle ones.
const sweepAt = 10000

func newPacer(cfg PaceConfig) *pacer {
	d := DefaultPace()
	if cfg.Global <= 0 {
		cfg.Global = d.Global
	}
	if cfg.PrivatePerSec <= 0 {
		cfg.PrivatePerSec = d.PrivatePerSec
	}
	if cfg.GroupPerMinute <= 0 {
		cfg.GroupPerMinute = d.GroupPerMinute
	}
	if cfg.Burst <= 0 {
		cfg.Burst = d.Burst
	}
	if cfg.PaidPerSec <= 0 {
		cfg.PaidPerSec = d.PaidPerSec
	}
	p := &pacer{cfg: cfg, chats: make(map[int64]*chatPace)}
	if !cfg.Disabled {
		// A second's worth of calls may go at once; at least one, or a
		// rate under 1/s would refuse every call ("exceeds burst").
		p.global = rate.NewLimiter(rate.Limit(cfg.Global), max(1, min(int(cfg.Global), 1000)))
		// Paid broadcasts' 1,000 a second is Telegram's hard ceiling: a
		// twentieth of a second's worth at once, so no second goes past it
		// by more than that.
		p.paid = rate.NewLimiter(rate.Limit(cfg.PaidPerSec), max(1, int(cfg.PaidPerSec/20)))
	}
	return p
}

// chatLocked returns chatID's entry, creating it.
func (p *pacer) chatLocked(chatID int64) *chatPace {
	cp := p.chats[chatID]
	if cp != nil {
		return cp
	}
	if len(p.chats) >= sweepAt {
		p.sweepLocked()
	}
	cp = &chatPace{turn: make(chan struct{}, 1)}
	if !p.cfg.Disabled {
		// Group and supergroup ids are negative in the Bot API.
		r := rate.Limit(p.cfg.PrivatePerSec)
		if chatID < 0 {
			r = rate.Limit(p.cfg.GroupPerMinute / 60)
		}
		cp.lim = rate.NewLimiter(r, p.cfg.Burst)
	}
	p.chats[chatID] = cp
	return cp
}

// sweepLocked forgets chats that nobody is calling, whose limiter is full
// again and that are not held: they behave exactly like a fresh entry.
func (p *pacer) sweepLocked() {
	now := time.Now()
	for id, cp := range p.chats {
		idle := cp.lim == nil || cp.lim.TokensAt(now) >= float64(p.cfg.Burst)
		if idle && cp.users == 0 && now.After(cp.heldUntil) {
			delete(p.chats, id)
		}
	}
}

// turn is one call's hold on its chat: taken by enter, given back by leave.
type turn struct {
	p    *pacer
	cp   *chatPace // nil for a call without a chat
	lane lane
}

// enter waits for chatID's turn (0: a call without a chat, which takes none).
func (p *pacer) enter(ctx context.Context, chatID int64, ln lane) (*turn, error) {
	t := &turn{p: p, lane: ln}
	if chatID == 0 {
		return t, nil
	}
	p.mu.Lock()
	t.cp = p.chatLocked(chatID)
	t.cp.users++
	p.mu.Unlock()
	select {
	case t.cp.turn <- struct{}{}:
		return t, nil
	case <-ctx.Done():
		p.mu.Lock()
		t.cp.users--
		p.mu.Unlock()
		return nil, ctx.Err()
	}
}

// tryEnter takes chatID's turn only if it is free now: nil while another
// call to the chat has it (a draft is then skipped, not queued behind it).
func (p *pacer) tryEnter(chatID int64) *turn {
	p.mu.Lock()
	cp := p.chatLocked(chatID)
	cp.users++
	p.mu.Unlock()
	select {
	case cp.turn <- struct{}{}:
		return &turn{p: p, cp: cp, lane: laneReply}
	default:
		p.mu.Lock()
		cp.users--
		p.mu.Unlock()
		return nil
	}
}

// leave gives the chat's turn to the next call.
func (t *turn) leave() {
	if t.cp == nil {
		return
	}
	<-t.cp.turn
	t.p.mu.Lock()
	t.cp.users--
	t.p.mu.Unlock()
}

// wait blocks until the next attempt may be made: past every hold on the
// call, then, when paced, within the rate limits. A hold that ends after
// deadline returns ErrFloodDeadline at once rather than sleeping in vain.
func (t *turn) wait(ctx context.Context, paced bool, deadline time.Time) error {
	for {
		until := t.heldUntil()
		if d := time.Until(until); d > 0 {
			if until.After(deadline) {
				return ErrFloodDeadline
			}
			if err := sleep(ctx, d); err != nil {
				return err
			}
			continue // a newer 429 may have moved the hold meanwhile
		}
		if !paced || t.cp == nil {
			return nil
		}
		if t.cp.lim != nil {
			if err := t.cp.lim.Wait(ctx); err != nil {
				return err
			}
		}
		if err := t.p.take(ctx, t.lane); err != nil {
			return err
		}
		if !time.Now().Before(t.heldUntil()) {
			return nil
		}
		// A 429 without a chat came while we waited for the limiters.
	}
}

// take waits for a token of the lane's limit (none when pacing is off).
func (p *pacer) take(ctx context.Context, ln lane) error {
	switch {
	case p.global == nil:
		return nil
	case ln == lanePaid:
		return p.paid.Wait(ctx)
	case ln == laneBroadcast:
		return p.spare(ctx)
	}
	return p.global.Wait(ctx)
}

// spare takes a global token that no reply is waiting for, and leaves one
// in the bucket for the next reply. A reply books its token ahead with
// Wait, which takes the bucket below one whole token until the reply's
// moment has come; a broadcast takes a token only from a bucket holding
// two (one when the bucket holds no more) and never books ahead. So
// however many broadcast messages are queued, a reply finds a token at
// once, or waits at most one token's interval (1/30 s at Telegram's
// limit) behind other replies; the broadcast still gets every token no
// reply needs. The token kept back also means a broadcast starting on an
// idle bot sends one message fewer in its first burst than the bucket
// holds, a margin against a Telegram that counts a little differently.
func (p *pacer) spare(ctx context.Context) error {
	need := 1 + min(1, float64(p.global.Burst()-1))
	for {
		now := time.Now()
		p.spareMu.Lock()
		tokens := p.global.TokensAt(now)
		ok := tokens >= need && p.global.AllowN(now, 1)
		p.spareMu.Unlock()
		if ok {
			return nil
		}
		// Sleep until the bucket is full enough again; a reply booking a
		// token meanwhile sends us back to sleep.
		d := time.Duration((need - tokens) / float64(p.global.Limit()) * float64(time.Second))
		if err := sleep(ctx, max(d, time.Millisecond)); err != nil {
			return err
		}
	}
}

// heldUntil is when the holds on this call end.
func (t *turn) heldUntil() time.Time {
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	until := t.p.heldUntil
	if t.cp != nil && t.cp.heldUntil.After(until) {
		until = t.cp.heldUntil
	}
	return until
}

// hold makes the call's chat, or every call when it has no chat, wait d
// from now, as Telegram asked with retry_after.
func (t *turn) hold(d time.Duration) {
	until := time.Now().Add(d)
	t.p.mu.Lock()
	defer t.p.mu.Unlock()
	at := &t.p.heldUntil
	if t.cp != nil {
		at = &t.cp.heldUntil
	}
	if until.After(*at) {
		*at = until
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
