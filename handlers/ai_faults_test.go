package handlers

import (
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Provider faults as the user meets them: every answer ends within its
// clocks, with an answer from the fallback or a clear line, and the ledger
// charges only what was really answered.

// The keep-alive case ends well before faultAnswer only if empty chunks do
// not restart chat-a's idle clock.
const (
	faultIdle   = 400 * time.Millisecond // chat-a's wait for text
	faultAnswer = 2 * time.Second        // a whole answer, fallbacks included
)

// shortClocks gives chat-a short streaming clocks.
func shortClocks(c *harnessConfig) {
	c.router = func(rc *ai.Config) {
		rc.AnswerTimeout = faultAnswer
		for i := range rc.Models {
			if rc.Models[i].ID == "chat-a" {
				rc.Models[i].Timeout = faultIdle
			}
		}
	}
}

func TestProviderFaultsAreNotCharged(t *testing.T) {
	const question = "are you there"
	trickle := words(200) // a word every 100ms: far past the answer's deadline
	tests := []struct {
		name  string
		main  aitest.Step // chat-a
		spare aitest.Step // chat-b, its fallback
		// want is the user's last message: the fallback's answer, or a
		// line containing it. shown is text kept before that line.
		want  string
		shown string
		// charged: the ledger holds one chat-b entry (the fallback answered);
		// otherwise nothing.
		charged bool
		within  time.Duration
	}{
		{"server error", aitest.Step{Status: 500}, aitest.Step{}, "echo: " + question, "", true, time.Second},
		{"rate limited", aitest.Step{Status: 429}, aitest.Step{}, "echo: " + question, "", true, time.Second},
		{"hang", aitest.Step{Hang: true}, aitest.Step{}, "echo: " + question, "", true, faultIdle + time.Second},
		{"empty answer", aitest.Step{Fault: aitest.EmptyAnswer}, aitest.Step{}, "echo: " + question, "", true, time.Second},
		{"empty body", aitest.Step{Fault: aitest.EmptyBody}, aitest.Step{}, "echo: " + question, "", true, time.Second},
		{"json body", aitest.Step{Fault: aitest.JSONBody}, aitest.Step{}, "echo: " + question, "", true, time.Second},
		{"html body", aitest.Step{Fault: aitest.HTMLBody}, aitest.Step{}, "echo: " + question, "", true, time.Second},
		{"keep-alive trickle", aitest.Step{Fault: aitest.KeepAlive, TokenDelay: 50 * time.Millisecond}, aitest.Step{},
			"echo: " + question, "", true, faultIdle + time.Second},
		{"empty everywhere", aitest.Step{Fault: aitest.EmptyAnswer}, aitest.Step{Fault: aitest.EmptyAnswer},
			"not answering right now", "", false, time.Second},
		{"json everywhere", aitest.Step{Fault: aitest.JSONBody}, aitest.Step{Fault: aitest.HTMLBody},
			"not answering right now", "", false, time.Second},
		{"no done after text", aitest.Step{Fault: aitest.NoDone, Text: "it all seems fine"}, aitest.Step{},
			"cut off", "it all seems fine", false, time.Second},
		{"text trickle", aitest.Step{Text: trickle, ChunkSize: 3, TokenDelay: 100 * time.Millisecond}, aitest.Step{},
			"cut off", trickle, false, faultAnswer + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := newAIHarness(t, shortClocks)
			x.register(ann, true)
			x.aisv.Script("chat-a-name", tt.main)
			x.aisv.Script("chat-b-name", tt.spare)
			start := time.Now()
			x.say(ann, question)
			if took := time.Since(start); took > tt.within {
				t.Errorf("the answer took %v, want at most %v", took, tt.within)
			}

			got := x.texts(ann.ID)
			if len(got) == 0 || !strings.Contains(got[len(got)-1], tt.want) {
				t.Fatalf("messages = %q, want the last to say %q", got, tt.want)
			}
			if tt.want == "echo: "+question && got[len(got)-1] != tt.want {
				t.Errorf("answer = %q, want exactly %q", got[len(got)-1], tt.want)
			}
			if !tt.charged && !strings.Contains(got[len(got)-1], "charged") {
				t.Errorf("the user is not told nothing was charged: %q", got[len(got)-1])
			}
			if tt.shown != "" {
				if len(got) != 2 || !strings.HasPrefix(tt.shown, got[0]) || got[0] == "" {
					t.Errorf("messages = %q, want a prefix of %q kept before the line", got, tt.shown)
				}
			} else if len(got) != 1 {
				t.Errorf("messages = %q, want only the last", got)
			}

			l, h := x.usage(ann), x.history(ann)
			if tt.charged {
				if len(l) != 1 || l[0].Model != "chat-b" || l[0].Cost <= 0 {
					t.Errorf("ledger = %+v, want one chat-b entry", l)
				}
				if len(h) != 2 || h[1].Text != tt.want {
					t.Errorf("history = %+v", h)
				}
			} else if len(l) != 0 || len(h) != 0 {
				t.Errorf("ledger %+v, history %+v; want nothing for a failed answer", l, h)
			}
			for _, q := range x.aisv.Requests() {
				if q.MaxTokens != ai.DefaultMaxTokens {
					t.Errorf("request to %s sent max tokens %d, want %d", q.Model, q.MaxTokens, ai.DefaultMaxTokens)
				}
			}
		})
	}
}

