package handlers

// Documents (PDF, DOCX, TXT, MD) as context for a chat turn. A document with
// a caption is answered at once, the caption being the question. Without
// one its text waits, sealed in the store, for the user's next message in
// that chat (textTurn), for DocumentOptions.Keep at most; it goes with the
// conversation and the account.
//
// Budget: the document is a message of its own before the question and may
// fill the model's whole window less the answer's reserve, the system
// prompt and the question (turn); past that it is cut, and the user is told
// what share was used. History then gets what is left, up to HistoryTokens.
// In the history the turn is kept as "[document: name]", the document's
// text (only when it takes at most half of HistoryTokens, so that later
// questions still see it without crowding the conversation out) and the
// question.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
	"github.com/valex-ai/valex/doctext"
)

// DocumentStore keeps a user's pending document (store.DB).
type DocumentStore interface {
	PutDocument(userID int64, d valex.PendingDocument) error
	Document(userID int64) (valex.PendingDocument, bool, error)
	DropDocument(userID int64, at time.Time) error
}

// DocumentOptions bound the documents read; zero values take the defaults.
type DocumentOptions struct {
	MaxBytes int64         // largest file, default 10 MB (Telegram lets bots download 20 MB)
	MaxPages int           // most PDF pages, default 50
	MaxChars int           // most characters extracted, default 200,000
	Keep     time.Duration // how long a document sent without a question waits, default 1 hour
}

// minDocumentTokens: a model whose window leaves less than this for a
// document cannot usefully read one.
const minDocumentTokens = 256

// withDefaults fills what the configuration left out; NewAI applies it once.
func (o DocumentOptions) withDefaults() DocumentOptions {
	if o.MaxBytes <= 0 {
		o.MaxBytes = 10 << 20
	}
	o.MaxBytes = min(o.MaxBytes, bot.MaxDownloadSize)
	if o.MaxPages <= 0 {
		o.MaxPages = 50
	}
	if o.MaxChars <= 0 {
		o.MaxChars = 200_000
	}
	if o.Keep <= 0 {
		o.Keep = time.Hour
	}
	return o
}

func (a *AI) docOptions() DocumentOptions { return a.opt.Documents }

// Document is a file sent to the bot: read and answered with its caption,
// or kept for the next message.
func (a *AI) Document(ctx context.Context, r *bot.Request) error {
	f := r.Document
	if f == nil {
		return valex.Errorf("error.unsupported_update", nil)
	}
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	kind, ok := doctext.KindOf(f.Name, f.MIME)
	if !ok {
		return valex.Errorf("ai.document.unsupported", map[string]any{"Name": tghtml.Escape(f.Name)})
	}
	o := a.docOptions()
	if f.Size > o.MaxBytes {
		return valex.Errorf("ai.document.too_big", map[string]any{"MB": o.MaxBytes >> 20})
	}
	question := r.Text
	if !r.Private() {
		question = stripMention(question, a.opt.BotUsername)
		if question == "" {
			// Groups keep no history: a document waiting for a question
			// could meet one from another chat.
			return valex.Errorf("ai.document.group_question", nil)
		}
	}
	ad, err := a.ready(ctx, r)
	if !ad.ok || err != nil {
		if err == nil && ad.ask {
			// Not held like a text: the file is not downloaded before
			// the user agrees, so it is sent again.
			_, err = a.out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "ai.document.after_consent", nil)})
		}
		return err
	}
	doc := *f
	a.submit(r, ad.ticket, r.Defer(), func(ctx context.Context) {
		if err := a.documentTurn(ctx, r, doc, kind, question); err != nil && ctx.Err() == nil {
			a.report(ctx, r, err)
		}
	})
	return nil
}

// documentTurn downloads and reads the document, then answers the question
// or keeps the text for the next message.
func (a *AI) documentTurn(ctx context.Context, r *bot.Request, f bot.File, kind doctext.Kind, question string) error {
	if ok, err := a.consent.CanUseAI(r.From.ID); err != nil || !ok {
		return err // withdrawn while the job waited: nothing is read
	}
	o := a.docOptions()
	_ = a.out.Typing(a.tg, r.ChatID, r.ThreadID, "typing")
	data, err := a.files.Download(ctx, f.ID, o.MaxBytes)
	if errors.Is(err, bot.ErrFileTooBig) {
		return valex.Errorf("ai.document.too_big", map[string]any{"MB": o.MaxBytes >> 20})
	}
	if err != nil {
		return err
	}
	d, err := doctext.Extract(kind, data, doctext.Limits{MaxPages: o.MaxPages, MaxChars: o.MaxChars, MaxUnpacked: 4 * o.MaxBytes})
	if err != nil {
		return documentError(err, o)
	}
	name := f.Name
	if name == "" {
		name = "document." + string(kind)
	}
	if d.Truncated {
		if _, err := a.out.Send(a.tg, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "ai.document.truncated", map[string]any{"Chars": integer(r.Lang, int64(o.MaxChars))})}); err != nil {
			return err
		}
	}
	pd := valex.PendingDocument{Name: name, Pages: d.Pages, Text: d.Text, Truncated: d.Truncated, ChatID: r.ChatID, At: a.h.Clock.Now()}
	if question != "" {
		return a.turnWithDocument(ctx, r, question, pd, false)
	}
	s, err := a.store.AISettings(r.From.ID)
	if err != nil {
		return err
	}
	if pd.Conversation, err = a.conversationFor(ctx, r, s); err != nil { // a topic's own (topics.go)
		return err
	}
	if err := a.write(ctx, r.From.ID, func() error { return a.store.PutDocument(r.From.ID, pd) }); err != nil {
		return err
	}
	size := a.h.Tr.N(r.Lang, "ai.document.tokens", ai.EstimateTokens(d.Text), map[string]any{"Tokens": integer(r.Lang, int64(ai.EstimateTokens(d.Text)))})
	if d.Pages > 0 {
		size = a.h.Tr.N(r.Lang, "ai.document.pages", d.Pages, nil) + ", " + size
	}
	text := a.h.t(r, "ai.document.read", map[string]any{"Name": tghtml.Escape(name), "Size": size})
	if _, err := a.out.Send(a.tg, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: text, ReplyTo: r.MessageID}); err != nil {
		return err
	}
	settle(ctx)
	return nil
}

