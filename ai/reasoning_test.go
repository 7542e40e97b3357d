package ai_test

import (
	"context"
	"strings"
	"testing"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
)

// A reasoning model's thinking (reasoning_content) is kept apart from the
// answer: it arrives through OnReasoning, never through onDelta, and the
// usage estimate counts the answer only.
func TestReasoningIsKeptApartFromTheAnswer(t *testing.T) {
	const thinking = "The user greets me. I should greet back."
	tests := []struct {
		name    string
		noUsage bool
		field   string
	}{
		{"provider usage", false, ""},
		{"estimated usage", true, ""},
		{"OpenRouter's reasoning field", false, "reasoning"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, srv := newRouter(t, chatModel("thinker"))
			srv.Script("thinker-name", aitest.Step{Reasoning: thinking, NoUsage: tt.noUsage, ReasoningField: tt.field})
			var deltas, thoughts strings.Builder
			req := userSays("hello")
			req.Model = "thinker"
			req.OnReasoning = func(d string) {
				if deltas.Len() > 0 {
					t.Error("reasoning after the answer began")
				}
				thoughts.WriteString(d)
			}
			res, err := r.ChatStream(context.Background(), req, func(d string) { deltas.WriteString(d) })
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != "echo: hello" || deltas.String() != res.Text {
				t.Errorf("answer %q, deltas %q", res.Text, deltas.String())
			}
			if res.Reasoning != thinking || thoughts.String() != thinking {
				t.Errorf("reasoning %q, OnReasoning got %q", res.Reasoning, thoughts.String())
			}
			// The emulator reports the reasoning in completion_tokens (as
			// providers bill it); an estimate counts the answer alone.
			want := aitest.Tokens(res.Text)
			if !tt.noUsage {
				want += aitest.Tokens(thinking)
			}
			if tt.noUsage {
				want = ai.EstimateTokens(res.Text)
			}
			if res.Usage.OutputTokens != want {
				t.Errorf("output tokens = %d, want %d", res.Usage.OutputTokens, want)
			}
		})
	}
}

func TestReasoningWithoutStreaming(t *testing.T) {
	r, srv := newRouter(t, chatModel("thinker"))
	srv.Script("thinker-name", aitest.Step{Reasoning: "hmm"})
	req := userSays("hi")
	req.Model = "thinker"
	res, err := r.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "echo: hi" || res.Reasoning != "hmm" {
		t.Errorf("text %q, reasoning %q", res.Text, res.Reasoning)
	}
}

// Reasoning alone is not an answer: the model failed, the next one answers,
// and only its reasoning (none) is kept.
func TestReasoningWithoutAnswerFallsBack(t *testing.T) {
	r, srv := newRouter(t, chatModel("thinker", "plain"), chatModel("plain"))
	srv.Script("thinker-name", aitest.Step{Reasoning: "lost in thought", Fault: aitest.EmptyAnswer})
	req := userSays("hi")
	req.Model = "thinker"
	res, err := r.ChatStream(context.Background(), req, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "echo: hi" || res.Reasoning != "" || res.Usage.Model != "plain" {
		t.Errorf("result = %+v", res)
	}
}
