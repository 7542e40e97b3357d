package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Button is one inline keyboard button: Data for a callback, or a URL.
type Button struct {
	Text string
	Data string
	URL  string
}

// Message is an outgoing text message. Text is Telegram HTML: every value
// inserted into it must already be escaped (tghtml.Escape).
type Message struct {
	ChatID int64
	// ThreadID is the topic the message goes to (message_thread_id), 0
	// for none: a reply to a message in a topic takes the request's
	// Update.ThreadID, or it lands in the chat's General topic.
	ThreadID int
	Text     string
	Keyboard [][]Button // inline keyboard, shown under the last part
	ReplyTo  int
	// ShareContact shows a one-button reply keyboard with this label that
	// shares the user's phone number through Telegram.
	ShareContact   string
	RemoveKeyboard bool
}

// FileKind is how a file is sent.
type FileKind string

const (
	FileDocument FileKind = "document"
	FilePhoto    FileKind = "photo"
	FileVoice    FileKind = "voice"
	FileAudio    FileKind = "audio"
)

// FileMessage is an outgoing upload.
type FileMessage struct {
	ChatID   int64
	ThreadID int // the topic, as Message.ThreadID
	Kind     FileKind
	Name     string
	Data     []byte
	Caption  string // Telegram HTML, at most 1024 characters
	Keyboard [][]Button
}

// Command is one entry of the bot's command menu.
type Command struct {
	Name        string
	Description string
}

// OutboxConfig tunes retries; zero values take the defaults.
type OutboxConfig struct {
	Pace        PaceConfig
	MaxAttempts int           // for 5xx and network errors, default 6
	Backoff     time.Duration // first retry delay after a 5xx/network error, default 500ms
	// FloodDeadline is how long one call keeps waiting out 429s, counted
	// from its start; default 10 minutes.
	FloodDeadline time.Duration
	// Pseudonyms stand for private chats (= users) in log lines.
	Pseudonyms valex.Pseudonymizer
	// PaidBroadcast makes Broadcast's messages Telegram paid broadcasts
	// (allow_paid_broadcast): up to Pace.PaidPerSec a second instead of
	// the global limit, for 0.1 Stars a message above the free limit,
	// taken from the bot's balance.
	PaidBroadcast bool
}

// Outbox is the single way out to Telegram: every outgoing call is paced,
// flood waits (429 retry_after) are honoured by every later call to the same
// chat, 5xx and network errors retried with backoff, and HTML that Telegram
// refuses falls back to plain text. A reply is never dropped silently: a
// permanent refusal (blocked, bad request), a flood wait past
// FloodDeadline or retries used up are logged, counted and returned.
type Outbox struct {
	c     *Client
	pace  *pacer
	cfg   OutboxConfig
	log   zerolog.Logger
	stats outboxStats
}

// NewOutbox returns an outbox sending through c.
func NewOutbox(c *Client, cfg OutboxConfig, log zerolog.Logger) *Outbox {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 6
	}
	if cfg.FloodDeadline <= 0 {
		cfg.FloodDeadline = 10 * time.Minute
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	return &Outbox{c: c, pace: newPacer(cfg.Pace), cfg: cfg, log: log}
}

// OutboxStats are the outbox's counters since start.
type OutboxStats struct {
	Calls     int64 // Bot API calls made (each attempt)
	Flood     int64 // 429 answers waited out
	Retries   int64 // network or 5xx failures retried
	Backlog   int64 // calls waiting or in flight now
	Permanent int64 // calls Telegram refused for good (403, 400 ...)
	GaveUp    int64 // calls abandoned: flood wait past the deadline, retries used up
}

type outboxStats struct {
	calls, flood, retries, backlog, permanent, gaveUp atomic.Int64
}

