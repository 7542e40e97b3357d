package ai_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
)

func TestFallback(t *testing.T) {
	const timeout = 100 * time.Millisecond // of the failing model only
	tests := []struct {
		name   string
		step   aitest.Step
		reason string
	}{
		{"500", aitest.Step{Status: 500}, "status 500"},
		{"502", aitest.Step{Status: 502}, "status 502"},
		{"429", aitest.Step{Status: 429}, "status 429"},
		{"timeout", aitest.Step{Delay: 10 * timeout}, "timeout"},
		{"hang", aitest.Step{Hang: true}, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			backup := chatModel("backup")
			backup.Price = ai.Price{InputPer1K: 7000, OutputPer1K: 9000}
			main := chatModel("main", "backup")
			main.Timeout = timeout
			r, srv := newRouter(t, main, backup)
			srv.Script("main-name", tc.step)

			req := userSays("hi")
			req.Model = "main"
			res, err := r.Chat(context.Background(), req)
			if err != nil {
				t.Fatalf("Chat: %v", err)
			}
			if res.Text != "echo: hi" || !slices.Equal(res.Tried, []string{"main", "backup"}) {
				t.Errorf("Text = %q, Tried = %v", res.Text, res.Tried)
			}
			want := ai.Usage{Model: "backup", Capability: ai.CapChat, InputTokens: 2, OutputTokens: 2, At: testNow}
			want.Cost = r.Cost(backup, want) // the answering model's price
			if res.Usage != want {
				t.Errorf("Usage = %+v, want %+v", res.Usage, want)
			}
			var models []string
			for _, q := range srv.Requests() {
				models = append(models, q.Model)
			}
			if !slices.Equal(models, []string{"main-name", "backup-name"}) {
				t.Errorf("provider saw %v", models)
			}
		})
	}
}

func TestFallbackOnConnectionError(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/v1"
	ln.Close()

	srv := aitest.New()
	defer srv.Close()
	down := chatModel("down", "up")
	down.Provider = "dead"
	r, err := ai.New(ai.Config{
		Providers: append(providers(srv), ai.ProviderConfig{Name: "dead", Kind: ai.KindOpenAI, BaseURL: dead, APIKey: "k"}),
		Models:    []ai.Model{down, chatModel("up")},
		Timeout:   healthy,
	}, fixedClock{testNow})
	if err != nil {
		t.Fatal(err)
	}
	req := userSays("hi")
	req.Model = "down"
	res, err := r.Chat(context.Background(), req)
	if err != nil || !slices.Equal(res.Tried, []string{"down", "up"}) {
		t.Fatalf("Tried = %v, err = %v", res.Tried, err)
	}
}

func TestNoFallbackOnClientErrors(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			r, srv := newRouter(t, chatModel("main", "backup"), chatModel("backup"))
			srv.Script("main-name", aitest.Step{Status: status})
			req := userSays("hi")
			req.Model = "main"
			res, err := r.Chat(context.Background(), req)
			if errors.Is(err, ai.ErrAllFailed) {
				t.Fatalf("err = %v: a %d must not count as a provider failure", err, status)
			}
			var me *ai.ModelError
			if !errors.As(err, &me) || me.Status != status || me.Model != "main" {
				t.Fatalf("err = %v, want ModelError{main, %d}", err, status)
			}
			if !slices.Equal(res.Tried, []string{"main"}) || res.Usage != (ai.Usage{}) || srv.Count() != 1 {
				t.Errorf("Tried = %v, Usage = %+v, requests = %d", res.Tried, res.Usage, srv.Count())
			}
		})
	}
}

func TestMissingKeyIs401WithoutFallback(t *testing.T) {
	srv := aitest.New()
	defer srv.Close()
	m := chatModel("a", "b")
	m.Provider = "nokey"
	r, err := ai.New(ai.Config{
		Providers: append(providers(srv), ai.ProviderConfig{Name: "nokey", Kind: ai.KindOpenAI, BaseURL: srv.URL() + "/v1"}),
		Models:    []ai.Model{m, chatModel("b")},
	}, fixedClock{testNow})
	if err != nil {
		t.Fatal(err)
	}
	req := userSays("hi")
	req.Model = "a"
	_, err = r.Chat(context.Background(), req)
	var me *ai.ModelError
	if !errors.As(err, &me) || me.Status != 401 || me.Code != "invalid_api_key" {
		t.Fatalf("err = %v, want 401 invalid_api_key", err)
	}
	if q := srv.Requests(); len(q) != 1 || q[0].Auth {
		t.Errorf("requests = %+v", q)
	}
}

