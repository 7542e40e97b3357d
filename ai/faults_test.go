package ai_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
)

// The provider fault matrix: answers that come with a 200 and are wrong all
// the same. Each ends within its clock, falls back when nothing was shown
// yet, and is never charged (zero Usage).

// Short streaming clocks, so that the matrix runs in seconds.
const (
	faultIdle   = time.Second     // wait for text, first and between deltas
	faultAnswer = 2 * time.Second // a whole answer, fallbacks included
)

// faultRouter is newRouter with the short clocks.
func faultRouter(tb testing.TB, models ...ai.Model) (*ai.Router, *aitest.Server) {
	tb.Helper()
	srv := aitest.New()
	tb.Cleanup(srv.Close)
	r, err := ai.New(ai.Config{Providers: providers(srv), Models: models, Timeout: faultIdle, AnswerTimeout: faultAnswer}, fixedClock{testNow})
	if err != nil {
		tb.Fatalf("ai.New: %v", err)
	}
	return r, srv
}

func manyWords(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "w%d", i)
	}
	return b.String()
}

func TestChatStreamProviderFaults(t *testing.T) {
	t.Parallel()
	trickle := manyWords(100) // ~600 runes at 1 rune per 200ms: far past the answer timeout
	tests := []struct {
		name   string
		step   aitest.Step
		cause  error  // what the failing model's error wraps
		reason string // its ModelError.Reason
		shown  string // text delivered before the failure: no fallback then; "" falls back
		// The failure takes between min and max.
		min, max time.Duration
	}{
		{"empty answer", aitest.Step{Fault: aitest.EmptyAnswer}, ai.ErrEmptyAnswer, "empty answer", "", 0, faultIdle},
		{"empty body", aitest.Step{Fault: aitest.EmptyBody}, ai.ErrIncompleteStream, "incomplete stream", "", 0, faultIdle},
		{"json body", aitest.Step{Fault: aitest.JSONBody}, ai.ErrIncompleteStream, "incomplete stream", "", 0, faultIdle},
		{"html body", aitest.Step{Fault: aitest.HTMLBody}, ai.ErrIncompleteStream, "incomplete stream", "", 0, faultIdle},
		{"no done", aitest.Step{Fault: aitest.NoDone, Text: "looks complete"}, ai.ErrIncompleteStream, "incomplete stream", "looks complete", 0, faultIdle},
		// Empty chunks every 50ms do not keep the call alive: it fails at
		// the idle timeout, not at the answer's deadline.
		{"keep-alive trickle", aitest.Step{Fault: aitest.KeepAlive, TokenDelay: 50 * time.Millisecond}, context.DeadlineExceeded, "timeout", "", faultIdle, faultAnswer},
		// Text every 200ms keeps the idle clock happy; the answer's
		// deadline still ends it.
		{"text trickle", aitest.Step{Text: trickle, ChunkSize: 1, TokenDelay: 200 * time.Millisecond}, context.DeadlineExceeded, "timeout", trickle, faultAnswer, faultAnswer + time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			backup := chatModel("backup")
			r, srv := faultRouter(t, chatModel("main", "backup"), backup)
			srv.Script("main-name", tc.step)
			req := userSays("hi")
			req.Model = "main"
			var got strings.Builder
			start := time.Now()
			res, err := r.ChatStream(context.Background(), req, func(d string) { got.WriteString(d) })
			took := time.Since(start)

			if took < tc.min || took > tc.max {
				t.Errorf("took %v, want between %v and %v", took, tc.min, tc.max)
			}
			if tc.shown == "" {
				// Nothing was shown: the backup answers, and only it is charged.
				if err != nil || res.Text != "echo: hi" || got.String() != "echo: hi" {
					t.Fatalf("Text = %q, delivered %q, err = %v; want the backup's answer", res.Text, got.String(), err)
				}
				if !slices.Equal(res.Tried, []string{"main", "backup"}) {
					t.Errorf("Tried = %v", res.Tried)
				}
				want := ai.Usage{Model: "backup", Capability: ai.CapChat, InputTokens: 2, OutputTokens: 2, At: testNow}
				want.Cost = r.Cost(backup, want)
				if res.Usage != want {
					t.Errorf("Usage = %+v, want the backup's %+v", res.Usage, want)
				}
			} else {
				// Text was shown: no fallback, the error, nothing charged.
				if err == nil || errors.Is(err, ai.ErrAllFailed) {
					t.Fatalf("err = %v, want main's own failure", err)
				}
				if res.Text == "" || !strings.HasPrefix(tc.shown, res.Text) || got.String() != res.Text {
					t.Errorf("Text = %q, delivered %q; want a prefix of %q", res.Text, got.String(), tc.shown)
				}
				if !slices.Equal(res.Tried, []string{"main"}) || srv.Count() != 1 {
					t.Errorf("Tried = %v, %d requests; want no fallback after text was shown", res.Tried, srv.Count())
				}
				if res.Usage != (ai.Usage{}) {
					t.Errorf("Usage = %+v, want none", res.Usage)
				}
			}
			if tc.shown == "" {
				// The same fault with the backup failing too: the cause is told.
				srv.Script("main-name", tc.step)
				srv.Script("backup-name", aitest.Step{Status: 500})
				res, err = r.ChatStream(context.Background(), req, func(string) {})
				if !errors.Is(err, ai.ErrAllFailed) {
					t.Fatalf("err = %v, want ErrAllFailed", err)
				}
				if res.Usage != (ai.Usage{}) || res.Text != "" {
					t.Errorf("result = %+v, want no text and no usage", res)
				}
			}
			if !errors.Is(err, tc.cause) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.cause)
			}
			var me *ai.ModelError
			if !errors.As(err, &me) || me.Model != "main" || me.Reason != tc.reason {
				t.Errorf("err = %v, want main failing with reason %q", err, tc.reason)
			}
		})
	}
}

