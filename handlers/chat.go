package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// chat answers a plain message that is not part of a dialog when the AI
// aggregator is not wired in (RegisterAI routes text to AI.Text instead).
func (h *Handlers) chat(ctx context.Context, r *bot.Request) error {
	if _, err := h.registered(r); err != nil {
		return err
	}
	return h.reply(ctx, r, h.t(r, "chat.unavailable", nil), nil)
}

// AIModels is the part of the AI router the aggregator uses.
type AIModels interface {
	ChatStream(ctx context.Context, req ai.ChatRequest, onDelta func(string)) (ai.ChatResult, error)
	Image(ctx context.Context, model, prompt string) ([]byte, ai.Usage, error)
	Transcribe(ctx context.Context, model string, audio []byte, filename string) (string, ai.Usage, error)
	Speech(ctx context.Context, model, text string) ([]byte, string, ai.Usage, error)
	Models(c ai.Capability, plan string) []ai.Model
	Model(id string) (ai.Model, bool)
	Cost(m ai.Model, u ai.Usage) int64
}

// AIStore keeps conversations, AI settings and the usage ledger, and tells
// why AI processing is not allowed (a restriction is not a missing consent).
type AIStore interface {
	ConsentState(userID int64) (valex.ConsentState, error)
	AISettings(userID int64) (valex.AISettings, error)
	UpdateAISettings(userID int64, fn func(*valex.AISettings)) (valex.AISettings, error)
	RecentTurns(userID int64, conv uint64, budget int) (turns []valex.Turn, dropped bool, err error)
	SaveExchange(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage) error
	UsageTotals(userID int64, at time.Time) (day, month []valex.UsageTotal, err error)
}

// ConsentChecker answers whether a user's requests may go to AI providers,
// and records the user's consent.
type ConsentChecker interface {
	CanUseAI(userID int64) (bool, error)
	GrantAI(userID int64, at time.Time, policyVersion string) error
}

// AIOutbox is the part of the outbox the aggregator uses.
type AIOutbox interface {
	Send(ctx context.Context, m bot.Message) (int, error)
	Edit(ctx context.Context, chatID int64, messageID int, text string, kb [][]bot.Button) error
	Delete(ctx context.Context, chatID int64, messageID int) error
	SendFile(ctx context.Context, f bot.FileMessage) (int, error)
	Typing(ctx context.Context, chatID int64, action string) error
}

// Downloader fetches a file a user sent (bot.Client).
type Downloader interface {
	Download(ctx context.Context, fileID string, max int64) ([]byte, error)
}

// Mode is a system-prompt preset.
type Mode struct {
	ID     string // [a-z0-9_-]; shown through the locale key "ai.mode.<id>" when there is one
	Title  string // shown when the locales have no name for ID
	Prompt string
}

// AIOptions tune the aggregator; zero values take the defaults.
type AIOptions struct {
	Modes []Mode // the first is the default
	// Plan returns a user's plan; nil means everyone is on "free".
	Plan func(userID int64) string
	// ImageConfirmAbove: an image whose price is above this many
	// micro-credits is generated only after the user confirms the price.
	ImageConfirmAbove int64
	HistoryTokens     int           // most history tokens sent with a turn, default 8000
	AnswerTokens      int           // context tokens kept free for the answer, default 1024
	EditInterval      time.Duration // least time between edits of a streamed answer, default 1s
	GroupEditInterval time.Duration // the same in groups (20 messages a minute), default 3s
	MaxSpeechChars    int           // longest text read out, default 4000
	// PolicyVersion is the privacy policy version a consent is given to.
	PolicyVersion func() string
	BotUsername   string // stripped from group messages that mention the bot
}

// AIDeps are what the aggregator needs besides Handlers.
type AIDeps struct {
	Models  AIModels
	Store   AIStore
	Consent ConsentChecker
	Out     AIOutbox
	Files   Downloader
	Options AIOptions
}

// AI is the AI aggregator: chat turns streamed into a message, vision,
// images, voice in and out, and the commands around them.
//
// Every call to a provider runs as a job outside the per-chat dispatcher, so
// that /cancel is handled while a generation runs. A user's jobs still run
// one at a time in the order they came: a new message waits for the answer
// before it; /cancel stops the running job and those waiting, keeping what
// was shown. StopUser (consent withdrawn, AI processing restricted, account
// erased) stops them too, but keeps nothing.
type AI struct {
	h       *Handlers
	models  AIModels
	store   AIStore
	consent ConsentChecker
	out     AIOutbox
	files   Downloader
	opt     AIOptions

	root context.Context // jobs run on it; Shutdown cancels it
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	jobs    map[int64][]*aiJob // per user: the running job, then those waiting
	pending map[int64]pendingImage
	// awaiting holds, per user, the message that made the bot ask for
	// consent, so that it is answered as soon as the user agrees instead of
	// being lost. In memory only: after a restart the user sends it again.
	awaiting map[int64]awaitingMsg
	seq      uint64

	// stops counts StopUser calls; stoppedAt[user] is the count at the
	// user's latest one. Work admitted (admit) before that never runs, and
	// a job admitted before it writes nothing.
	stops     uint64
	stoppedAt map[int64]uint64
	// keep orders a job's store writes against StopUser: a write holds the
	// read lock and checks the job was not stopped; StopUser stops under
	// the write lock. Once StopUser has stopped a job, nothing of it is
	// written, even if the job has not returned yet.
	keep sync.RWMutex
}

