// Package bot is the only importer of the Telegram SDK. It follows an update
// from Telegram to the reply: Poller (getUpdates) → durable Inbox (committed
// before the offset is acknowledged) → Dispatcher (per-chat order, chats in
// parallel) → Router (middleware, roles, handler) → Outbox (paced, retried).
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot/tghtml"
)

// InboxEntry is one update as Telegram sent it.
type InboxEntry = valex.InboxEntry

// Inbox stores updates durably so that none is lost in a crash and none is
// handled twice. The store implements it.
type Inbox interface {
	// InboxAddDone stores a new batch and marks the ids of done handled at
	// at, in one transaction (the group commit of the poller and handlers).
	InboxAddDone(batch []InboxEntry, done []int, at time.Time) (added []InboxEntry, err error)
	InboxHighWater() (int, error)
	InboxPending() ([]InboxEntry, error)
	InboxDone(ids []int, at time.Time) error
}

// Translator renders a locale key in a language.
type Translator interface {
	T(lang, key string, args map[string]any) string
}

// Config tunes the bot core; zero values take the defaults.
type Config struct {
	PollTimeout    time.Duration // long-polling timeout, default 30s
	AllowedUpdates []string      // default: DefaultAllowedUpdates
	Concurrency    int           // chats handled at once, default 1024
	// MaxPending is the most updates taken from Telegram and not yet
	// finished (handlers and their deferred work, such as queued AI
	// answers), default DefaultMaxPending. At the limit the poller waits:
	// the rest of a flood stays at Telegram, which keeps updates for a
	// day, instead of in memory.
	MaxPending      int
	ShutdownTimeout time.Duration // in-flight handlers get this long after a stop, default 10s
	// DoneFlush is how long a handled id may wait for the poller's next
	// commit to take it along before it is committed on its own, default
	// 50ms. Longer means fewer commits; after a crash the updates handled in
	// that window are handled again.
	DoneFlush time.Duration
	// Pseudonyms stand for users in log lines (never the Telegram id).
	Pseudonyms valex.Pseudonymizer
}

// DefaultMaxPending is Config.MaxPending's default: about 18 MB of parsed
// updates and queued work. It is a bound for floods and outage backlogs,
// not for ordinary peaks: at the limit nothing more is taken, a payment's
// pre-checkout query, /cancel and the stop button included, so it sits
// well above what the AI slots can work off in a few minutes.
const DefaultMaxPending = 16384

// DefaultAllowedUpdates are the update types Valex handles.
// stopped_message_generation is the stop button of a streamed answer.
var DefaultAllowedUpdates = []string{"message", "callback_query", "pre_checkout_query", "my_chat_member", "stopped_message_generation"}

// Bot receives updates and hands them to the router.
type Bot struct {
	client *Client
	out    *Outbox
	inbox  Inbox
	router *Router
	tr     Translator
	clock  valex.Clock
	log    zerolog.Logger
	cfg    Config
	disp   *Dispatcher
	done   chan handled // updates to record as handled, for commitDone
	adds   chan addReq  // the poller's batches, committed by commitDone

	mu   sync.Mutex    // guards the in-flight count (defer.go)
	open int           // updates dispatched and not finished
	idle chan struct{} // closed when open drops to 0 while a stop waits
	room chan struct{} // closed when there is room again while the poller waits (roomLocked)
	// full is set when the poller found no room at all: it then waits
	// until batchRoom is free, not just one place.
	full bool
	// waitingOnUser counts the open updates whose work waits on the user
	// (Request.WaitsOnUser): MaxPending leaves them out.
	waitingOnUser int
	sealed        bool // done is closed: updates finishing now stay pending

	lastPoll     atomic.Int64 // unix nanoseconds of the last successful getUpdates
	waiting      atomic.Bool  // the poller waits for room (MaxPending)
	received     atomic.Int64
	pollFailures atomic.Int64
}