func TestAllFailed(t *testing.T) {
	const timeout = 100 * time.Millisecond
	b := chatModel("b")
	b.Timeout = timeout
	r, srv := newRouter(t, chatModel("a", "b", "c"), b, chatModel("c"))
	srv.Script("a-name", aitest.Step{Status: 500})
	srv.Script("b-name", aitest.Step{Delay: 10 * timeout})
	srv.Script("c-name", aitest.Step{Status: 429})

	const prompt = "my secret diary entry"
	req := userSays(prompt)
	req.Model = "a"
	res, err := r.Chat(context.Background(), req)
	if !errors.Is(err, ai.ErrAllFailed) {
		t.Fatalf("err = %v, want ErrAllFailed", err)
	}
	if !slices.Equal(res.Tried, []string{"a", "b", "c"}) || res.Usage != (ai.Usage{}) || res.Text != "" {
		t.Errorf("result = %+v", res)
	}
	msg := err.Error()
	for _, want := range []string{"model a: status 500", "model b: timeout", "model c: status 429 (rate_limit_exceeded)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, prompt) || strings.Contains(msg, openAIKey) {
		t.Errorf("error %q leaks the prompt or the key", msg)
	}
}

func TestChainIsDepthFirst(t *testing.T) {
	// a → [b, c], b → [d]: when all fail the order is a, b, d, c; every model once.
	r, srv := newRouter(t,
		chatModel("a", "b", "c"), chatModel("b", "d"), chatModel("c", "d"), chatModel("d"))
	for _, name := range []string{"a-name", "b-name", "c-name", "d-name"} {
		srv.Script(name, aitest.Step{Status: 500})
	}
	req := userSays("hi")
	req.Model = "a"
	res, err := r.Chat(context.Background(), req)
	if !errors.Is(err, ai.ErrAllFailed) || !slices.Equal(res.Tried, []string{"a", "b", "d", "c"}) {
		t.Fatalf("Tried = %v, err = %v", res.Tried, err)
	}
}

func TestFallbackSkipsModelsWithoutTheCapability(t *testing.T) {
	eye := chatModel("eye", "text-only", "eye2")
	eye.Caps = []ai.Capability{ai.CapChat, ai.CapVision}
	eye2 := chatModel("eye2")
	eye2.Caps = []ai.Capability{ai.CapVision}
	r, srv := newRouter(t, eye, chatModel("text-only"), eye2)
	srv.Script("eye-name", aitest.Step{Status: 500})
	req := ai.ChatRequest{Model: "eye", Messages: []ai.Message{{Role: "user", Text: "see", ImageJPEG: []byte{1}}}}
	res, err := r.Chat(context.Background(), req)
	if err != nil || !slices.Equal(res.Tried, []string{"eye", "eye2"}) {
		t.Fatalf("Tried = %v, err = %v", res.Tried, err)
	}
}

func TestCallerGivingUpStopsTheChain(t *testing.T) {
	canceled := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		return ctx, cancel
	}
	deadline := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 50*time.Millisecond)
	}
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", canceled, context.Canceled},
		{"caller deadline", deadline, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s stream=%v", tc.name, stream), func(t *testing.T) {
				r, srv := newRouter(t, chatModel("a", "b"), chatModel("b"))
				srv.Script("a-name", aitest.Step{Hang: true})
				ctx, cancel := tc.ctx()
				defer cancel()
				req := userSays("hi")
				req.Model = "a"
				var res ai.ChatResult
				var err error
				if stream {
					res, err = r.ChatStream(ctx, req, func(string) {})
				} else {
					res, err = r.Chat(ctx, req)
				}
				if !errors.Is(err, tc.want) || errors.Is(err, ai.ErrAllFailed) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if !slices.Equal(res.Tried, []string{"a"}) || srv.Count() > 1 {
					t.Errorf("Tried = %v: a call the caller gave up on must not fall back", res.Tried)
				}
			})
		}
	}
}

func TestErrorsDoNotQuoteProvider(t *testing.T) {
	// A provider whose error message echoes the prompt and the key back.
	const prompt = "tell nobody: 4111 1111 1111 1111"
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":{"message":"bad input %q with key %q","type":"invalid_request_error","code":"bad input %s"}}`,
			prompt, r.Header.Get("Authorization"), prompt)
	}))
	defer leaky.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "<html>upstream said %s</html>", prompt)
	}))
	defer plain.Close()

	for name, url := range map[string]string{"json 400": leaky.URL, "html 502": plain.URL} {
		t.Run(name, func(t *testing.T) {
			r, err := ai.New(ai.Config{
				Providers: []ai.ProviderConfig{{Name: "p", Kind: ai.KindOpenAI, BaseURL: url, APIKey: openAIKey}},
				Models:    []ai.Model{{ID: "m", Provider: "p", Caps: []ai.Capability{ai.CapChat}}},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			req := userSays(prompt)
			req.Model = "m"
			_, err = r.Chat(context.Background(), req)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); strings.Contains(msg, "4111") || strings.Contains(msg, "SECRET") {
				t.Errorf("error %q leaks the prompt or the key", msg)
			}
		})
	}
}