// A huge answer (a provider ignoring max_tokens) is shown in at most
// MaxMessages messages; then the generation stops, the user is told, and
// what was generated is charged and kept.
func TestHugeAnswerIsCapped(t *testing.T) {
	const maxMessages = 3
	full := words(400_000) // ~3 MB
	x := newAIHarness(t, func(c *harnessConfig) {
		c.opts.MaxMessages = maxMessages
		c.router = func(rc *ai.Config) {
			for i := range rc.Models {
				rc.Models[i].MaxTokens = 1 << 30 // the provider sends it all
				// A loaded machine (-race, other packages) must not turn a
				// slow cut into a timeout and a fallback answer.
				rc.Models[i].Timeout = 30 * time.Second
			}
		}
	})
	x.register(ann, true)
	// Streamed in full this takes ~1500 chunks × 5ms = 7.5s.
	x.aisv.Script("chat-a-name", aitest.Step{Text: full, ChunkSize: 2000, TokenDelay: 5 * time.Millisecond})
	// That the generation stopped at the cap shows in the charge below:
	// what was received, far less than the whole answer.
	x.say(ann, "tell me everything")

	got := x.texts(ann.ID)
	if len(got) != maxMessages+1 {
		t.Fatalf("%d messages, want %d of the answer and the line", len(got), maxMessages)
	}
	if !strings.Contains(got[maxMessages], "too long for the chat") || !strings.Contains(got[maxMessages], "continue") {
		t.Errorf("the line = %q", got[maxMessages])
	}
	shown := strings.Join(got[:maxMessages], " ")
	for i, m := range got[:maxMessages] {
		if n := tghtml.VisibleLen(m); n > tghtml.MaxMessageLen || n < tghtml.MaxMessageLen/2 {
			t.Errorf("message %d has %d characters", i, n)
		}
	}
	if !strings.HasPrefix(full, strings.Join(strings.Fields(shown), " ")) {
		t.Errorf("the messages are not the answer's beginning")
	}
	if f := x.failedCalls(); len(f) > 0 {
		t.Errorf("failed calls: %v", f)
	}

	// Charged for what was generated before the stop: more than was
	// shown, far less than the whole.
	l := x.usage(ann)
	if len(l) != 1 || l[0].Model != "chat-a" || l[0].Cost <= 0 {
		t.Fatalf("ledger = %+v, want one chat-a entry", l)
	}
	if out := l[0].OutputTokens; out < ai.EstimateTokens(shown) || out > ai.EstimateTokens(full)/10 {
		t.Errorf("charged %d output tokens: shown %d, whole answer %d", out, ai.EstimateTokens(shown), ai.EstimateTokens(full))
	}
	// The history keeps what was shown, so that "continue" goes on from it.
	h := x.history(ann)
	if len(h) != 2 || strings.Join(strings.Fields(h[1].Text), " ") != strings.Join(strings.Fields(shown), " ") {
		t.Errorf("history keeps %d turns; the answer kept differs from what was shown", len(h))
	}
}

// The Russian line is Russian.
func TestCappedLineIsLocalized(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) { c.opts.MaxMessages = 1 })
	x.register(vera, true)
	x.aisv.Script("chat-a-name", aitest.Step{Text: words(2000), ChunkSize: 500})
	x.say(vera, "всё")
	got := x.texts(vera.ID)
	if len(got) != 2 || !strings.Contains(got[1], "слишком длинным") {
		t.Errorf("%d messages, the last %.200q; want the answer and the Russian line", len(got), got[len(got)-1])
	}
	if l := x.usage(vera); len(l) != 1 || l[0].OutputTokens <= 0 {
		t.Errorf("ledger = %+v, want the capped answer charged", l)
	}
}