// awaitingMsg is a message held until the user agrees to the AI transfer,
// with the account it came from: a button of an erased account never
// answers it in a new one.
type awaitingMsg struct {
	r       *bot.Request
	account time.Time // the account's CreatedAt
}

type aiJob struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	ticket uint64 // a.stops when the work was admitted
}

// errStopped is the cause of a job stopped by StopUser: it keeps nothing
// and nothing is reported, the user is told by whoever stopped it.
var errStopped = errors.New("ai work stopped for privacy")

// jobKey carries a job in its context, for the writes it makes.
type jobKey struct{}

// NewAI returns the aggregator. Call Register to route its commands and
// Shutdown when the bot has stopped.
func NewAI(h *Handlers, d AIDeps) *AI {
	o := d.Options
	if o.HistoryTokens <= 0 {
		o.HistoryTokens = 8000
	}
	if o.AnswerTokens <= 0 {
		o.AnswerTokens = 1024
	}
	if o.EditInterval <= 0 {
		o.EditInterval = time.Second
	}
	if o.GroupEditInterval <= 0 {
		o.GroupEditInterval = 3 * time.Second
	}
	if o.MaxSpeechChars <= 0 {
		o.MaxSpeechChars = 4000
	}
	if o.Plan == nil {
		o.Plan = func(int64) string { return "free" }
	}
	if o.PolicyVersion == nil {
		o.PolicyVersion = func() string { return "" }
	}
	if len(o.Modes) == 0 {
		o.Modes = []Mode{{ID: "assistant", Prompt: "You are a helpful assistant."}}
	}
	a := &AI{
		h: h, models: d.Models, store: d.Store, consent: d.Consent, out: d.Out, files: d.Files, opt: o,
		jobs:      make(map[int64][]*aiJob),
		pending:   make(map[int64]pendingImage),
		awaiting:  make(map[int64]awaitingMsg),
		stoppedAt: make(map[int64]uint64),
	}
	a.root, a.stop = context.WithCancel(context.Background())
	h.Generations = a // /cancel stops a running answer
	return a
}

// admit is taken before a request's consent check: work admitted before a
// StopUser of its user is dropped by submit.
func (a *AI) admit() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stops
}

// submit queues fn as the user's next job. It runs after the user's earlier
// jobs have finished, on a context that CancelGeneration and StopUser
// cancel; a job cancelled while it waits never runs, and work admitted
// before the user's latest StopUser is not queued at all.
func (a *AI) submit(userID int64, ticket uint64, fn func(ctx context.Context)) {
	j := &aiJob{done: make(chan struct{}), ticket: ticket}
	ctx, cancel := context.WithCancelCause(a.root)
	j.ctx, j.cancel = context.WithValue(ctx, jobKey{}, j), cancel
	a.mu.Lock()
	if a.stoppedAt[userID] > ticket {
		a.mu.Unlock()
		cancel(errStopped)
		return
	}
	q := a.jobs[userID]
	var prev *aiJob
	if len(q) > 0 {
		prev = q[len(q)-1]
	}
	a.jobs[userID] = append(q, j)
	a.wg.Add(1)
	a.mu.Unlock()

	go func() {
		defer a.wg.Done()
		defer a.finish(userID, j)
		if prev != nil {
			<-prev.done // it ends soon when cancelled too, so order holds
		}
		if a.mayStart(userID, j) {
			fn(j.ctx)
		}
	}()
}

// mayStart reports whether a job whose turn has come may run: it was not
// cancelled, and no StopUser came after its work was admitted (StopUser
// cancels the running job first; the next one must not slip in before it
// is cancelled too).
func (a *AI) mayStart(userID int64, j *aiJob) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return j.ctx.Err() == nil && a.stoppedAt[userID] <= j.ticket
}

