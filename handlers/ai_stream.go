package handlers

// Streaming an answer into a Telegram message: paced edits, the cap on its
// length, cut-off and failure.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// defaultMaxMessages caps an answer when AIOptions.MaxMessages is unset.
const defaultMaxMessages = 8

// maxRawPerMessage bounds the Markdown looked at per message of the cap
// (4 bytes per visible character): a provider sending megabytes at once
// costs one bounded render, not one of everything it sent.
const maxRawPerMessage = 4 * tghtml.MaxMessageLen

// stream runs a streamed chat request and shows the answer as it arrives.
// In a private chat it streams as drafts (sendMessageDraft, with a stop
// button) at most once per DraftInterval, then sends the final rendering as
// messages; in a group, or once a draft is refused, it shows one message
// edited at most once per EditInterval (and at least once per interval
// while text keeps coming), continued in a new message past 4096
// characters. Either way the answer ends as the exact answer rendered from
// Markdown, shown as soon as it is complete. It returns the text the user
// was shown (all of it, unless cancelled or capped).
//
// An answer that needs more than MaxMessages messages is capped: the
// generation stops, the user is told, and what was generated is charged —
// the provider's count when the stream had finished, an estimate of the
// text received when it was stopped.
//
// kb (retryKeyboard) goes under the last message of a complete or capped
// answer; the model's reasoning, when it sent any, is shown collapsed above
// the final answer (withReasoning).
func (a *AI) stream(ctx context.Context, r *bot.Request, req ai.ChatRequest, kb [][]bot.Button) (string, ai.ChatResult, error) {
	interval := a.opt.EditInterval
	if !r.Private() {
		interval = a.opt.GroupEditInterval
	}
	maxParts := a.opt.MaxMessages
	if maxParts <= 0 {
		maxParts = defaultMaxMessages
	}
	s := &answer{out: a.out, chatID: r.ChatID, threadID: r.ThreadID, interval: interval, maxParts: maxParts, wake: make(chan struct{}, 1), keyboard: kb}
	if !r.Private() {
		s.replyTo = r.MessageID
	} else if !a.noDrafts.Load() {
		s.drafting, s.draftID, s.draftEvery = true, a.draftID(r), a.opt.DraftInterval
		a.streaming(ctx, s.draftID) // its stop button stops this job
	}
	// Telegram calls run on the AI's Telegram context: /cancel stops the
	// provider, not the calls that make what was shown consistent.
	tctx := a.tg
	genCtx, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	s.stopGen = cancelGen

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); s.run(tctx, stop) }()

	res, err := a.models.ChatStream(genCtx, req, func(delta string) {
		if genCtx.Err() == nil { // nothing more is shown once stopped
			s.add(delta)
		}
	})
	close(stop)
	<-done
	if isNotFound(s.refused) {
		a.noDrafts.Store(true) // a Bot API server without drafts: edits from now on
	}
	// Capped while streaming: we stopped the generation, its error is ours.
	cappedLive := s.capped

	if stoppedForPrivacy(ctx) {
		return s.shownRaw, res, errStopped // not even what came is shown
	}
	if s.failed() {
		return s.shownRaw, res, s.err
	}
	if err != nil && ctx.Err() != nil {
		// Cancelled (/cancel, the stop button): what was shown stays. A
		// draft vanishes by itself, so what it showed is sent as the
		// answer; a shutdown keeps nothing, the whole answer comes after
		// the restart.
		if s.drafting && s.drafted != "" && !a.interrupted(ctx) {
			s.keyboard = nil // stopped: nothing is kept to answer again
			s.show(tctx, s.drafted, true)
			if s.failed() {
				return s.shownRaw, res, s.err
			}
		}
		return s.shownRaw, res, err
	}
	if res.Text == "" && err != nil {
		return "", res, err
	}
	s.reasoning = res.Reasoning
	if err != nil && !cappedLive {
		s.keyboard = nil // cut off: nothing was kept to answer again
	}
	// Shown at once: the outbox paces the call, the answer waits for
	// nothing else.
	s.final(tctx, res.Text)
	if s.failed() {
		return s.shownRaw, res, s.err
	}
	if s.capped && (err == nil || cappedLive) {
		if err != nil {
			res.Usage = a.generatedUsage(req, res) // the provider's count comes only at the end
		}
		if _, serr := a.out.Send(tctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "ai.chat.capped", nil)}); serr != nil {
			return s.shownRaw, res, serr
		}
		return s.shownRaw, res, nil
	}
	if err != nil {
		// The stream broke after some text: keep it, say so, charge nothing.
		if _, serr := a.out.Send(tctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: a.h.t(r, "ai.chat.cut_off", nil)}); serr != nil {
			return s.shownRaw, res, serr
		}
		a.h.Log.Warn().Str("error", a.h.IDs.Redact(err.Error(), r.From.ID)).Str("user", a.h.IDs.User(r.From.ID)).Msg("answer stream broke")
		return s.shownRaw, res, errCutOff
	}
	return res.Text, res, nil
}

