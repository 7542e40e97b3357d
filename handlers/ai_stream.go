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

// stream runs a streamed chat request and shows the answer as it arrives:
// one message edited at most once per EditInterval (and at least once per
// interval while text keeps coming), continued in a new message past 4096
// characters, and finally the exact answer rendered from Markdown. It
// returns the text the user was shown (all of it, unless cancelled or
// capped).
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
	s := &answer{out: a.out, chatID: r.ChatID, interval: interval, maxParts: maxParts, wake: make(chan struct{}, 1), keyboard: kb}
	if !r.Private() {
		s.replyTo = r.MessageID
	}
	// Telegram calls run on the AI's Telegram context: /cancel stops the
	// provider, not the edits that make what was shown consistent.
	tctx := a.tg
	genCtx, cancelGen := context.WithCancel(ctx)
	defer cancelGen()
	s.stopGen = cancelGen

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
	// Capped while streaming: we stopped the generation, its error is ours.
	cappedLive := s.capped

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
	s.reasoning = res.Reasoning
	if err != nil && !cappedLive {
		s.keyboard = nil // cut off: nothing was kept to answer again
	}
	// The final edit respects the interval too (there is none when the
	// last edit showed it all: then the answer has been seen already).
	if last != nil && s.finalChanges(res.Text) {
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
	if s.capped && (err == nil || cappedLive) {
		if err != nil {
			res.Usage = a.generatedUsage(req, res) // the provider's count comes only at the end
		}
		if _, serr := a.out.Send(tctx, bot.Message{ChatID: r.ChatID, Text: a.h.t(r, "ai.chat.capped", nil)}); serr != nil {
			return s.shownRaw, res, serr
		}
		return s.shownRaw, res, nil
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
	replyTo  int
	interval time.Duration
	maxParts int    // most messages the answer may take
	stopGen  func() // stops the generation: nobody will see the rest

	mu   sync.Mutex
	text strings.Builder
	wake chan struct{}

	// Used by edit while it runs, then by final.
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
		if s.err != nil || s.capped || raw == s.shownRaw {
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
			m := bot.Message{ChatID: s.chatID, Text: p, Keyboard: kb}
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