func (a *AI) finish(userID int64, j *aiJob) {
	j.cancel(nil)
	close(j.done)
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.jobs[userID]
	for i, x := range q {
		if x == j {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(a.jobs, userID)
	} else {
		a.jobs[userID] = q
	}
}

// CancelGeneration stops the user's running AI job and drops those waiting.
// It reports whether there was any.
func (a *AI) CancelGeneration(userID int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	q := a.jobs[userID]
	for _, j := range q {
		j.cancel(nil)
	}
	return len(q) > 0
}

// StopUser stops the user's AI work because the user withdrew the AI
// consent, restricted AI processing, or is being erased: it cancels the
// running job and drops those waiting, voids the message held for consent
// and the image price offer, and waits (bounded by ctx) until the running
// job has returned. Unlike /cancel nothing is kept or charged: from the
// moment StopUser returns — even when ctx ended first — no stopped job
// writes to the store, and no work admitted before it reaches a provider.
// It returns how many jobs it stopped (running and waiting).
func (a *AI) StopUser(ctx context.Context, userID int64) (stopped int) {
	a.keep.Lock() // waits for a write in progress; none starts after
	a.mu.Lock()
	a.stops++
	a.stoppedAt[userID] = a.stops
	q := append([]*aiJob(nil), a.jobs[userID]...)
	for _, j := range q {
		if j.ctx.Err() == nil {
			stopped++
		}
	}
	for _, j := range q {
		j.cancel(errStopped)
	}
	delete(a.awaiting, userID)
	delete(a.pending, userID)
	a.mu.Unlock()
	a.keep.Unlock()

	for _, j := range q {
		select {
		case <-j.done:
		case <-ctx.Done():
			a.h.Log.Warn().Str("user", a.h.IDs.User(userID)).Msg("stopped ai job still returning; it writes nothing")
			return stopped
		}
	}
	return stopped
}

// write runs fn, a store write of the job running on ctx, unless StopUser
// stopped the job: then it writes nothing and returns errStopped.
func (a *AI) write(ctx context.Context, userID int64, fn func() error) error {
	a.keep.RLock()
	defer a.keep.RUnlock()
	if j, ok := ctx.Value(jobKey{}).(*aiJob); ok && a.stoppedAt[userID] > j.ticket {
		return errStopped
	}
	return fn()
}

// stoppedForPrivacy reports whether StopUser cancelled ctx's job.
func stoppedForPrivacy(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errStopped)
}

// allowed is the gate right before every call to a provider: the job was
// not stopped and the user's consent still stands (it may have changed
// while the job waited, downloaded a file or read the history).
func (a *AI) allowed(ctx context.Context, userID int64) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	return a.consent.CanUseAI(userID)
}

// Busy is the number of AI jobs running or waiting.
func (a *AI) Busy() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, q := range a.jobs {
		n += len(q)
	}
	return n
}

// Shutdown lets running jobs finish for up to grace, then cancels them and
// waits until they have returned. Call it after the bot has stopped and
// before the store closes.
func (a *AI) Shutdown(grace time.Duration) {
	finished := make(chan struct{})
	go func() { a.wg.Wait(); close(finished) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		a.h.Log.Warn().Int("jobs", a.Busy()).Msg("ai shutdown deadline passed, cancelling generations")
	}
	a.stop()
	<-finished
}

// report answers a job's error the way the bot answers a handler's: a
// UserError as its text, anything else logged and "something went wrong".
func (a *AI) report(r *bot.Request, err error) {
	if errors.Is(err, errStopped) {
		return // the one who stopped it tells the user
	}
	key, args := "error.generic", map[string]any(nil)
	if ue, ok := valex.AsUserError(err); ok {
		key, args = ue.Key, ue.Args
	} else {
		a.h.Log.Error().Str("error", a.h.IDs.Redact(err.Error(), r.ChatID, r.From.ID)).Str("chat", a.h.IDs.Chat(r.ChatID)).Str("user", a.h.IDs.User(r.From.ID)).Msg("ai job failed")
	}
	if _, err := a.out.Send(a.root, bot.Message{ChatID: r.ChatID, Text: a.h.t(r, key, args)}); err != nil {
		a.h.Log.Error().Str("error", a.h.IDs.Redact(err.Error(), r.ChatID)).Str("chat", a.h.IDs.Chat(r.ChatID)).Msg("ai error reply not delivered")
	}
}

// providerError logs a failed AI request for the operator (the error names
// models, statuses and codes, never text) and returns what the user is told.
func (a *AI) providerError(r *bot.Request, err error) error {
	a.h.Log.Warn().Str("error", a.h.IDs.Redact(err.Error(), r.From.ID)).Str("user", a.h.IDs.User(r.From.ID)).Msg("ai request failed")
	return userError(err)
}

// userError turns a provider failure into what the user is told.
func userError(err error) error {
	var me *ai.ModelError
	switch {
	case errors.Is(err, ai.ErrNoModel):
		return valex.Errorf("ai.error.no_model", nil)
	case errors.Is(err, ai.ErrAllFailed) && errors.Is(err, context.DeadlineExceeded):
		return valex.Errorf("ai.error.timeout", nil)
	case errors.Is(err, ai.ErrAllFailed):
		return valex.Errorf("ai.error.unavailable", nil)
	case errors.As(err, &me) && me.Code == "context_length_exceeded":
		return valex.Errorf("ai.error.too_long", nil)
	case errors.As(err, &me) && (me.Status == 401 || me.Status == 403):
		return valex.Errorf("ai.error.unavailable", nil) // our key, not the user's request
	case errors.As(err, &me) && me.Status >= 400 && me.Status < 500:
		return valex.Errorf("ai.error.rejected", nil)
	case errors.As(err, &me):
		return valex.Errorf("ai.error.unavailable", nil)
	}
	return err
}