// New assembles a bot.
func New(client *Client, out *Outbox, inbox Inbox, router *Router, tr Translator, clock valex.Clock, log zerolog.Logger, cfg Config) *Bot {
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 30 * time.Second
	}
	if cfg.AllowedUpdates == nil {
		cfg.AllowedUpdates = DefaultAllowedUpdates
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.DoneFlush <= 0 {
		cfg.DoneFlush = 50 * time.Millisecond
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	return &Bot{
		client: client, out: out, inbox: inbox, router: router, tr: tr, clock: clock, log: log, cfg: cfg,
		disp: NewDispatcher(cfg.Concurrency),
		done: make(chan handled, 4096),
		adds: make(chan addReq),
	}
}

// ErrUnauthorized means Telegram refused the token: running on is pointless.
var ErrUnauthorized = errors.New("telegram refused the bot token")

// ErrConflict means another poller or a webhook uses the token (409):
// polling on would only fight it.
var ErrConflict = errors.New("another bot instance or a webhook is using this token: stop the other instance, or remove the webhook with valex run --delete-webhook")

// Run replays the inbox, then polls until ctx is cancelled. On the way out it
// stops polling and gives the updates in flight — handlers and the work they
// deferred (Request.Defer) — up to ShutdownTimeout to finish. Then it cancels
// the handlers; deferred work is stopped by its owner on the same deadline.
// What finished is committed as handled; the rest stays pending and is
// handled again at the next start. Handlers run on a context that outlives
// ctx by that deadline, so a reply being written when the stop came still
// goes out.
func (b *Bot) Run(ctx context.Context) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var committer sync.WaitGroup
	committer.Add(1)
	go func() { defer committer.Done(); b.commitDone() }()

	err := b.replay(work)
	if err == nil {
		err = b.poll(ctx, work)
	}

	// Graceful stop: wait for what is in flight up to the deadline, then
	// cancel the handlers.
	if !b.waitIdle(b.cfg.ShutdownTimeout) {
		b.log.Warn().Int("chats", b.disp.Busy()).Int("updates", b.inFlight()).Msg("shutdown deadline passed, cancelling handlers")
		cancelWork()
		b.disp.Wait()
		// The owner of deferred work stops it on the same deadline and
		// says how each piece ended: wait for that, briefly.
		if !b.waitIdle(deferredSettle) {
			b.log.Warn().Int("updates", b.inFlight()).Msg("deferred work still running after the shutdown deadline: its updates stay pending")
		}
	}
	b.seal()
	committer.Wait()
	b.disp.Close() // nothing is dispatched any more: the idle workers exit
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// replay dispatches what a previous run stored but did not finish.
func (b *Bot) replay(ctx context.Context) error {
	pending, err := b.inbox.InboxPending()
	if err != nil {
		return fmt.Errorf("load pending updates: %w", err)
	}
	if len(pending) > 0 {
		b.log.Info().Int("updates", len(pending)).Msg("replaying updates left by the last run")
	}
	for _, e := range pending {
		b.dispatch(ctx, e)
	}
	return nil
}

// poll is the long-polling loop. A batch is committed to the inbox before
// the next getUpdates acknowledges it with the new offset.
func (b *Bot) poll(ctx, work context.Context) error {
	hw, err := b.inbox.InboxHighWater()
	if err != nil {
		return fmt.Errorf("load inbox high-water mark: %w", err)
	}
	offset := hw + 1
	backoff := time.Duration(0)
	timeout := int(b.cfg.PollTimeout / time.Second)
	for ctx.Err() == nil {
		room, err := b.waitForRoom(ctx)
		if err != nil {
			break
		}
		raws, err := b.client.GetUpdates(ctx, offset, timeout, min(room, 100), b.cfg.AllowedUpdates)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			var ae *APIError
			if errors.As(err, &ae) && (ae.Code == 401 || ae.Code == 404) {
				return ErrUnauthorized
			}
			if errors.As(err, &ae) && ae.Code == 409 {
				return ErrConflict // retrying cannot help: another poller or a webhook holds the token
			}
			b.pollFailures.Add(1)
			backoff = nextBackoff(backoff)
			b.log.Warn().Err(err).Int64("backoff_ms", backoff.Milliseconds()).Msg("getUpdates failed")
			if sleep(ctx, backoff) != nil {
				break
			}
			continue
		}
		backoff = 0
		b.lastPoll.Store(time.Now().UnixNano())
		b.received.Add(int64(len(raws)))
		if len(raws) == 0 {
			continue
		}
		batch := make([]InboxEntry, 0, len(raws))
		parsed := make(map[int]*Update, len(raws)) // parsed once, here
		for _, raw := range raws {
			e, u, err := entryOf(raw, b.client.Self().Username)
			if err != nil {
				b.log.Error().Err(err).Msg("update without update_id skipped")
				continue
			}
			batch = append(batch, e)
			if u != nil {
				parsed[e.ID] = u
			}
			if e.ID >= offset {
				offset = e.ID + 1
			}
		}
		added, err := b.addWithRetry(ctx, batch)
		if err != nil {
			break // only a stop interrupts the retries; the batch comes again next run
		}
		for _, e := range added {
			b.dispatchParsed(work, e, parsed[e.ID])
		}
	}
	return ctx.Err()
}