// errCutOff: the user has already been told.
var errCutOff = errors.New("answer cut off")

// generatedUsage estimates what a stream stopped at the cap consumed: the
// prompt, and the text received from the model that answered.
func (a *AI) generatedUsage(req ai.ChatRequest, res ai.ChatResult) ai.Usage {
	if len(res.Tried) == 0 {
		return ai.Usage{}
	}
	m, ok := a.models.Model(res.Tried[len(res.Tried)-1])
	if !ok {
		return ai.Usage{}
	}
	c := ai.CapChat
	for _, msg := range req.Messages {
		if len(msg.ImageJPEG) > 0 {
			c = ai.CapVision
		}
	}
	u := ai.Usage{Model: m.ID, Capability: c, InputTokens: estimateMessages(req.Messages),
		OutputTokens: ai.EstimateTokens(res.Text), At: a.h.Clock.Now()}
	u.Cost = a.models.Cost(m, u)
	return u
}

// answer is a streamed answer on its way to Telegram.
type answer struct {
	out      AIOutbox
	chatID   int64
	threadID int // the topic of the question: the answer goes there
	replyTo  int
	interval time.Duration
	maxParts int    // most messages the answer may take
	stopGen  func() // stops the generation: nobody will see the rest

	// Drafts, in private chats: while drafting, the answer is shown as
	// draft draftID at most once per draftEvery, and sent as messages at
	// the end. A refused draft (refused) ends drafting for the rest of the
	// answer: edits take over.
	drafting   bool
	draftID    int64
	draftEvery time.Duration
	drafted    string    // the Markdown the last draft showed
	draftedAt  time.Time // when, to refresh it before Telegram drops it
	refused    error

	mu   sync.Mutex
	text strings.Builder
	wake chan struct{}

	// Used by run while it runs, then by final.
	ids      []int    // the messages of the answer
	shown    []string // HTML each shows
	shownRaw string   // the Markdown rendered in them
	err      error    // the first Telegram failure; nothing is sent after it
	capped   bool     // the answer outgrew maxParts; nothing more is shown

	// The final rendering's extras: the buttons under its last message
	// (ai_retry.go) and the reasoning above its first (ai_reasoning.go).
	keyboard  [][]bot.Button
	kbShown   bool
	reasoning string
}

// draftRefresh is how long a draft is left unchanged before it is sent
// again: Telegram shows one for about 30 seconds (a slow model's
// "Thinking…" among them).
const draftRefresh = 20 * time.Second

// poke wakes run without new text.
func (s *answer) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
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

// run shows new text as it arrives until stop is closed: as drafts at most
// once per draftEvery, or by editing messages at most once per interval.
func (s *answer) run(ctx context.Context, stop <-chan struct{}) {
	// The first draft waits draftEvery: an answer complete by then is sent
	// as its message with no draft before it. Then it shows what the model
	// wrote, or "Thinking…" when it has not written yet.
	var first <-chan time.Time
	if s.drafting {
		t := time.NewTimer(s.draftEvery)
		defer t.Stop()
		first = t.C
	} else {
		_ = s.out.Typing(ctx, s.chatID, s.threadID, "typing") // a courtesy: its failure changes nothing
	}
	typing := time.NewTicker(4 * time.Second) // Telegram shows "typing" for 5s
	defer typing.Stop()
	var gate *time.Timer // the next call's earliest moment; nil: now
	for {
		select {
		case <-stop:
			return
		case <-first:
			first = nil
			s.mu.Lock()
			raw := s.text.String()
			s.mu.Unlock()
			if s.err == nil && !s.capped && s.draft(ctx, raw) {
				gate = time.NewTimer(s.draftEvery)
			}
			s.poke() // newer text, a skipped draft, or edits taking over
			continue
		case <-typing.C:
			switch {
			case s.drafting && s.err == nil && !s.capped && time.Since(s.draftedAt) >= draftRefresh:
				s.draft(ctx, s.drafted)
			case !s.drafting && len(s.ids) == 0 && s.err == nil:
				_ = s.out.Typing(ctx, s.chatID, s.threadID, "typing")
			}
			continue
		case <-s.wake:
			if first != nil {
				continue // the first draft shows the latest text when its time comes
			}
		}
		if gate != nil {
			select {
			case <-gate.C:
				gate = nil
			case <-stop:
				return
			}
		}
		s.mu.Lock()
		raw := s.text.String()
		s.mu.Unlock()
		if s.err != nil || s.capped {
			continue
		}
		if s.drafting {
			if raw != s.drafted && s.draft(ctx, raw) {
				gate = time.NewTimer(s.draftEvery)
				if s.drafting && raw != s.drafted {
					s.poke() // skipped (the chat was busy): try again after the gate
				}
			}
			if s.drafting || s.capped || s.err != nil {
				continue
			}
			// Drafts refused: messages take over at once.
		}
		if raw != s.shownRaw && s.show(ctx, raw, false) {
			gate = time.NewTimer(s.interval)
		}
	}
}

