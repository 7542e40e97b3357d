package handlers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// AIModels is the part of the AI router the aggregator uses.
type AIModels interface {
	ChatStream(ctx context.Context, req ai.ChatRequest, onDelta func(string)) (ai.ChatResult, error)
	Image(ctx context.Context, model, prompt string) ([]byte, ai.Usage, error)
	Transcribe(ctx context.Context, model string, audio []byte, filename string) (string, ai.Usage, error)
	Speech(ctx context.Context, model, text string) ([]byte, string, ai.Usage, error)
	Models(c ai.Capability, plan string) []ai.Model
	FirstModel(c ai.Capability, plan string) (ai.Model, bool) // Models(c, plan)[0]
	CountModels(c ai.Capability, plan string) int             // len(Models(c, plan))
	Model(id string) (ai.Model, bool)
	Cost(m ai.Model, u ai.Usage) int64
}

// AIStore keeps conversations, AI settings and the usage ledger, and tells
// why AI processing is not allowed (a restriction is not a missing consent).
type AIStore interface {
	ConsentState(userID int64) (valex.ConsentState, error)
	AISettings(userID int64) (valex.AISettings, error)
	UpdateAISettings(userID int64, fn func(*valex.AISettings)) (valex.AISettings, error)
	RecentTurns(userID int64, conv uint64, budget, maxTurns int) (turns []valex.Turn, dropped bool, err error)
	SaveExchange(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage) error
	UsageTotals(userID int64, at time.Time) (day, month []valex.UsageTotal, err error)
	DocumentStore // documents.go
	// For the Retry button (ai_retry.go).
	LastQuestion(userID int64, conv uint64) (valex.Turn, bool, error)
	ReplaceExchangeCharged(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage, charge valex.Charge) error
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
	EditKeyboard(ctx context.Context, chatID int64, messageID int, kb [][]bot.Button) error
	Delete(ctx context.Context, chatID int64, messageID int) error
	SendFile(ctx context.Context, f bot.FileMessage) (int, error)
	Typing(ctx context.Context, chatID int64, threadID int, action string) error
	// SendDraft streams an answer into a private chat (bot.Outbox.SendDraft).
	SendDraft(ctx context.Context, d bot.Draft) error
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
	// Plans meters every call against the user's allowance and balance;
	// nil: calls are not metered (AIDeps.Wallets must be set otherwise).
	Plans *valex.Plans
	// CheaperModel is where a chat turn goes when the wallet cannot pay
	// for the user's model but can for this cheaper one; "": refuse.
	CheaperModel string
	// ImageConfirmAbove: an image whose price is above this many
	// micro-credits is generated only after the user confirms the price.
	ImageConfirmAbove int64
	HistoryTokens     int           // most history tokens sent with a turn, default 8000
	HistoryTurns      int           // most earlier turns (messages) sent with a turn, default 40
	AnswerTokens      int           // context tokens kept free for the answer, default 1024
	EditInterval      time.Duration // least time between edits of a streamed answer, default 1s
	GroupEditInterval time.Duration // the same in groups (20 messages a minute), default 3s
	DraftInterval     time.Duration // least time between drafts of an answer in a private chat, default 300ms
	MaxSpeechChars    int           // longest text read out, default 4000
	MaxMessages       int           // most Telegram messages of one answer, default 8 (ai_stream.go)
	// PolicyVersion is the privacy policy version a consent is given to.
	PolicyVersion func() string
	BotUsername   string // stripped from group messages that mention the bot
	// Documents bound the documents sent as context (documents.go).
	Documents DocumentOptions
	// MaxConcurrent is the most AI jobs (calls to providers) running at
	// once across all users; users take turns for them (ai_slots.go).
	// Default DefaultMaxConcurrent.
	MaxConcurrent int
	// QueueNotice is how long a job waits for a slot before its user is
	// told their place in the line; default 2s, negative: never.
	QueueNotice time.Duration
	// ConsentHold is how long a message that made the bot ask for the AI
	// consent waits for the user's agreement, counted from when it was
	// sent; then it is dropped unanswered. Default 10 minutes
	// (ai.consent_hold).
	ConsentHold time.Duration
	// StoreReasoning keeps a reasoning model's reasoning in the history
	// with its answer (ai_reasoning.go); by default it is only shown.
	StoreReasoning bool
}