// addWithRetry commits a batch, retrying until it is stored or ctx ends: an
// update must never be acknowledged before it is on disk.
func (b *Bot) addWithRetry(ctx context.Context, batch []InboxEntry) ([]InboxEntry, error) {
	backoff := time.Duration(0)
	for {
		added, err := b.commitAdd(ctx, batch)
		if err == nil {
			return added, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		backoff = nextBackoff(backoff)
		b.log.Error().Err(err).Int64("backoff_ms", backoff.Milliseconds()).Msg("store updates")
		if err := sleep(ctx, backoff); err != nil {
			return nil, err
		}
	}
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return 500 * time.Millisecond
	}
	if d *= 2; d > 30*time.Second {
		d = 30 * time.Second
	}
	return d
}

// entryOf reads a polled update: its inbox entry (id, and the sender whose
// key seals it) and, when it parses, the update itself, so that it is
// decoded once. One that does not parse is still stored by its head and
// reported unreadable when dispatched, like before.
func entryOf(raw []byte, botUsername string) (InboxEntry, *Update, error) {
	u, err := parseUpdate(raw, botUsername)
	if err != nil {
		id, sender, err := headOf(raw)
		return InboxEntry{ID: id, Payload: raw, UserID: sender}, nil, err
	}
	sender := u.From.ID
	if sender == 0 {
		sender = senderOf(raw) // a kind whose sender the parse does not read
	}
	return InboxEntry{ID: u.ID, Payload: raw, UserID: sender}, u, nil
}

// dispatch parses an update and queues it behind its chat's earlier updates.
func (b *Bot) dispatch(ctx context.Context, e InboxEntry) { b.dispatchParsed(ctx, e, nil) }

// dispatchParsed queues an update whose payload the poller has parsed
// already (u), or parses it when u is nil (an update replayed from the
// inbox).
func (b *Bot) dispatchParsed(ctx context.Context, e InboxEntry, u *Update) {
	f := b.begin(e.ID)
	if u == nil {
		var err error
		if u, err = parseUpdate(e.Payload, b.client.Self().Username); err != nil {
			b.log.Error().Err(err).Int("update_id", e.ID).Msg("unreadable update skipped")
			f.end(true)
			return
		}
	}
	key := u.ChatID
	if key == 0 {
		key = u.From.ID
	}
	if u.Kind == KindPreCheckout {
		// Telegram waits 10 seconds for the answer: a checkout never queues
		// behind the user's chat (a long AI answer, say). Its key is its own.
		key = math.MinInt64 + int64(u.ID)
	}
	b.disp.Dispatch(key, func() { b.process(ctx, u, f) })
}