func usageOf(userID int64, u ai.Usage) valex.AIUsage {
	return valex.AIUsage{
		UserID: userID, Model: u.Model, Capability: string(u.Capability),
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, Images: u.Images,
		AudioSeconds: u.AudioSeconds, Chars: u.Chars, Cost: u.Cost, At: u.At,
	}
}

// admission is what ready found: whether the request may go to a
// provider, and the ticket to submit its job with.
type admission struct {
	ok      bool
	ticket  uint64     // from admit, taken before the consent was read
	ask     bool       // the bot asked for consent (false: AI processing is restricted)
	account valex.User // the registered user
}

// ready checks what every AI request needs: a registered user who agreed to
// the transfer of their requests to AI providers and did not restrict AI
// processing. Otherwise it says so (asking for the consent when that is
// what is missing) and reports false: nothing may reach a provider.
func (a *AI) ready(ctx context.Context, r *bot.Request) (admission, error) {
	ad := admission{ticket: a.admit()}
	u, err := a.h.registered(r)
	if err != nil {
		return ad, err
	}
	ad.account = u
	if ad.ok, err = a.consent.CanUseAI(r.From.ID); err != nil || ad.ok {
		return ad, err
	}
	st, err := a.store.ConsentState(r.From.ID)
	if err != nil {
		return ad, err
	}
	if st.Restricted(valex.RestrictAI) {
		return ad, a.h.reply(ctx, r, a.h.t(r, "ai.restricted", nil), nil)
	}
	ad.ask = true
	kb := [][]bot.Button{{{Text: a.h.t(r, "ai.consent.agree", nil), Data: cbAIConsent.Data(a.h.CB, "y", accountTag(u))}}}
	text := a.h.t(r, "ai.consent.ask", map[string]any{"Version": tghtml.Escape(a.opt.PolicyVersion())})
	_, err = a.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: text, Keyboard: kb})
	return ad, err
}

// accountTag names one account of a Telegram user in callback data: an
// account created again after an erasure has another.
func accountTag(u valex.User) string { return strconv.FormatInt(u.CreatedAt.UnixNano(), 36) }

// ConsentButton records the consent given with the button of ready's
// question. A button of an erased account records nothing (the user must
// /start again) and never answers a message held for an earlier account.
func (a *AI) ConsentButton(ctx context.Context, r *bot.Request) error {
	args := r.CallbackArgs
	if len(args) < 1 || len(args) > 2 || args[0] != "y" {
		return valex.Errorf("error.bad_callback", nil)
	}
	u, err := a.h.registered(r)
	if err != nil {
		return err
	}
	if len(args) == 2 && args[1] != accountTag(u) {
		return valex.Errorf("error.bad_callback", nil) // asked of an account since erased
	}
	ok, err := a.consent.CanUseAI(r.From.ID)
	if err != nil {
		return err
	}
	if !ok {
		if err := a.consent.GrantAI(r.From.ID, a.h.Clock.Now(), a.opt.PolicyVersion()); err != nil {
			return err
		}
		if ok, err = a.consent.CanUseAI(r.From.ID); err != nil {
			return err
		}
	}
	if !ok {
		// AI processing is restricted: consent alone is not enough.
		return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.consent.restricted", nil), nil)
	}
	a.mu.Lock()
	held, found := a.awaiting[r.From.ID]
	delete(a.awaiting, r.From.ID)
	a.mu.Unlock()
	waiting := held.r
	if !found || !held.account.Equal(u.CreatedAt) {
		waiting = nil // a message of an account that is gone is void
	}
	if waiting == nil {
		return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.consent.thanks", nil), nil)
	}
	if err := a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.consent.thanks_answering", nil), nil); err != nil {
		return err
	}
	return a.Text(ctx, waiting)
}

// Text is a plain message outside any prompt: a chat turn. (An answer to a
// prompt never gets here: the router gives it to the prompt's dialog.)
func (a *AI) Text(ctx context.Context, r *bot.Request) error {
	text := r.Text
	if !r.Private() {
		text = stripMention(text, a.opt.BotUsername)
	}
	if strings.TrimSpace(text) == "" {
		return nil // a bare mention
	}
	ad, err := a.ready(ctx, r)
	if !ad.ok || err != nil {
		if err == nil && ad.ask {
			a.mu.Lock()
			if a.stoppedAt[r.From.ID] <= ad.ticket { // not if StopUser came in between
				a.awaiting[r.From.ID] = awaitingMsg{r: r, account: ad.account.CreatedAt} // answered once the user agrees
			}
			a.mu.Unlock()
		}
		return err
	}
	a.submit(r.From.ID, ad.ticket, func(ctx context.Context) {
		if err := a.turn(ctx, r, turnInput{text: text, stored: text}); err != nil {
			a.report(r, err)
		}
	})
	return nil
}

