package handlers

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// A reasoning model's thinking is shown collapsed above the answer, with
// the buttons still under it, and is not kept in the history by default.
func TestReasoningIsShownCollapsedAboveTheAnswer(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Reasoning: "The user wants <b>bold</b> & brief.", TokenDelay: 5e6})
	x.say(ann, "be brief")
	msgs := x.emu.Messages(ann.ID)
	last := msgs[len(msgs)-1]
	wantRaw := "<blockquote expandable>💭 The user wants &lt;b&gt;bold&lt;/b&gt; &amp; brief.</blockquote>\necho: be brief"
	if last.Raw != wantRaw {
		t.Errorf("answer sent as %q,\nwant %q", last.Raw, wantRaw)
	}
	if last.Text != "💭 The user wants <b>bold</b> & brief.\necho: be brief" {
		t.Errorf("answer reads %q", last.Text)
	}
	if len(last.Keyboard) == 0 {
		t.Error("no buttons under the answer with reasoning")
	}
	if h := turnTexts(x.history(ann)); h != "user:be brief|assistant:echo: be brief" {
		t.Errorf("history = %q: the reasoning is not to be stored", h)
	}
	if f := x.failedCalls(); len(f) > 0 {
		t.Errorf("failed Bot API calls: %v", f)
	}
}

func TestReasoningIsStoredWhenConfigured(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) { c.opts.StoreReasoning = true })
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Reasoning: "think first"})
	x.say(ann, "hi")
	want := "user:hi|assistant:<think>\nthink first\n</think>\n\necho: hi"
	if h := turnTexts(x.history(ann)); h != want {
		t.Errorf("history = %q, want %q", h, want)
	}
}

// Long reasoning is cut to a quarter of a message, with an ellipsis, and
// the answer still fits.
func TestLongReasoningIsShortened(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	long := strings.Repeat("hmm, let me weigh that ", 400) // 9,200 characters
	x.aisv.Script("chat-a-name", aitest.Step{Reasoning: long, Text: strings.Repeat("answer ", 560), ChunkSize: 400})
	x.say(ann, "think hard")
	var first bottest.Message
	for _, m := range x.emu.Messages(ann.ID) {
		if !m.Deleted {
			first = m
			break
		}
	}
	quote, _, ok := strings.Cut(strings.TrimPrefix(first.Raw, "<blockquote expandable>"), "</blockquote>")
	if !ok || !strings.HasPrefix(first.Raw, "<blockquote expandable>💭 hmm") {
		t.Fatalf("first message: %.200q", first.Raw)
	}
	if n := utf8.RuneCountInString(quote); n > maxReasoningChars+2 || !strings.HasSuffix(quote, "…") {
		t.Errorf("reasoning shown: %d characters, ends %q", n, quote[len(quote)-10:])
	}
	if f := x.failedCalls(); len(f) > 0 {
		t.Errorf("failed Bot API calls: %v", f)
	}
	if got := strings.Count(strings.Join(x.texts(ann.ID), " "), "answer"); got != 560 {
		t.Errorf("the answer shows %d of its 560 words", got)
	}
}