// process runs one update through the router and answers its error, if any.
// This is the one place where handler errors are logged and replied to.
// The update is finished when the handler has returned and the work it
// deferred has ended (defer.go); only then is it marked handled.
func (b *Bot) process(ctx context.Context, u *Update, f *inflight) {
	defer func() {
		// An update whose handler was cut off by the shutdown deadline stays
		// pending and is handled again at the next start.
		f.end(ctx.Err() == nil)
	}()
	r := &Request{Update: u, Lang: "en", flight: f}
	err := b.safeHandle(ctx, r)
	if err == nil {
		if u.Kind == KindCallback {
			// Every button press is answered, or the client shows a spinner.
			if err := b.out.Answer(ctx, u.CallbackID, r.Toast, false); err != nil {
				b.log.Warn().Err(err).Int("update_id", u.ID).Msg("answer callback")
			}
		}
		return
	}
	key, args := "error.generic", map[string]any(nil)
	if ue, ok := valex.AsUserError(err); ok {
		key, args = ue.Key, ue.Args
		b.log.Debug().Int("update_id", u.ID).Str("error_key", key).Msg("user error")
	} else {
		b.log.Error().Str("error", b.cfg.Pseudonyms.Redact(err.Error(), u.ChatID, u.From.ID)).Int("update_id", u.ID).Str("chat", b.cfg.Pseudonyms.Chat(u.ChatID)).Str("user", b.cfg.Pseudonyms.User(u.From.ID)).Msg("handler failed")
	}
	text := b.tr.T(r.Lang, key, args)
	var replyErr error
	switch {
	case u.Kind == KindCallback:
		replyErr = b.out.Answer(ctx, u.CallbackID, tghtml.Strip(text), true)
	case u.Kind == KindPreCheckout:
		replyErr = b.out.AnswerPreCheckout(ctx, u.PreCheckoutID, false, tghtml.Strip(text))
	case u.ChatID != 0:
		_, replyErr = b.out.Send(ctx, Message{ChatID: u.ChatID, ThreadID: u.ThreadID, Text: text})
	}
	if replyErr != nil {
		b.log.Error().Str("error", b.cfg.Pseudonyms.Redact(replyErr.Error(), u.ChatID)).Int("update_id", u.ID).Str("chat", b.cfg.Pseudonyms.Chat(u.ChatID)).Msg("error reply not delivered")
	}
}

// safeHandle is the last line of defence: even a panic in middleware leaves
// the dispatcher running.
func (b *Bot) safeHandle(ctx context.Context, r *Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic outside handler: %v", p)
		}
	}()
	return b.router.Handle(ctx, r)
}

// handled is an update to record as handled. With committed set, the
// commit is wanted at once and committed is closed after it: the end of
// deferred work (an AI answer just shown) waits for it, because until then a
// crash would replay the update and show the answer twice.
type handled struct {
	id        int
	committed chan struct{}
}

// addReq is a batch from the poller for commitDone to store.
type addReq struct {
	batch []InboxEntry
	reply chan addResult
}

type addResult struct {
	added []InboxEntry
	err   error
}

// commitAdd stores a batch through commitDone, which takes the handled ids
// waiting for a commit along in the same transaction.
func (b *Bot) commitAdd(ctx context.Context, batch []InboxEntry) ([]InboxEntry, error) {
	req := addReq{batch: batch, reply: make(chan addResult, 1)}
	select {
	case b.adds <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res := <-req.reply // the commit runs to its end even if ctx ends meanwhile
	return res.added, res.err
}

// commitDone is the inbox's one writer: it groups the handled update ids
// and the poller's batches into few transactions, so the per-update cost of
// durability is a share of one commit, not one commit. A batch from the
// poller takes every id waiting along; ids no batch took are committed
// DoneFlush after the first of them arrived, or at once when an update
// waits for its commit (deferred work that has just shown its answer).
func (b *Bot) commitDone() {
	var ids []int
	var waiting []chan struct{}
	var due <-chan time.Time // the flush of ids no batch took; nil when none wait
	commit := func(batch []InboxEntry) ([]InboxEntry, error) {
		if len(batch) == 0 && len(ids) == 0 {
			return nil, nil
		}
		added, err := b.inbox.InboxAddDone(batch, ids, b.clock.Now())
		if err != nil && len(ids) > 0 {
			if len(batch) > 0 {
				return nil, err // the poller retries, and takes the ids along again
			}
			b.log.Error().Err(err).Int("updates", len(ids)).Msg("record handled updates")
		}
		for _, c := range waiting {
			close(c)
		}
		ids, waiting, due = ids[:0], waiting[:0], nil
		return added, err
	}
	for {
		select {
		case h, ok := <-b.done:
			if !ok {
				_, _ = commit(nil)
				return
			}
			ids = append(ids, h.id)
			if due == nil {
				due = time.After(b.cfg.DoneFlush)
			}
			now := h.committed != nil
			if now {
				waiting = append(waiting, h.committed)
				ids, waiting = b.takeQueued(ids, waiting)
			}
			if now || len(ids) >= 512 {
				_, _ = commit(nil)
			}
		case req := <-b.adds:
			ids, waiting = b.takeQueued(ids, waiting)
			added, err := commit(req.batch)
			req.reply <- addResult{added, err}
		case <-due:
			_, _ = commit(nil)
		}
	}
}

// takeQueued appends what is already queued on b.done, without waiting.
func (b *Bot) takeQueued(ids []int, waiting []chan struct{}) ([]int, []chan struct{}) {
	for {
		select {
		case h, ok := <-b.done:
			if !ok {
				return ids, waiting // commitDone sees the close on its next receive
			}
			ids = append(ids, h.id)
			if h.committed != nil {
				waiting = append(waiting, h.committed)
			}
		default:
			return ids, waiting
		}
	}
}

// Busy returns how many chats have updates queued or being handled.
func (b *Bot) Busy() int { return b.disp.Busy() }

// updateHead is what the poller reads of an update: its id and the sender
// of the kinds Valex receives, in one decoding pass.
type updateHead struct {
	UpdateID         int        `json:"update_id"`
	Message          *fromField `json:"message"`
	EditedMessage    *fromField `json:"edited_message"`
	CallbackQuery    *fromField `json:"callback_query"`
	PreCheckoutQuery *fromField `json:"pre_checkout_query"`
	MyChatMember     *fromField `json:"my_chat_member"`
}

type fromField struct {
	From struct {
		ID int64 `json:"id"`
	} `json:"from"`
}

// headOf returns an update's id and the id in the "from" of its one object
// (message, callback_query, …), 0 when it has none. The sender's key seals
// the stored update, so erasing the sender makes it unreadable.
func headOf(raw []byte) (id int, sender int64, err error) {
	var h updateHead
	if err := json.Unmarshal(raw, &h); err != nil {
		return 0, 0, err
	}
	for _, f := range []*fromField{h.Message, h.EditedMessage, h.CallbackQuery, h.PreCheckoutQuery, h.MyChatMember} {
		if f != nil && f.From.ID != 0 {
			return h.UpdateID, f.From.ID, nil
		}
	}
	return h.UpdateID, senderOf(raw), nil // a kind not listed above
}

// senderOf returns the id in the "from" of an update's one object (message,
// callback_query, …), or 0. It reads the raw JSON because the inbox stores
// updates before they are parsed.
func senderOf(raw []byte) int64 {
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return 0
	}
	for name, v := range fields {
		if name == "update_id" || len(v) == 0 || v[0] != '{' {
			continue
		}
		var obj struct {
			From struct {
				ID int64 `json:"id"`
			} `json:"from"`
		}
		if json.Unmarshal(v, &obj) == nil && obj.From.ID != 0 {
			return obj.From.ID
		}
	}
	return 0
}