// stripMention removes @botname from a group message (not @botname_other).
func stripMention(text, botUsername string) string {
	if botUsername == "" {
		return strings.TrimSpace(text)
	}
	mention := "@" + strings.ToLower(botUsername)
	lower := strings.ToLower(text) // ASCII-only changes: byte offsets stay valid for usernames
	var b strings.Builder
	from := 0
	for i := 0; i < len(text); {
		j := strings.Index(lower[i:], mention)
		if j < 0 {
			break
		}
		start, end := i+j, i+j+len(mention)
		if end < len(text) && isUsernameByte(text[end]) {
			i = end
			continue
		}
		b.WriteString(text[from:start])
		from, i = end, end
	}
	b.WriteString(text[from:])
	return strings.TrimSpace(b.String())
}

func isUsernameByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// turnInput is what a user said in one chat turn.
type turnInput struct {
	text   string // sent to the model
	stored string // kept in the history (a photo is not kept, only noted)
	image  []byte // JPEG for a vision model
}

// currentConv is the user's conversation: conversations are numbered from 1.
func currentConv(s valex.AISettings) uint64 { return max(s.Conversation, 1) }

// turn answers one chat turn: context assembly within the model's budget,
// the streamed answer, then history and ledger in one write.
func (a *AI) turn(ctx context.Context, r *bot.Request, in turnInput) error {
	if ok, err := a.consent.CanUseAI(r.From.ID); err != nil || !ok {
		return err // withdrawn while the job waited: nothing is sent
	}
	uid := r.From.ID
	s, err := a.store.AISettings(uid)
	if err != nil {
		return err
	}
	plan := a.opt.Plan(uid)
	capability := ai.CapChat
	if len(in.image) > 0 {
		capability = ai.CapVision
	}
	m, ok := a.modelFor(s.Model, capability, plan)
	if !ok {
		return valex.Errorf("ai.error.no_model", nil)
	}
	mode := a.mode(s.Mode)
	conv := currentConv(s)

	user := ai.Message{Role: valex.TurnUser, Text: in.text, ImageJPEG: in.image}
	window := m.ContextTokens
	if window <= 0 {
		window = 8192
	}
	budget := min(window-a.opt.AnswerTokens, a.opt.HistoryTokens) - turnTokens(mode.Prompt) - turnTokens(in.text)
	if len(in.image) > 0 {
		budget -= 765 // what a provider bills for a high-detail image
	}
	if budget < 0 {
		return valex.Errorf("ai.error.too_long", nil)
	}
	var msgs []ai.Message
	if r.Private() {
		turns, dropped, err := a.store.RecentTurns(uid, conv, budget)
		if err != nil {
			return err
		}
		msgs = make([]ai.Message, 0, len(turns)+2)
		msgs = append(msgs, ai.Message{Role: "system", Text: mode.Prompt})
		for _, t := range turns {
			msgs = append(msgs, ai.Message{Role: t.Role, Text: t.Text})
		}
		if dropped && s.TrimNotified != conv {
			if err := a.write(ctx, uid, func() error {
				_, err := a.store.UpdateAISettings(uid, func(s *valex.AISettings) { s.TrimNotified = conv })
				return err
			}); err != nil {
				return err
			}
			if _, err := a.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: a.h.t(r, "ai.chat.trimmed", nil)}); err != nil {
				return err
			}
		}
	} else {
		msgs = []ai.Message{{Role: "system", Text: mode.Prompt}}
		if r.ReplyToBot && r.ReplyText != "" && turnTokens(r.ReplyText) <= budget {
			// Groups keep no history (a private conversation must never
			// leak into a group): the bot message replied to is the context.
			msgs = append(msgs, ai.Message{Role: valex.TurnAssistant, Text: r.ReplyText})
		}
	}
	msgs = append(msgs, user)

	if ok, err := a.allowed(ctx, uid); err != nil || !ok {
		return err // stopped or withdrawn while the history was read
	}
	answer, res, err := a.stream(ctx, r, ai.ChatRequest{Model: m.ID, Messages: msgs})
	switch {
	case errors.Is(err, errCutOff):
		return nil // told already; a failed request is not charged
	case errors.Is(err, errStopped) || (err != nil && stoppedForPrivacy(ctx)):
		return nil // consent withdrawn, restricted or erased: nothing is kept
	case err != nil && ctx.Err() != nil:
		// Keep what was shown; the provider made it, so it is charged as
		// estimated, and it stays in the history.
		if answer == "" {
			return nil
		}
		var usage []valex.AIUsage
		if len(res.Tried) > 0 {
			if used, ok := a.models.Model(res.Tried[len(res.Tried)-1]); ok {
				u := ai.Usage{Model: used.ID, Capability: capability, InputTokens: estimateMessages(msgs),
					OutputTokens: ai.EstimateTokens(answer), At: a.h.Clock.Now()}
				u.Cost = a.models.Cost(used, u)
				usage = append(usage, usageOf(uid, u))
			}
		}
		return a.save(ctx, r, conv, in, answer, usage)
	case err != nil:
		return a.providerError(r, err)
	}
	if err := a.save(ctx, r, conv, in, answer, []valex.AIUsage{usageOf(uid, res.Usage)}); err != nil {
		return err
	}
	if s.Voice {
		return a.speak(ctx, r, tghtml.Strip(tghtml.MarkdownToHTML(answer)), true)
	}
	return nil
}