// documentError is what the user is told about a document that could not
// be read.
func documentError(err error, o DocumentOptions) error {
	switch {
	case errors.Is(err, doctext.ErrTooManyPages):
		return valex.Errorf("ai.document.too_many_pages", map[string]any{"Max": o.MaxPages})
	case errors.Is(err, doctext.ErrNoText):
		return valex.Errorf("ai.document.scanned", nil)
	case errors.Is(err, doctext.ErrNotText):
		return valex.Errorf("ai.document.not_text", nil)
	case errors.Is(err, doctext.ErrEmpty):
		return valex.Errorf("ai.document.empty", nil)
	case errors.Is(err, doctext.ErrEncrypted):
		return valex.Errorf("ai.document.encrypted", nil)
	case errors.Is(err, doctext.ErrTooBig):
		return valex.Errorf("ai.document.too_big", map[string]any{"MB": o.MaxBytes >> 20})
	case errors.Is(err, doctext.ErrUnsupported):
		return valex.Errorf("ai.document.unsupported", map[string]any{"Name": ""})
	}
	return valex.Errorf("ai.document.malformed", nil)
}

// textTurn answers a text message, with the user's pending document when
// one waits for it in this chat and conversation. The document is dropped
// once the turn has ended; a turn a shutdown interrupted keeps it for the
// replay.
func (a *AI) textTurn(ctx context.Context, r *bot.Request, text string) error {
	pd, ok, err := a.pendingDocument(r)
	if err != nil {
		return err
	}
	if !ok {
		return a.turn(ctx, r, turnInput{text: text, stored: text})
	}
	return a.turnWithDocument(ctx, r, text, pd, true)
}

// pendingDocument returns the user's document waiting for this message:
// read in this chat, for the current conversation, not expired.
func (a *AI) pendingDocument(r *bot.Request) (valex.PendingDocument, bool, error) {
	if !r.Private() {
		return valex.PendingDocument{}, false, nil
	}
	pd, ok, err := a.store.Document(r.From.ID)
	if err != nil || !ok {
		return pd, false, err
	}
	s, err := a.store.AISettings(r.From.ID)
	if err != nil {
		return pd, false, err
	}
	if pd.ChatID != r.ChatID || pd.Conversation != conversationOf(s, r) || a.h.Clock.Now().Sub(pd.At) > a.docOptions().Keep {
		return pd, false, nil
	}
	return pd, true, nil
}

// turnWithDocument answers question with the document as context, cut to
// what the model's window holds. A pending (stored) document is dropped
// once used.
func (a *AI) turnWithDocument(ctx context.Context, r *bot.Request, question string, pd valex.PendingDocument, pending bool) error {
	body := pd.Text
	room, err := a.documentRoom(r, question, pd.Name)
	if err != nil {
		return err
	}
	if n := turnTokens(body); n > room {
		body = cutTokens(body, room)
		pct := max(1, 100*len(body)/max(len(pd.Text), 1))
		if _, err := a.out.Send(a.tg, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "ai.document.cut", map[string]any{"Percent": pct})}); err != nil {
			return err
		}
	}
	in := turnInput{text: question, document: documentMessage(pd.Name, body)}
	in.stored = "[document: " + pd.Name + "]\n\n" + question
	if turnTokens(in.document) <= a.opt.HistoryTokens/2 {
		in.stored = in.document + "\n\n" + question
	}
	err = a.turn(ctx, r, in)
	if err != nil || !pending || a.interrupted(ctx) {
		return err
	}
	// Used: later messages go without it (the history keeps what fits).
	if err := a.write(ctx, r.From.ID, func() error { return a.store.DropDocument(r.From.ID, pd.At) }); err != nil && !errors.Is(err, errStopped) {
		return err
	}
	return nil
}

// documentMessage frames a document's text for the model.
func documentMessage(name, text string) string {
	return fmt.Sprintf("[document: %s]\n\n%s", name, text)
}

// documentRoom is how many tokens the document may take in this turn: the
// model's window less the answer's reserve, the system prompt, the question
// and the framing.
func (a *AI) documentRoom(r *bot.Request, question, name string) (int, error) {
	s, err := a.store.AISettings(r.From.ID)
	if err != nil {
		return 0, err
	}
	m, ok := a.modelFor(s.Model, ai.CapChat, a.opt.Plan(r.From.ID))
	if !ok {
		return 0, valex.Errorf("ai.error.no_model", nil)
	}
	window := m.ContextTokens
	if window <= 0 {
		window = 8192 // as turn assumes
	}
	room := window - a.opt.AnswerTokens - turnTokens(a.mode(s.Mode).Prompt) - turnTokens(question) - turnTokens(documentMessage(name, ""))
	if room < minDocumentTokens {
		return 0, valex.Errorf("ai.error.too_long", nil)
	}
	return room, nil
}

// cutTokens keeps the start of s that ai.EstimateTokens puts within n
// tokens (with turnTokens' framing).
func cutTokens(s string, n int) string {
	budget := 4 * (n - 4) // in quarter tokens, as EstimateTokens counts
	used := 0
	for i, r := range s {
		switch {
		case r < 0x80:
			used++
		case r < 0x2E80:
			used += 2
		default:
			used += 4
		}
		if used > budget {
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}
