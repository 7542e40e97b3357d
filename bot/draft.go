package bot

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/valex-ai/valex/bot/tghtml"
)

// Draft is a sendMessageDraft call (Bot API 9.5; can_stop since 10.3): a
// message being generated, streamed to a private chat as an animated
// preview. tgbotapi v5.5.1 predates it, so it goes through the raw request
// path with these parameters. The draft is ephemeral: the answer is kept
// only when it is sent with sendMessage at the end.
type Draft struct {
	ChatID   int64 // a private chat
	ThreadID int   // message_thread_id; 0: none
	DraftID  int64 // non-zero; drafts with the same id animate into each other
	// Text is Telegram HTML of at most 4096 characters after parsing; ""
	// shows Telegram's "Thinking…" placeholder.
	Text string
	// CanStop shows the user a stop button; a tap arrives as an update of
	// KindStop with this DraftID.
	CanStop bool
}

func (d Draft) params(text, parseMode string) tgbotapi.Params {
	p := tgbotapi.Params{
		"chat_id":  strconv.FormatInt(d.ChatID, 10),
		"draft_id": strconv.FormatInt(d.DraftID, 10),
	}
	if text != "" {
		p["text"] = text
		if parseMode != "" {
			p["parse_mode"] = parseMode
		}
	}
	if d.ThreadID != 0 {
		p["message_thread_id"] = strconv.Itoa(d.ThreadID)
	}
	if d.CanStop {
		p["can_stop"] = "true"
	}
	return p
}

// ErrDraftSkipped means a draft was not shown and need not be: the chat
// was busy or held by a flood wait, or Telegram was briefly unavailable.
// The next draft (or the final message) shows the newer text anyway.
var ErrDraftSkipped = errors.New("draft skipped")

// SendDraft shows a draft. Drafts are best-effort previews, so unlike every
// other call they never wait: a draft whose chat has a call in flight, or
// is held by a 429 (its own or an earlier call's), is skipped with
// ErrDraftSkipped; a 429 on a draft holds the chat for retry_after like any
// call's, so nothing more goes to that chat before it; a 5xx or network
// failure skips the draft instead of retrying it. Drafts take no token of
// the global or per-chat message limits: they are not messages, and a
// streaming answer must not slow anyone's replies. Any other refusal (a
// group chat, a Bot API without drafts) is returned: the caller falls back
// to sending and editing messages.
func (o *Outbox) SendDraft(ctx context.Context, d Draft) error {
	if d.DraftID == 0 {
		return errors.New("send draft: the draft id must not be zero")
	}
	t := o.pace.tryEnter(d.ChatID)
	if t == nil {
		return ErrDraftSkipped // coalesced: a newer draft follows
	}
	defer t.leave()
	if time.Now().Before(t.heldUntil()) {
		return ErrDraftSkipped
	}
	o.stats.backlog.Add(1)
	defer o.stats.backlog.Add(-1)
	o.stats.calls.Add(1)
	_, err := o.c.do(ctx, "sendMessageDraft", d.params(d.Text, tgbotapi.ModeHTML))
	if isParseError(err) {
		o.log.Warn().Str("chat", o.cfg.Pseudonyms.Chat(d.ChatID)).Msg("telegram refused our HTML in a draft, sending plain text")
		o.stats.calls.Add(1)
		_, err = o.c.do(ctx, "sendMessageDraft", d.params(tghtml.Strip(d.Text), ""))
	}
	var ae *APIError
	var ne *NetError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae) && ae.Code == 429:
		wait := floodWait(ae)
		t.hold(wait)
		o.stats.flood.Add(1)
		o.log.Warn().Str("method", "sendMessageDraft").Str("chat", o.cfg.Pseudonyms.Chat(d.ChatID)).Int64("retry_after_ms", wait.Milliseconds()).Msg("flood limit on a draft, holding the chat")
		return fmt.Errorf("%w: %w", ErrDraftSkipped, err)
	case (errors.As(err, &ae) && ae.Code >= 500) || errors.As(err, &ne):
		return fmt.Errorf("%w: %w", ErrDraftSkipped, err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	}
	o.stats.permanent.Add(1)
	o.log.Info().Str("method", "sendMessageDraft").Str("chat", o.cfg.Pseudonyms.Chat(d.ChatID)).Str("error", o.cfg.Pseudonyms.Redact(err.Error(), d.ChatID)).Msg("telegram refused a draft")
	return err
}