// save stores an exchange (history only in private chats) and its usage,
// unless StopUser stopped the job.
func (a *AI) save(ctx context.Context, r *bot.Request, conv uint64, in turnInput, answer string, usage []valex.AIUsage) error {
	var turns []valex.Turn
	if r.Private() {
		now := a.h.Clock.Now()
		turns = []valex.Turn{
			{Role: valex.TurnUser, Text: in.stored, Tokens: turnTokens(in.stored), At: now},
			{Role: valex.TurnAssistant, Text: answer, Tokens: turnTokens(answer), At: now},
		}
	}
	return a.write(ctx, r.From.ID, func() error { return a.store.SaveExchange(r.From.ID, conv, turns, usage) })
}

// turnTokens is a turn's estimate, with the framing a chat message adds.
func turnTokens(text string) int { return ai.EstimateTokens(text) + 4 }

func estimateMessages(msgs []ai.Message) int {
	n := 3
	for _, m := range msgs {
		n += turnTokens(m.Text)
		if len(m.ImageJPEG) > 0 {
			n += 765
		}
	}
	return n
}

// modelFor picks the model for a capability: the user's choice when the
// plan allows it and it can, else the plan's first model that can.
func (a *AI) modelFor(chosen string, c ai.Capability, plan string) (ai.Model, bool) {
	if chosen != "" {
		if m, ok := a.models.Model(chosen); ok && m.Can(c) && m.AllowedOn(plan) {
			return m, true
		}
	}
	ms := a.models.Models(c, plan)
	if len(ms) == 0 {
		return ai.Model{}, false
	}
	return ms[0], true
}

func (a *AI) mode(id string) Mode {
	for _, m := range a.opt.Modes {
		if m.ID == id {
			return m
		}
	}
	return a.opt.Modes[0]
}

// stream runs a streamed chat request and shows the answer as it arrives:
// one message edited at most once per EditInterval (and at least once per
// interval while text keeps coming), continued in a new message past 4096
// characters, and finally the exact answer rendered from Markdown. It
// returns the text the user was shown (all of it, unless cancelled).
func (a *AI) stream(ctx context.Context, r *bot.Request, req ai.ChatRequest) (string, ai.ChatResult, error) {
	interval := a.opt.EditInterval
	if !r.Private() {
		interval = a.opt.GroupEditInterval
	}
	s := &answer{out: a.out, chatID: r.ChatID, interval: interval, wake: make(chan struct{}, 1)}
	if !r.Private() {
		s.replyTo = r.MessageID
	}
	// Telegram calls run on the root context: /cancel stops the provider,
	// not the edits that make what was shown consistent.
	tctx := a.root
	genCtx, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	s.onFail = cancelGen

	stop := make(chan struct{})
	gate := make(chan (<-chan time.Time), 1)
	go func() { gate <- s.edit(tctx, stop) }()

	res, err := a.models.ChatStream(genCtx, req, func(delta string) {
		if genCtx.Err() == nil { // nothing more is shown once stopped
			s.add(delta)
		}
	})
	close(stop)
	last := <-gate

	if stoppedForPrivacy(ctx) {
		return s.shownRaw, res, errStopped // not even what came is shown
	}
	if s.failed() {
		return s.shownRaw, res, s.err
	}
	if err != nil && ctx.Err() != nil {
		return s.shownRaw, res, err // cancelled: what was shown stays as it is
	}
	if res.Text == "" && err != nil {
		return "", res, err
	}
	// The final edit respects the interval too.
	if last != nil {
		select {
		case <-last:
		case <-tctx.Done():
			return s.shownRaw, res, tctx.Err()
		}
	}
	s.final(tctx, res.Text)
	if s.failed() {
		return s.shownRaw, res, s.err
	}
	if err != nil {
		// The stream broke after some text: keep it, say so, charge nothing.
		if _, serr := a.out.Send(tctx, bot.Message{ChatID: r.ChatID, Text: a.h.t(r, "ai.chat.cut_off", nil)}); serr != nil {
			return s.shownRaw, res, serr
		}
		a.h.Log.Warn().Str("error", a.h.IDs.Redact(err.Error(), r.From.ID)).Str("user", a.h.IDs.User(r.From.ID)).Msg("answer stream broke")
		return s.shownRaw, res, errCutOff
	}
	return res.Text, res, nil
}

// errCutOff: the user has already been told.
var errCutOff = errors.New("answer cut off")

// answer is a streamed answer on its way to Telegram.
type answer struct {
	out      AIOutbox
	chatID   int64
	replyTo  int
	interval time.Duration
	onFail   func()

	mu   sync.Mutex
	text strings.Builder
	wake chan struct{}

	// Used by edit while it runs, then by final.
	ids      []int    // the messages of the answer
	shown    []string // HTML each shows
	shownRaw string   // the Markdown rendered in them
	err      error    // the first Telegram failure; nothing is sent after it
}