// AIDeps are what the aggregator needs besides Handlers.
type AIDeps struct {
	Models  AIModels
	Store   AIStore
	Consent ConsentChecker
	Out     AIOutbox
	Files   Downloader
	Wallets Wallets // credits; needed when Options.Plans is set
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
	wallets Wallets
	opt     AIOptions

	root context.Context // jobs run on it; Shutdown cancels it (errShutdown)
	stop context.CancelCauseFunc
	// tg carries the jobs' Telegram calls. Shutdown cancels it a moment
	// after root (tgLinger), so that a call in flight at the deadline (the
	// final edit of an answer) completes and its job knows it was shown.
	tg     context.Context
	stopTG context.CancelCauseFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	jobs map[int64][]*aiJob // per user: the running job, then those waiting
	// line is the users whose next job waits for a slot, in the order
	// they will get one; running counts the jobs holding a slot.
	line     []int64
	running  int
	pool     *bot.Workers[slotted] // runs the jobs (ai_slots.go)
	noticing bool                  // the queued-notice goroutine runs (ai_queue_notice.go)
	pending  map[int64]pendingImage
	// awaiting holds, per user, the message that made the bot ask for
	// consent, so that it is answered as soon as the user agrees instead of
	// being lost. In memory, its update pending: a restart replays it.
	awaiting map[int64]*awaitingMsg
	closing  bool // Shutdown has begun: nothing more is held
	seq      uint64
	// asked keeps group questions for the buttons under their answers
	// (ai_retry_groups.go).
	asked askedStore

	// noDrafts: the Bot API server does not know sendMessageDraft (404),
	// so answers in private chats stream by edits (ai_stream.go).
	noDrafts atomic.Bool
	drafts   atomic.Int64 // draft ids for answers without an update id

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

// NewAI returns the aggregator. Call Register to route its commands and
// Shutdown when the bot has stopped.
func NewAI(h *Handlers, d AIDeps) *AI {
	o := d.Options
	if o.HistoryTokens <= 0 {
		o.HistoryTokens = 8000
	}
	if o.HistoryTurns <= 0 {
		o.HistoryTurns = 40
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
	if o.DraftInterval <= 0 {
		o.DraftInterval = 300 * time.Millisecond
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
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.QueueNotice == 0 {
		o.QueueNotice = 2 * time.Second
	}
	if o.ConsentHold <= 0 {
		o.ConsentHold = 10 * time.Minute
	}
	if len(o.Modes) == 0 {
		o.Modes = []Mode{{ID: "assistant", Prompt: "You are a helpful assistant."}}
	}
	o.Documents = o.Documents.withDefaults()
	a := &AI{
		h: h, models: d.Models, store: d.Store, consent: d.Consent, out: d.Out, files: d.Files, wallets: d.Wallets, opt: o,
		jobs:      make(map[int64][]*aiJob),
		pending:   make(map[int64]pendingImage),
		awaiting:  make(map[int64]*awaitingMsg),
		stoppedAt: make(map[int64]uint64),
	}
	a.pool = bot.NewWorkers(o.MaxConcurrent, func(s slotted) { a.run(s.userID, s.job) })
	a.root, a.stop = context.WithCancelCause(context.Background())
	a.tg, a.stopTG = context.WithCancelCause(context.Background())
	h.Generations = a // /cancel stops a running answer
	return a
}

// report answers a job's error the way the bot answers a handler's: a
// UserError as its text, anything else logged and "something went wrong".
// A job a shutdown interrupted reports nothing: it is done again after the
// restart.
func (a *AI) report(ctx context.Context, r *bot.Request, err error) {
	if errors.Is(err, errStopped) {
		return // the one who stopped it tells the user
	}
	if a.interrupted(ctx) {
		return
	}
	key, args := "error.generic", map[string]any(nil)
	if ue, ok := valex.AsUserError(err); ok {
		key, args = ue.Key, ue.Args
	} else {
		a.h.Log.Error().Str("error", a.h.IDs.Redact(err.Error(), r.ChatID, r.From.ID)).Str("chat", a.h.IDs.Chat(r.ChatID)).Str("user", a.h.IDs.User(r.From.ID)).Msg("ai job failed")
	}
	if _, err := a.out.Send(a.tg, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, key, args)}); err != nil {
		a.h.Log.Error().Str("error", a.h.IDs.Redact(err.Error(), r.ChatID)).Str("chat", a.h.IDs.Chat(r.ChatID)).Msg("ai error reply not delivered")
		return
	}
	settle(ctx) // the user was told: the turn has ended
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

// Text is a plain message outside any prompt: a chat turn. (An answer to a
// prompt never gets here: the router gives it to the prompt's dialog.)
func (a *AI) Text(ctx context.Context, r *bot.Request) error {
	return a.text(ctx, r, nil)
}

// text answers r. end is the completion of r's update when it was deferred
// already (a message held for consent, answered from the consent button);
// nil: r is the update being handled, and it is deferred here.
func (a *AI) text(ctx context.Context, r *bot.Request, end func(ended bool)) error {
	if end == nil {
		end = r.Defer()
	}
	passed := false // end went to a hold or a job, which call it
	defer func() {
		if !passed {
			end(true) // nothing to answer, or refused and told
		}
	}()
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
			passed = true
			a.hold(r, ad, end) // answered once the user agrees
		}
		return err
	}
	passed = true
	a.submit(r, ad.ticket, end, func(ctx context.Context) {
		if err := a.textTurn(ctx, r, text); err != nil { // with a pending document (documents.go)
			a.report(ctx, r, err)
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
	// document is a document's text, sent as a message of its own before
	// the question; it may take the model's whole window (documents.go).
	document string
	// retry: the question is the conversation's last one, answered again
	// (ai_retry.go): its old exchange is left out of the context and
	// replaced in the history.
	retry bool
}

// currentConv is the user's conversation: conversations are numbered from 1.
func currentConv(s valex.AISettings) uint64 { return s.CurrentConversation() }

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
	conv, err := a.conversationFor(ctx, r, s)
	if err != nil {
		return err
	}

	user := ai.Message{Role: valex.TurnUser, Text: in.text, ImageJPEG: in.image}
	window := m.ContextTokens
	if window <= 0 {
		window = 8192
	}
	docTokens := 0
	if in.document != "" {
		docTokens = turnTokens(in.document)
	}
	budget := min(window-a.opt.AnswerTokens-docTokens, a.opt.HistoryTokens) - turnTokens(mode.Prompt) - turnTokens(in.text)
	if len(in.image) > 0 {
		budget -= 765 // what a provider bills for a high-detail image
	}
	if budget < 0 {
		return valex.Errorf("ai.error.too_long", nil)
	}
	var msgs []ai.Message
	if r.Private() {
		most := a.opt.HistoryTurns
		if in.retry {
			most += 2 // the exchange a retry replaces is read and left out
		}
		turns, dropped, err := a.store.RecentTurns(uid, conv, budget, most)
		if err != nil {
			return err
		}
		if in.retry {
			turns = withoutLastExchange(turns)
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
			if _, err := a.out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "ai.chat.trimmed", nil)}); err != nil {
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
	if in.document != "" {
		msgs = append(msgs, ai.Message{Role: valex.TurnUser, Text: in.document})
	}
	msgs = append(msgs, user)

	if ok, err := a.allowed(ctx, uid); err != nil || !ok {
		return err // stopped or withdrawn while the history was read
	}
	m, limit, charge, ok, err := a.reserveAnswer(ctx, r, m, capability, estimateMessages(msgs), plan)
	if err != nil || !ok {
		settleRefused(ctx, err)
		return err // the wallet cannot pay: told, nothing sent to a provider
	}
	defer a.release(charge) // a failed or stopped call is not charged
	answer, res, err := a.stream(ctx, r, ai.ChatRequest{Model: m.ID, Messages: msgs, MaxTokens: limit}, a.retryKeyboard(r, conv, in, plan))
	switch {
	case errors.Is(err, errCutOff):
		settle(ctx)
		return nil // told already; a failed request is not charged
	case errors.Is(err, errStopped) || (err != nil && stoppedForPrivacy(ctx)):
		return nil // consent withdrawn, restricted or erased: nothing is kept
	case err != nil && a.interrupted(ctx):
		// A shutdown cut the answer: nothing is kept or charged, the
		// update stays pending and the whole answer comes after the
		// restart (under what was shown so far).
		return nil
	case err != nil && ctx.Err() != nil:
		// Keep what was shown; the provider made it, so it is charged as
		// estimated, and it stays in the history.
		settle(ctx) // cancelled by the user: the turn has ended
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
		_, err := a.save(ctx, r, conv, in, answer, usage, charge)
		return err
	case err != nil:
		return a.providerError(r, err)
	}
	// Shown in full: the exchange, its charge and the update's handled mark
	// go in one commit where the turn is metered (a crash before it answers
	// again, once; after it, nothing repeats), else the mark first.
	charge.EndsUpdate = true
	if charge.Update == 0 || charge.Reservation == 0 {
		settle(ctx)
	}
	recorded, err := a.save(ctx, r, conv, in, a.storedAnswer(answer, res.Reasoning), []valex.AIUsage{usageOf(uid, res.Usage)}, charge)
	if recorded {
		r.MarkedHandled()
	}
	settle(ctx) // a shutdown from now on does not repeat it (a second settle does nothing)
	if err != nil {
		return err
	}
	if s.Voice {
		return a.speak(ctx, r, tghtml.Strip(tghtml.MarkdownToHTML(answer)), true)
	}
	return nil
}

// save stores an exchange (history only in private chats) and its usage,
// unless StopUser stopped the job. recorded: the update's handled mark was
// committed with it (charge.EndsUpdate on a metered turn).
func (a *AI) save(ctx context.Context, r *bot.Request, conv uint64, in turnInput, answer string, usage []valex.AIUsage, charge valex.Charge) (recorded bool, err error) {
	var turns []valex.Turn
	if r.Private() {
		now := a.h.Clock.Now()
		turns = []valex.Turn{
			{Role: valex.TurnUser, Text: in.stored, Tokens: turnTokens(in.stored), At: now},
			{Role: valex.TurnAssistant, Text: answer, Tokens: turnTokens(answer), At: now},
		}
	}
	err = a.write(ctx, r.From.ID, func() error {
		if in.retry && len(turns) > 0 {
			err := a.saveRetried(r.From.ID, conv, turns, usage, charge)
			recorded = err == nil && charge.EndsUpdate && charge.Update > 0
			return err
		}
		var err error
		recorded, err = a.saveCharged(r.From.ID, conv, turns, usage, charge)
		return err
	})
	return recorded, err
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
	return a.models.FirstModel(c, plan)
}

func (a *AI) mode(id string) Mode {
	for _, m := range a.opt.Modes {
		if m.ID == id {
			return m
		}
	}
	return a.opt.Modes[0]
}
