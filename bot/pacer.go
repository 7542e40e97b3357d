package bot

import (
	"context"
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
}

// DefaultPace returns Telegram's limits.
func DefaultPace() PaceConfig {
	return PaceConfig{Global: 30, PrivatePerSec: 1, GroupPerMinute: 20, Burst: 3}
}

// pacer spaces outgoing calls so the bot never trips Telegram's flood limits,
// and holds back a chat that Telegram told to wait (429 retry_after).
type pacer struct {
	cfg    PaceConfig
	global *rate.Limiter

	mu    sync.Mutex
	chats map[int64]*chatPace
}

type chatPace struct {
	lim          *rate.Limiter // nil when pacing is disabled
	blockedUntil time.Time
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
	p := &pacer{cfg: cfg, chats: make(map[int64]*chatPace)}
	if !cfg.Disabled {
		p.global = rate.NewLimiter(rate.Limit(cfg.Global), int(cfg.Global))
	}
	return p
}

func (p *pacer) chat(chatID int64) *chatPace {
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := p.chats[chatID]
	if cp != nil {
		return cp
	}
	if len(p.chats) >= sweepAt {
		p.sweepLocked()
	}
	cp = &chatPace{}
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

// sweepLocked forgets chats whose limiter is full again and that are not
// blocked: they behave exactly like a fresh entry.
func (p *pacer) sweepLocked() {
	now := time.Now()
	for id, cp := range p.chats {
		idle := cp.lim == nil || cp.lim.TokensAt(now) >= float64(p.cfg.Burst)
		if idle && now.After(cp.blockedUntil) {
			delete(p.chats, id)
		}
	}
}

// wait blocks until a message may go to chatID.
func (p *pacer) wait(ctx context.Context, chatID int64) error {
	cp := p.chat(chatID)
	p.mu.Lock()
	until := cp.blockedUntil
	p.mu.Unlock()
	if d := time.Until(until); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	if cp.lim != nil {
		if err := cp.lim.Wait(ctx); err != nil {
			return err
		}
	}
	if p.global != nil {
		return p.global.Wait(ctx)
	}
	return nil
}

// block holds chatID back for d, as Telegram asked with retry_after.
func (p *pacer) block(chatID int64, d time.Duration) {
	cp := p.chat(chatID)
	until := time.Now().Add(d)
	p.mu.Lock()
	if until.After(cp.blockedUntil) {
		cp.blockedUntil = until
	}
	p.mu.Unlock()
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