// add receives a delta from the provider.
func (s *answer) add(delta string) {
	s.mu.Lock()
	s.text.WriteString(delta)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// edit shows new text as it arrives, at most once per interval, until stop
// is closed. It returns the channel that opens when the next edit is allowed
// (nil when nothing was shown).
func (s *answer) edit(ctx context.Context, stop <-chan struct{}) <-chan time.Time {
	var gate *time.Timer
	_ = s.out.Typing(ctx, s.chatID, "typing") // a courtesy: its failure changes nothing
	typing := time.NewTicker(4 * time.Second) // Telegram shows "typing" for 5s
	defer typing.Stop()
	for {
		select {
		case <-stop:
			return gateC(gate)
		case <-typing.C:
			if len(s.ids) == 0 && s.err == nil {
				_ = s.out.Typing(ctx, s.chatID, "typing")
			}
			continue
		case <-s.wake:
		}
		if gate != nil {
			select {
			case <-gate.C:
				gate = nil
			case <-stop:
				return gateC(gate)
			}
		}
		s.mu.Lock()
		raw := s.text.String()
		s.mu.Unlock()
		if s.err != nil || raw == s.shownRaw {
			continue
		}
		if s.show(ctx, raw, false) {
			gate = time.NewTimer(s.interval)
		}
	}
}

func gateC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// final shows the complete answer exactly.
func (s *answer) final(ctx context.Context, raw string) {
	if s.err == nil && raw != s.shownRaw {
		s.show(ctx, raw, true)
	}
}

// show renders raw and brings the answer's messages up to date with it. It
// reports whether it sent anything.
func (s *answer) show(ctx context.Context, raw string, final bool) bool {
	html := tghtml.MarkdownToHTML(raw)
	if strings.TrimSpace(html) == "" {
		return false
	}
	parts := tghtml.Split(html, tghtml.MaxMessageLen)
	sent := false
	for i, p := range parts {
		var err error
		switch {
		case i < len(s.ids) && s.shown[i] == p:
			continue
		case i < len(s.ids):
			err = s.out.Edit(ctx, s.chatID, s.ids[i], p, nil)
		default:
			var id int
			m := bot.Message{ChatID: s.chatID, Text: p}
			if i == 0 {
				m.ReplyTo = s.replyTo
			}
			if id, err = s.out.Send(ctx, m); err == nil {
				s.ids = append(s.ids, id)
				s.shown = append(s.shown, "")
			}
		}
		if err != nil {
			s.fail(err)
			return sent
		}
		s.shown[i] = p
		sent = true
	}
	if final {
		// Rendering the whole answer can take fewer messages than a
		// partial one did: the extra ones go.
		for len(s.ids) > len(parts) {
			last := len(s.ids) - 1
			if err := s.out.Delete(ctx, s.chatID, s.ids[last]); err != nil {
				s.fail(err)
				return sent
			}
			s.ids, s.shown = s.ids[:last], s.shown[:last]
		}
	}
	s.shownRaw = raw
	return sent
}

func (s *answer) fail(err error) {
	s.err = fmt.Errorf("show answer in chat %d: %w", s.chatID, err)
	if s.onFail != nil {
		s.onFail() // nobody sees the rest: stop generating it
	}
}

func (s *answer) failed() bool { return s.err != nil }

// New starts a fresh conversation.
func (a *AI) New(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) {
		s.Conversation = currentConv(*s) + 1
	}); err != nil {
		return err
	}
	return a.h.reply(ctx, r, a.h.t(r, "ai.chat.new", nil), nil)
}

// Model shows the chat models the user's plan allows.
func (a *AI) Model(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	s, err := a.store.AISettings(r.From.ID)
	if err != nil {
		return err
	}
	plan := a.opt.Plan(r.From.ID)
	cur, ok := a.modelFor(s.Model, ai.CapChat, plan)
	if !ok {
		return valex.Errorf("ai.error.no_model", nil)
	}
	var kb [][]bot.Button
	for _, m := range a.models.Models(ai.CapChat, plan) {
		label := m.ID
		if m.Can(ai.CapVision) {
			label += " 👁"
		}
		if m.ID == cur.ID {
			label = "✓ " + label
		}
		kb = append(kb, []bot.Button{{Text: label, Data: cbModel.Data(a.h.CB, shortKey(m.ID))}})
	}
	text := a.h.t(r, "ai.model.choose", map[string]any{"Model": tghtml.Escape(cur.ID)})
	return a.h.reply(ctx, r, text, kb)
}

// ModelPicked handles a /model button.
func (a *AI) ModelPicked(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 1 {
		return valex.Errorf("error.bad_callback", nil)
	}
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	var picked *ai.Model
	for _, m := range a.models.Models(ai.CapChat, a.opt.Plan(r.From.ID)) {
		if shortKey(m.ID) == r.CallbackArgs[0] {
			picked = &m
			break
		}
	}
	if picked == nil {
		return valex.Errorf("ai.model.unavailable", nil)
	}
	if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) { s.Model = picked.ID }); err != nil {
		return err
	}
	return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.model.set", map[string]any{"Model": tghtml.Escape(picked.ID)}), nil)
}