// The answer's deadline covers the fallbacks: past it the next model fails
// at once, without a request, and the call is a timeout of every model.
func TestAnswerDeadlineCoversFallbacks(t *testing.T) {
	t.Parallel()
	main := chatModel("main", "backup")
	main.Timeout = time.Minute // its idle clock would wait far longer
	r, srv := faultRouter(t, main, chatModel("backup"))
	srv.Script("main-name", aitest.Step{Fault: aitest.KeepAlive, TokenDelay: 50 * time.Millisecond})
	req := userSays("hi")
	req.Model = "main"
	start := time.Now()
	res, err := r.ChatStream(context.Background(), req, func(string) {})
	if took := time.Since(start); took < faultAnswer || took > faultAnswer+time.Second {
		t.Errorf("took %v, want the answer timeout %v", took, faultAnswer)
	}
	if !errors.Is(err, ai.ErrAllFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want every model timed out", err)
	}
	if srv.Count() != 1 || res.Usage != (ai.Usage{}) {
		t.Errorf("%d requests, Usage %+v; want only main asked and nothing charged", srv.Count(), res.Usage)
	}
}

// Chat without streaming: an empty completion or a page instead of JSON
// falls back too.
func TestChatProviderFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault aitest.Fault
		cause error // nil: only a ModelError
	}{
		{"empty answer", aitest.EmptyAnswer, ai.ErrEmptyAnswer},
		{"empty body", aitest.EmptyBody, nil},
		{"html body", aitest.HTMLBody, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, srv := newRouter(t, chatModel("main", "backup"), chatModel("backup"))
			srv.Script("main-name", aitest.Step{Fault: tc.fault})
			req := userSays("hi")
			req.Model = "main"
			res, err := r.Chat(context.Background(), req)
			if err != nil || res.Text != "echo: hi" || res.Usage.Model != "backup" {
				t.Fatalf("Text = %q, Usage = %+v, err = %v; want the backup's answer", res.Text, res.Usage, err)
			}
			srv.Script("main-name", aitest.Step{Fault: tc.fault})
			srv.Script("backup-name", aitest.Step{Status: 500})
			res, err = r.Chat(context.Background(), req)
			var me *ai.ModelError
			if !errors.Is(err, ai.ErrAllFailed) || !errors.As(err, &me) || me.Model != "main" || res.Usage != (ai.Usage{}) {
				t.Fatalf("err = %v, Usage = %+v; want main's failure and nothing charged", err, res.Usage)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.cause)
			}
		})
	}
}

// Every chat request carries max_tokens: the model's, 4096 by default, or
// the request's when smaller. A provider asked for a huge answer stops there.
func TestChatMaxTokensBoundsTheAnswer(t *testing.T) {
	huge := manyWords(400_000) // ~3 MB
	tests := []struct {
		name      string
		model     int // Model.MaxTokens
		request   int // ChatRequest.MaxTokens
		wantSent  int
		reasoning bool
	}{
		{"default", 0, 0, ai.DefaultMaxTokens, false},
		{"model's", 300, 0, 300, false},
		{"request's when smaller", 300, 20, 20, false},
		{"model's when the request asks more", 300, 1000, 300, false},
		{"reasoning model", 0, 0, ai.DefaultMaxTokens, true},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", tc.name, stream), func(t *testing.T) {
				m := chatModel("m")
				m.MaxTokens = tc.model
				if tc.reasoning {
					m.Name = "o3-mini"
				}
				r, srv := newRouter(t, m)
				srv.Script(m.Name, aitest.Step{Text: huge, ChunkSize: 4096})
				req := userSays("everything please")
				req.Model, req.MaxTokens = "m", tc.request
				var res ai.ChatResult
				var err error
				if stream {
					res, err = r.ChatStream(context.Background(), req, func(string) {})
				} else {
					res, err = r.Chat(context.Background(), req)
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := srv.Requests()[0].MaxTokens; got != tc.wantSent {
					t.Errorf("max tokens sent = %d, want %d", got, tc.wantSent)
				}
				if n := aitest.Tokens(res.Text); n != tc.wantSent || res.Usage.OutputTokens != tc.wantSent {
					t.Errorf("answer of %d tokens, %d charged; want %d", n, res.Usage.OutputTokens, tc.wantSent)
				}
			})
		}
	}
	r, _ := newRouter(t, chatModel("m"))
	if m, _ := r.Model("m"); m.MaxTokens != ai.DefaultMaxTokens {
		t.Errorf("Model(m).MaxTokens = %d, want the default %d", m.MaxTokens, ai.DefaultMaxTokens)
	}
}