// Stats returns the outbox's counters.
func (o *Outbox) Stats() OutboxStats {
	return OutboxStats{
		Calls: o.stats.calls.Load(), Flood: o.stats.flood.Load(), Retries: o.stats.retries.Load(), Backlog: o.stats.backlog.Load(),
		Permanent: o.stats.permanent.Load(), GaveUp: o.stats.gaveUp.Load(),
	}
}

// Client returns the Bot API client (for downloads).
func (o *Outbox) Client() *Client { return o.c }

// Send sends a message, split into parts of at most 4096 characters at
// paragraph or line boundaries. It returns the id of the last part.
func (o *Outbox) Send(ctx context.Context, m Message) (int, error) {
	parts := tghtml.Split(m.Text, tghtml.MaxMessageLen)
	if len(parts) == 0 {
		return 0, errors.New("send: empty message")
	}
	var last int
	for i, part := range parts {
		tm := textMessage{ChatID: m.ChatID, ThreadID: m.ThreadID, Text: part, ParseMode: tgbotapi.ModeHTML}
		if i == 0 {
			tm.ReplyTo = m.ReplyTo
		}
		if i == len(parts)-1 {
			tm.Markup = replyMarkup(m)
		}
		p, err := tm.params()
		if err != nil {
			return last, err
		}
		res, err := o.callRaw(ctx, m.ChatID, "sendMessage", p)
		if isParseError(err) {
			o.log.Warn().Str("chat", o.cfg.Pseudonyms.Chat(m.ChatID)).Msg("telegram refused our HTML, sending plain text")
			tm.Text, tm.ParseMode = tghtml.Strip(part), ""
			if p, err = tm.params(); err != nil {
				return last, err
			}
			res, err = o.callRaw(ctx, m.ChatID, "sendMessage", p)
		}
		if err != nil {
			return last, fmt.Errorf("send part %d/%d to chat %d: %w", i+1, len(parts), m.ChatID, err)
		}
		if last, err = messageID(res); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// Edit replaces the text (and keyboard, when kb is not nil) of a bot message.
// Text over the limit is cut: streaming callers continue in a new message.
// "Message is not modified" is not an error.
func (o *Outbox) Edit(ctx context.Context, chatID int64, messageID int, text string, kb [][]Button) error {
	if parts := tghtml.Split(text, tghtml.MaxMessageLen); len(parts) > 0 {
		text = parts[0]
	}
	cfg := tgbotapi.NewEditMessageText(chatID, messageID, text)
	cfg.ParseMode = tgbotapi.ModeHTML
	cfg.DisableWebPagePreview = true
	if kb != nil {
		mk := inlineMarkup(kb)
		cfg.ReplyMarkup = &mk
	}
	_, err := o.call(ctx, chatID, "editMessageText", cfg)
	if isParseError(err) {
		cfg.Text, cfg.ParseMode = tghtml.Strip(text), ""
		_, err = o.call(ctx, chatID, "editMessageText", cfg)
	}
	if isNotModified(err) {
		return nil
	}
	return err
}

// EditKeyboard replaces only the inline keyboard; nil removes it.
func (o *Outbox) EditKeyboard(ctx context.Context, chatID int64, messageID int, kb [][]Button) error {
	cfg := tgbotapi.NewEditMessageReplyMarkup(chatID, messageID, inlineMarkup(kb))
	_, err := o.call(ctx, chatID, "editMessageReplyMarkup", cfg)
	if isNotModified(err) {
		return nil
	}
	return err
}

// Delete removes a bot message.
func (o *Outbox) Delete(ctx context.Context, chatID int64, messageID int) error {
	_, err := o.call(ctx, chatID, "deleteMessage", tgbotapi.NewDeleteMessage(chatID, messageID))
	return err
}

// Answer answers a callback query (the spinner on the pressed button).
// Telegram does not count these against a chat's message limit.
func (o *Outbox) Answer(ctx context.Context, callbackID, text string, alert bool) error {
	cfg := tgbotapi.NewCallback(callbackID, text)
	cfg.ShowAlert = alert
	_, err := o.call(ctx, 0, "answerCallbackQuery", cfg)
	return err
}

// AnswerPreCheckout confirms or refuses a checkout within Telegram's 10 seconds.
func (o *Outbox) AnswerPreCheckout(ctx context.Context, queryID string, ok bool, errText string) error {
	cfg := tgbotapi.PreCheckoutConfig{PreCheckoutQueryID: queryID, OK: ok, ErrorMessage: errText}
	_, err := o.call(ctx, 0, "answerPreCheckoutQuery", cfg)
	return err
}

// Typing shows a chat action ("typing", "upload_photo", "record_voice" ...)
// in a chat, or in one of its topics when threadID is not 0.
func (o *Outbox) Typing(ctx context.Context, chatID int64, threadID int, action string) error {
	p := tgbotapi.Params{"chat_id": strconv.FormatInt(chatID, 10), "action": action}
	if threadID != 0 {
		p["message_thread_id"] = strconv.Itoa(threadID)
	}
	_, err := o.callRaw(ctx, chatID, "sendChatAction", p)
	return err
}

// SendFile uploads a file with multipart/form-data. The parameters are our
// own (tgbotapi v5.5.1's configs have no message_thread_id).
func (o *Outbox) SendFile(ctx context.Context, f FileMessage) (int, error) {
	kind := f.Kind
	switch kind {
	case FilePhoto, FileVoice, FileAudio, FileDocument:
	default:
		kind = FileDocument
	}
	p := tgbotapi.Params{"chat_id": strconv.FormatInt(f.ChatID, 10)}
	if f.ThreadID != 0 {
		p["message_thread_id"] = strconv.Itoa(f.ThreadID)
	}
	if f.Caption != "" {
		p["caption"], p["parse_mode"] = f.Caption, tgbotapi.ModeHTML
	}
	if f.Keyboard != nil {
		mk, err := json.Marshal(inlineMarkup(f.Keyboard))
		if err != nil {
			return 0, fmt.Errorf("encode reply markup: %w", err)
		}
		p["reply_markup"] = string(mk)
	}
	file := tgbotapi.RequestFile{Name: string(kind), Data: tgbotapi.FileBytes{Name: f.Name, Bytes: f.Data}}
	method := "send" + strings.ToUpper(string(kind[:1])) + string(kind[1:])
	res, err := o.retry(ctx, f.ChatID, method, func() (json.RawMessage, error) { return o.c.upload(ctx, method, p, file) })
	if err != nil {
		return 0, fmt.Errorf("send %s to chat %d: %w", kind, f.ChatID, err)
	}
	return messageID(res)
}

// SetCommands publishes the command menu for one language ("" = default).
func (o *Outbox) SetCommands(ctx context.Context, lang string, cmds []Command) error {
	bc := make([]tgbotapi.BotCommand, len(cmds))
	for i, c := range cmds {
		bc[i] = tgbotapi.BotCommand{Command: c.Name, Description: c.Description}
	}
	cfg := tgbotapi.NewSetMyCommandsWithScopeAndLanguage(tgbotapi.NewBotCommandScopeDefault(), lang, bc...)
	_, err := o.call(ctx, 0, "setMyCommands", cfg)
	return err
}

// ErrNotSent marks a broadcast message that never left: its context ended
// while it waited for its turn, before any attempt other than ones
// Telegram refused with 429. A message stopped after an attempt may have
// reached the user, and its error does not carry ErrNotSent.
var ErrNotSent = errors.New("not sent")

// PaidBroadcasts reports whether Broadcast sends paid broadcasts.
func (o *Outbox) PaidBroadcasts() bool { return o.cfg.PaidBroadcast }

// Broadcast sends one user their copy of a broadcast (a notice to every
// user), split like Send. It yields to everything else: it takes only the
// global limit's spare capacity, so a reply never queues behind a
// broadcast's thousands of messages. Paid broadcasts (PaidBroadcast) carry
// allow_paid_broadcast and are paced at Pace.PaidPerSec instead, leaving
// the global limit to replies. An error wrapping ErrNotSent means the
// message surely did not go out.
func (o *Outbox) Broadcast(ctx context.Context, m Message) (int, error) {
	parts := tghtml.Split(m.Text, tghtml.MaxMessageLen)
	if len(parts) == 0 {
		return 0, errors.New("broadcast: empty message")
	}
	ln := laneBroadcast
	if o.cfg.PaidBroadcast {
		ln = lanePaid
	}
	var last int
	for i, part := range parts {
		bm := textMessage{ChatID: m.ChatID, Text: part, ParseMode: tgbotapi.ModeHTML, Paid: o.cfg.PaidBroadcast}
		if i == len(parts)-1 {
			bm.Markup = replyMarkup(m)
		}
		send := func() (json.RawMessage, error) {
			p, err := bm.params()
			if err != nil {
				return nil, err
			}
			return o.retryIn(ctx, ln, m.ChatID, "sendMessage", func() (json.RawMessage, error) { return o.c.do(ctx, "sendMessage", p) })
		}
		res, err := send()
		if isParseError(err) {
			o.log.Warn().Str("chat", o.cfg.Pseudonyms.Chat(m.ChatID)).Msg("telegram refused our HTML, sending plain text")
			bm.Text, bm.ParseMode = tghtml.Strip(part), ""
			res, err = send()
		}
		if err != nil {
			if i > 0 {
				// An earlier part went out: the message is not "not sent".
				err = errors.Join(errors.New("partly sent"), stripNotSent(err))
			}
			return last, fmt.Errorf("broadcast part %d/%d to chat %d: %w", i+1, len(parts), m.ChatID, err)
		}
		if last, err = messageID(res); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// stripNotSent drops ErrNotSent from err, keeping the cause.
func stripNotSent(err error) error {
	var ns notSentError
	if errors.As(err, &ns) {
		return ns.cause
	}
	return err
}

// notSentError is a context error before any attempt; it is ErrNotSent
// and its cause.
type notSentError struct{ cause error }

func (e notSentError) Error() string   { return "not sent: " + e.cause.Error() }
func (e notSentError) Unwrap() []error { return []error{ErrNotSent, e.cause} }

// textMessage is sendMessage with our own parameters: tgbotapi v5.5.1
// predates message_thread_id and allow_paid_broadcast.
type textMessage struct {
	ChatID    int64
	ThreadID  int // message_thread_id, 0 for none
	Text      string
	ParseMode string
	ReplyTo   int  // reply_to_message_id, sent even when it is gone
	Paid      bool // allow_paid_broadcast
	Markup    any  // reply_markup, nil for none
}

func (b textMessage) params() (tgbotapi.Params, error) {
	p := tgbotapi.Params{
		"chat_id":                  strconv.FormatInt(b.ChatID, 10),
		"text":                     b.Text,
		"disable_web_page_preview": "true",
	}
	if b.ThreadID != 0 {
		p["message_thread_id"] = strconv.Itoa(b.ThreadID)
	}
	if b.ReplyTo != 0 {
		p["reply_to_message_id"] = strconv.Itoa(b.ReplyTo)
		p["allow_sending_without_reply"] = "true"
	}
	if b.ParseMode != "" {
		p["parse_mode"] = b.ParseMode
	}
	if b.Paid {
		p["allow_paid_broadcast"] = "true"
	}
	if b.Markup != nil {
		mk, err := json.Marshal(b.Markup)
		if err != nil {
			return nil, fmt.Errorf("encode reply markup: %w", err)
		}
		p["reply_markup"] = string(mk)
	}
	return p, nil
}

// call sends one request with pacing and retries. chatID is the chat the
// call is about, 0 for none (callback answers, commands, refunds).
func (o *Outbox) call(ctx context.Context, chatID int64, method string, ch tgbotapi.Chattable) (json.RawMessage, error) {
	return o.retry(ctx, chatID, method, func() (json.RawMessage, error) { return o.c.request(ctx, method, ch) })
}

// callRaw is call for a method the SDK has no config for: our own typed
// parameters, encoded as the Bot API expects (payments.go).
func (o *Outbox) callRaw(ctx context.Context, chatID int64, method string, params tgbotapi.Params) (json.RawMessage, error) {
	return o.retry(ctx, chatID, method, func() (json.RawMessage, error) { return o.c.do(ctx, method, params) })
}

// retry runs one Bot API request in chatID's turn, paced, waiting out flood
// limits until FloodDeadline and retrying network failures. Only a
// permanent refusal ends it early.
func (o *Outbox) retry(ctx context.Context, chatID int64, method string, request func() (json.RawMessage, error)) (json.RawMessage, error) {
	return o.retryIn(ctx, laneReply, chatID, method, request)
}

// retryIn is retry paced in lane ln. A broadcast's call that ends before
// any attempt could have reached Telegram (none made, or only 429s) says
// so with ErrNotSent.
func (o *Outbox) retryIn(ctx context.Context, ln lane, chatID int64, method string, request func() (json.RawMessage, error)) (json.RawMessage, error) {
	o.stats.backlog.Add(1)
	defer o.stats.backlog.Add(-1)
	deadline := time.Now().Add(o.cfg.FloodDeadline)
	// Chat actions are not messages: never paced, but they wait out the
	// chat's flood holds like every other call.
	paced := method != "sendChatAction"
	maybeSent := false
	unsent := func(err error) error {
		if ln == laneReply || maybeSent {
			return err
		}
		return notSentError{cause: err}
	}
	t, err := o.pace.enter(ctx, chatID, ln)
	if err != nil {
		return nil, unsent(err)
	}
	defer t.leave()
	var netTries int
	var flood error // the last 429, for the error when its wait outlasts the deadline
	for {
		if err := t.wait(ctx, paced, deadline); err != nil {
			if !errors.Is(err, ErrFloodDeadline) {
				return nil, unsent(err)
			}
			if flood != nil {
				err = fmt.Errorf("%w: %w", err, flood)
			}
			return nil, o.giveUp(chatID, method, err)
		}
		o.stats.calls.Add(1)
		res, err := request()
		if err == nil {
			return res, nil
		}
		var ae *APIError
		var ne *NetError
		if !errors.As(err, &ae) || ae.Code != 429 {
			maybeSent = true // a 429 is a refusal; anything else may have got through
		}
		switch {
		case errors.As(err, &ae) && ae.Code == 429:
			wait := floodWait(ae)
			// Held before counted: tests watch Flood to know the hold is in place.
			t.hold(wait)
			o.stats.flood.Add(1)
			flood = err
			o.log.Warn().Str("method", method).Str("chat", o.cfg.Pseudonyms.Chat(chatID)).Int64("retry_after_ms", wait.Milliseconds()).Msg("flood limit, waiting")
		case (errors.As(err, &ae) && ae.Code >= 500) || errors.As(err, &ne):
			netTries++
			if netTries >= o.cfg.MaxAttempts {
				return nil, o.giveUp(chatID, method, err)
			}
			o.stats.retries.Add(1)
			d := o.cfg.Backoff << (netTries - 1)
			if d > 30*time.Second {
				d = 30 * time.Second
			}
			o.log.Warn().Str("method", method).Str("chat", o.cfg.Pseudonyms.Chat(chatID)).Int("attempt", netTries).Str("error", o.cfg.Pseudonyms.Redact(err.Error(), chatID)).Msg("telegram unavailable, retrying")
			if err := sleep(ctx, d); err != nil {
				return nil, err
			}
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			return nil, err
		case callerHandles(err):
			return nil, err
		default:
			o.stats.permanent.Add(1)
			ev := o.log.Warn()
			if IsBlocked(err) {
				ev = o.log.Info() // the user's choice, not a fault
			}
			ev.Str("method", method).Str("chat", o.cfg.Pseudonyms.Chat(chatID)).Str("error", o.cfg.Pseudonyms.Redact(err.Error(), chatID)).Msg("telegram refused the call for good")
			return nil, err
		}
	}
}

// giveUp logs and counts a call abandoned while Telegram may still take it.
func (o *Outbox) giveUp(chatID int64, method string, err error) error {
	o.stats.gaveUp.Add(1)
	o.log.Error().Str("method", method).Str("chat", o.cfg.Pseudonyms.Chat(chatID)).Str("error", o.cfg.Pseudonyms.Redact(err.Error(), chatID)).Msg("telegram call given up")
	return err
}

// callerHandles reports refusals the outbox's own methods turn into
// something else: refused HTML is sent again as plain text, an edit that
// changes nothing and a refund already made are not errors.
func callerHandles(err error) bool {
	var ae *APIError
	return isParseError(err) || isNotModified(err) ||
		(errors.As(err, &ae) && strings.Contains(ae.Description, "CHARGE_ALREADY_REFUNDED"))
}

func replyMarkup(m Message) any {
	switch {
	case m.ShareContact != "":
		kb := tgbotapi.NewReplyKeyboard(tgbotapi.NewKeyboardButtonRow(tgbotapi.NewKeyboardButtonContact(m.ShareContact)))
		kb.OneTimeKeyboard = true
		kb.ResizeKeyboard = true
		return kb
	case m.RemoveKeyboard:
		return tgbotapi.NewRemoveKeyboard(false)
	case m.Keyboard != nil:
		return inlineMarkup(m.Keyboard)
	}
	return nil
}

func inlineMarkup(kb [][]Button) tgbotapi.InlineKeyboardMarkup {
	rows := make([][]tgbotapi.InlineKeyboardButton, 0, len(kb))
	for _, r := range kb {
		row := make([]tgbotapi.InlineKeyboardButton, 0, len(r))
		for _, b := range r {
			if b.URL != "" {
				row = append(row, tgbotapi.NewInlineKeyboardButtonURL(b.Text, b.URL))
			} else {
				row = append(row, tgbotapi.NewInlineKeyboardButtonData(b.Text, b.Data))
			}
		}
		rows = append(rows, row)
	}
	return tgbotapi.InlineKeyboardMarkup{InlineKeyboard: rows}
}

// messageID reads the id of a sent message. Telegram writes message_id
// first, so it is read from the start of the result without decoding the
// rest (the echoed text and entities, kilobytes for a long answer); any
// other shape is decoded in full.
func messageID(res json.RawMessage) (int, error) {
	const head = `{"message_id":`
	if rest, ok := bytes.CutPrefix(res, []byte(head)); ok {
		id, n := 0, 0
		for n < len(rest) && n < 18 && rest[n] >= '0' && rest[n] <= '9' {
			id = id*10 + int(rest[n]-'0')
			n++
		}
		if n > 0 && n < len(rest) && (rest[n] == ',' || rest[n] == '}') {
			return id, nil
		}
	}
	var m struct {
		MessageID int `json:"message_id"`
	}
	if err := json.Unmarshal(res, &m); err != nil {
		return 0, fmt.Errorf("decode sent message: %w", err)
	}
	return m.MessageID, nil
}

func isParseError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == 400 && strings.Contains(ae.Description, "can't parse entities")
}

func isNotModified(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == 400 && strings.Contains(ae.Description, "message is not modified")
}

// IsBlocked reports whether err means the user blocked the bot or the chat is gone.
func IsBlocked(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == 403
}

// floodWait is how long a 429 asks to wait: its retry_after, or a second
// when it gives none.
func floodWait(ae *APIError) time.Duration {
	if ae.RetryAfter > 0 {
		return ae.RetryAfter
	}
	return time.Second
}