// modeTitle is a mode's name in the user's language.
func (a *AI) modeTitle(r *bot.Request, m Mode) string {
	key := "ai.mode." + m.ID
	if s := a.h.t(r, key, nil); s != key {
		return s
	}
	if m.Title != "" {
		return tghtml.Escape(m.Title)
	}
	return tghtml.Escape(m.ID)
}

// Mode shows the system-prompt presets.
func (a *AI) Mode(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	s, err := a.store.AISettings(r.From.ID)
	if err != nil {
		return err
	}
	cur := a.mode(s.Mode)
	var kb [][]bot.Button
	for _, m := range a.opt.Modes {
		label := tghtml.Strip(a.modeTitle(r, m))
		if m.ID == cur.ID {
			label = "✓ " + label
		}
		kb = append(kb, []bot.Button{{Text: label, Data: cbMode.Data(a.h.CB, m.ID)}})
	}
	return a.h.reply(ctx, r, a.h.t(r, "ai.mode.choose", map[string]any{"Mode": a.modeTitle(r, cur)}), kb)
}

// ModePicked handles a /mode button.
func (a *AI) ModePicked(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 1 {
		return valex.Errorf("error.bad_callback", nil)
	}
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	var picked *Mode
	for _, m := range a.opt.Modes {
		if m.ID == r.CallbackArgs[0] {
			picked = &m
			break
		}
	}
	if picked == nil {
		return valex.Errorf("ai.mode.unavailable", nil)
	}
	if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) { s.Mode = picked.ID }); err != nil {
		return err
	}
	return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.mode.set", map[string]any{"Mode": a.modeTitle(r, *picked)}), nil)
}

// Voice switches voice answers on or off: /voice on, /voice off.
func (a *AI) Voice(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	var on bool
	arg := strings.ToLower(strings.TrimSpace(r.Args))
	switch {
	case arg != "" && slices.Contains(a.h.words("input.on"), arg):
		on = true
	case arg != "" && slices.Contains(a.h.words("input.off"), arg):
	default:
		s, err := a.store.AISettings(r.From.ID)
		if err != nil {
			return err
		}
		key := "ai.voice.status_off"
		if s.Voice {
			key = "ai.voice.status_on"
		}
		return a.h.reply(ctx, r, a.h.t(r, key, nil), nil)
	}
	if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) { s.Voice = on }); err != nil {
		return err
	}
	key := "ai.voice.off"
	if on {
		key = "ai.voice.on"
	}
	return a.h.reply(ctx, r, a.h.t(r, key, nil), nil)
}

// Usage shows what the user used today and this month, and what it cost.
func (a *AI) Usage(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	day, month, err := a.store.UsageTotals(r.From.ID, a.h.Clock.Now())
	if err != nil {
		return err
	}
	var b strings.Builder
	plan := a.opt.Plan(r.From.ID)
	planName := a.h.t(r, "ai.plan."+plan, nil)
	if planName == "ai.plan."+plan {
		planName = tghtml.Escape(plan)
	}
	b.WriteString(a.h.t(r, "ai.usage.title", map[string]any{"Plan": planName}))
	for _, p := range []struct {
		key    string
		totals []valex.UsageTotal
	}{{"ai.usage.today", day}, {"ai.usage.month", month}} {
		b.WriteString("\n\n" + a.h.t(r, p.key, nil))
		if len(p.totals) == 0 {
			b.WriteString("\n" + a.h.t(r, "ai.usage.nothing", nil))
			continue
		}
		var cost int64
		for _, t := range p.totals {
			b.WriteString("\n" + a.usageLine(r, t))
			cost += t.Cost
		}
		b.WriteString("\n" + a.h.t(r, "ai.usage.total", map[string]any{"Cost": credits(r.Lang, cost)}))
	}
	return a.h.reply(ctx, r, b.String(), nil)
}

func (a *AI) usageLine(r *bot.Request, t valex.UsageTotal) string {
	args := map[string]any{
		"Cost":    credits(r.Lang, t.Cost),
		"Tokens":  integer(r.Lang, int64(t.InputTokens+t.OutputTokens)),
		"Minutes": decimal(r.Lang, t.AudioSeconds/60, 1),
		"Chars":   integer(r.Lang, int64(t.Chars)),
	}
	switch ai.Capability(t.Capability) {
	case ai.CapChat, ai.CapVision, ai.CapImage, ai.CapTranscribe, ai.CapSpeech:
		n := t.Calls
		if t.Capability == string(ai.CapImage) {
			n = t.Images
		}
		return a.h.Tr.N(r.Lang, "ai.usage."+t.Capability, int(n), args)
	}
	return a.h.Tr.N(r.Lang, "ai.usage.other", int(t.Calls), args)
}