// waitForRoom returns how many more updates may be taken (MaxPending less
// those in flight): below the limit, at once. At the limit it waits until
// half of them have ended (batchRoom): the updates wait at Telegram
// meanwhile, and a poll for every few that end would cost a round trip and
// a commit each.
func (b *Bot) waitForRoom(ctx context.Context) (int, error) {
	for {
		b.mu.Lock()
		room := b.roomLeftLocked()
		if room > 0 && (!b.full || room >= b.batchRoom()) {
			b.full = false
			b.mu.Unlock()
			return room, nil
		}
		b.full = true
		if b.room == nil {
			b.room = make(chan struct{})
		}
		wake := b.room
		b.mu.Unlock()
		b.waiting.Store(true)
		select {
		case <-wake:
		case <-ctx.Done():
		}
		b.waiting.Store(false)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

// roomLeftLocked is how many more updates may be in flight: MaxPending less
// those open, not counting those waiting on their user. b.mu is held.
func (b *Bot) roomLeftLocked() int {
	return b.cfg.MaxPending - (b.open - b.waitingOnUser)
}

// batchRoom is the room the poller waits for: half of MaxPending, and at
// least a full getUpdates batch.
func (b *Bot) batchRoom() int { return max(min(100, b.cfg.MaxPending), b.cfg.MaxPending/2) }

// WaitingForRoom reports whether the poller is holding off because
// MaxPending updates are in flight: it is healthy, only busy.
func (b *Bot) WaitingForRoom() bool { return b.waiting.Load() }

// LastPoll is when getUpdates last succeeded (zero before the first
// success): readiness fails when it is older than twice the poll timeout.
func (b *Bot) LastPoll() time.Time {
	if n := b.lastPoll.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Received counts the updates getUpdates returned.
func (b *Bot) Received() int64 { return b.received.Load() }

// PollFailures counts the failed getUpdates calls.
func (b *Bot) PollFailures() int64 { return b.pollFailures.Load() }