// draft shows raw as the answer's draft: the last message of its rendering,
// the one being written ("" shows "Thinking…"). It reports whether it
// tried, so the next try waits draftEvery. Past the cap the answer is
// sent, cut, as messages. A draft Telegram refuses for good ends drafting.
func (s *answer) draft(ctx context.Context, raw string) bool {
	var text string
	if raw != "" {
		parts, fits := s.render(raw, false)
		if !fits {
			s.show(ctx, raw, false) // capped: the cut is the answer
			return true
		}
		if len(parts) > 0 {
			text = parts[len(parts)-1]
		}
	}
	err := s.out.SendDraft(ctx, bot.Draft{ChatID: s.chatID, ThreadID: s.threadID, DraftID: s.draftID, Text: text, CanStop: true})
	switch {
	case err == nil:
		s.drafted, s.draftedAt = raw, time.Now()
		return true
	case errors.Is(err, bot.ErrDraftSkipped):
		return true // busy or held by a flood wait: a later draft shows it
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return false
	}
	s.drafting, s.refused = false, err
	return false
}

// isNotFound reports a method the Bot API server does not know.
func isNotFound(err error) bool {
	var ae *bot.APIError
	return errors.As(err, &ae) && ae.Code == 404
}

// final shows the complete answer exactly, or as much of it as the cap
// allows.
func (s *answer) final(ctx context.Context, raw string) {
	if s.err == nil && !s.capped && s.finalChanges(raw) {
		s.show(ctx, raw, true)
	}
}

// finalChanges reports whether the final rendering of raw differs from what
// is shown: new text, or the reasoning and buttons only the final shows.
func (s *answer) finalChanges(raw string) bool {
	return raw != s.shownRaw || s.reasoning != "" || (s.keyboard != nil && !s.kbShown)
}

// show renders raw and brings the answer's messages up to date with it. It
// reports whether it sent anything. Past the cap it shows the part of raw
// that fits and stops the generation.
func (s *answer) show(ctx context.Context, raw string, final bool) bool {
	parts, fits := s.render(raw, final)
	if !fits {
		raw, parts = s.cut(raw)
		s.capped, final = true, true // the cut can take fewer messages than a partial render did
		if s.stopGen != nil {
			s.stopGen() // nobody sees the rest: stop generating it
		}
	}
	if len(parts) == 0 {
		return false
	}
	sent := false
	for i, p := range parts {
		var kb [][]bot.Button
		if final && i == len(parts)-1 {
			kb = s.keyboard
		}
		var err error
		switch {
		case i < len(s.ids) && s.shown[i] == p && kb == nil:
			continue
		case i < len(s.ids):
			err = s.out.Edit(ctx, s.chatID, s.ids[i], p, kb)
		default:
			var id int
			m := bot.Message{ChatID: s.chatID, ThreadID: s.threadID, Text: p, Keyboard: kb}
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
		s.kbShown = s.kbShown || kb != nil
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

// render is the messages that show raw (none for blank text), and whether
// they fit in the cap. The final rendering has the reasoning above it.
func (s *answer) render(raw string, final bool) ([]string, bool) {
	if len(raw) > s.maxParts*maxRawPerMessage {
		return nil, false
	}
	html := tghtml.MarkdownToHTML(raw)
	if strings.TrimSpace(html) == "" {
		return nil, true
	}
	if final {
		html = withReasoning(html, s.reasoning)
	}
	parts := tghtml.Split(html, tghtml.MaxMessageLen)
	return parts, len(parts) <= s.maxParts
}

// cut is the longest beginning of raw that fits in the cap, ended at a line
// or a word when one is near, and its messages.
func (s *answer) cut(raw string) (string, []string) {
	lo, hi := 0, len(raw) // raw[:lo] fits, raw[:hi] does not (show found it too long)
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		for mid > lo && !utf8.RuneStart(raw[mid]) {
			mid--
		}
		if mid == lo {
			break // lo and hi are within one character
		}
		if _, ok := s.render(raw[:mid], true); ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	n := lo
	if i := strings.LastIndexAny(raw[:n], "\n "); i > 0 && n-i < 200 {
		n = i // a cut inside a word reads as a typo
	}
	parts, _ := s.render(raw[:n], true)
	return raw[:n], parts
}

func (s *answer) fail(err error) {
	s.err = fmt.Errorf("show answer in chat %d: %w", s.chatID, err)
	if s.stopGen != nil {
		s.stopGen() // nobody sees the rest: stop generating it
	}
}

func (s *answer) failed() bool { return s.err != nil }
