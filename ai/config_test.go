package ai_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
)

func TestNewReportsEveryProblem(t *testing.T) {
	cfg := ai.Config{
		Providers: []ai.ProviderConfig{
			{Name: "oa", Kind: ai.KindOpenAI},
			{Name: "el", Kind: ai.KindElevenLabs},
			{Name: "odd", Kind: "anthropic"},
			{Name: "oa", Kind: ai.KindOpenAI},
		},
		Models: []ai.Model{
			{ID: "a", Provider: "oa", Caps: []ai.Capability{ai.CapChat}, Fallback: []string{"b"}},
			{ID: "b", Provider: "oa", Caps: []ai.Capability{ai.CapChat}, Fallback: []string{"c"}},
			{ID: "c", Provider: "oa", Caps: []ai.Capability{ai.CapChat}, Fallback: []string{"a"}},
			{ID: "self", Provider: "oa", Caps: []ai.Capability{ai.CapChat}, Fallback: []string{"self"}},
			{ID: "lost", Provider: "nowhere", Caps: []ai.Capability{ai.CapChat}},
			{ID: "mute", Provider: "oa"},
			{ID: "ghost", Provider: "oa", Caps: []ai.Capability{ai.CapChat}, Fallback: []string{"missing"}},
			{ID: "voice", Provider: "el", Caps: []ai.Capability{ai.CapChat, ai.CapSpeech}},
			{ID: "a", Provider: "oa", Caps: []ai.Capability{ai.CapChat}},
			{ID: "weird", Provider: "oa", Caps: []ai.Capability{"telepathy"}, Price: ai.Price{PerImage: -1}},
			{ID: "via-odd", Provider: "odd", Caps: []ai.Capability{ai.CapChat}},
			{ID: "hasty", Provider: "oa", Caps: []ai.Capability{ai.CapChat}, Timeout: -1},
			{ID: "terse", Provider: "oa", Caps: []ai.Capability{ai.CapChat}, MaxTokens: -1},
		},
		Timeout:       -time.Second,
		AnswerTimeout: -time.Minute,
	}
	r, err := ai.New(cfg, nil)
	if err == nil || r != nil {
		t.Fatalf("New = %v, %v; want an error", r, err)
	}
	msg := err.Error()
	for _, want := range []string{
		`fallback cycle: a → b → c → a`,
		`fallback cycle: self → self`,
		`model "lost": unknown provider "nowhere"`,
		`model "mute": no capabilities`,
		`model "ghost": unknown fallback "missing"`,
		`model "voice": provider "el" (elevenlabs) cannot do "chat"`,
		`model "voice": elevenlabs needs a voice id`,
		`model "a": defined twice`,
		`provider "oa": defined twice`,
		`provider "odd": unknown kind "anthropic"`,
		`model "weird": unknown capability "telepathy"`,
		`model "weird": negative price`,
		`timeout -1s is negative`,
		`model "hasty": negative timeout`,
		`model "terse": negative max tokens`,
		`answer timeout -1m0s is negative`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q; got:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "via-odd") {
		t.Errorf("a model of a rejected provider is reported twice:\n%s", msg)
	}
	if n := strings.Count(msg, "\n") + 1; n != 16 {
		t.Errorf("%d problems reported, want 16:\n%s", n, msg)
	}
}

func TestNewAcceptsAValidCatalogue(t *testing.T) {
	_, err := ai.New(ai.Config{
		Providers: []ai.ProviderConfig{
			{Name: "openrouter", Kind: ai.KindOpenAI, BaseURL: "https://openrouter.ai/api/v1/", APIKey: "k"},
			{Name: "el", Kind: ai.KindElevenLabs, APIKey: "k"},
		},
		Models: []ai.Model{
			// Diamond: a → b, c; b → d; c → d. Shared fallbacks are no cycle.
			{ID: "a", Provider: "openrouter", Caps: []ai.Capability{ai.CapChat}, Fallback: []string{"b", "c"}},
			{ID: "b", Provider: "openrouter", Caps: []ai.Capability{ai.CapChat}, Fallback: []string{"d"}},
			{ID: "c", Provider: "openrouter", Caps: []ai.Capability{ai.CapChat}, Fallback: []string{"d"}},
			{ID: "d", Provider: "openrouter", Caps: []ai.Capability{ai.CapChat}},
			{ID: "say", Provider: "el", Voice: "21m00Tcm4TlvDq8ikWAM", Caps: []ai.Capability{ai.CapSpeech}},
		},
	}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
}

func TestModels(t *testing.T) {
	free := chatModel("free")
	pro := chatModel("pro")
	pro.Plans = []string{"pro", "team"}
	eye := chatModel("eye")
	eye.Caps = []ai.Capability{ai.CapChat, ai.CapVision}
	r, _ := newRouter(t, free, pro, eye)

	ids := func(ms []ai.Model) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	tests := []struct {
		cap  ai.Capability
		plan string
		want []string
	}{
		{ai.CapChat, "free", []string{"free", "eye"}},
		{ai.CapChat, "pro", []string{"free", "pro", "eye"}},
		{ai.CapVision, "team", []string{"eye"}},
		{ai.CapImage, "pro", nil},
	}
	for _, tc := range tests {
		if got := ids(r.Models(tc.cap, tc.plan)); !slices.Equal(got, tc.want) {
			t.Errorf("Models(%s, %s) = %v, want %v", tc.cap, tc.plan, got, tc.want)
		}
		if n := r.CountModels(tc.cap, tc.plan); n != len(tc.want) {
			t.Errorf("CountModels(%s, %s) = %d, want %d", tc.cap, tc.plan, n, len(tc.want))
		}
		first, ok := r.FirstModel(tc.cap, tc.plan)
		if ok != (len(tc.want) > 0) || (ok && first.ID != tc.want[0]) {
			t.Errorf("FirstModel(%s, %s) = %s, %v; want the first of %v", tc.cap, tc.plan, first.ID, ok, tc.want)
		}
	}

	m, ok := r.Model("pro")
	if !ok || m.Name != "pro-name" {
		t.Fatalf("Model(pro) = %+v, %v", m, ok)
	}
	m.Plans[0] = "free" // must not change the catalogue
	if again, _ := r.Model("pro"); again.Plans[0] != "pro" {
		t.Errorf("Model returned an alias of the catalogue")
	}
	if _, ok := r.Model("nope"); ok {
		t.Errorf("Model(nope) found")
	}
}

func TestNameDefaultsToID(t *testing.T) {
	r, srv := newRouter(t, ai.Model{ID: "gpt-4o-mini", Provider: "emu", Caps: []ai.Capability{ai.CapChat}})
	req := userSays("hi")
	req.Model = "gpt-4o-mini"
	if _, err := r.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if got := srv.Requests()[0].Model; got != "gpt-4o-mini" {
		t.Errorf("provider saw model %q", got)
	}
}

func TestModelErrorIsNotAllFailed(t *testing.T) {
	var me *ai.ModelError
	err := error(&ai.ModelError{Model: "m", Status: 400, Reason: "status"})
	if errors.Is(err, ai.ErrAllFailed) || !errors.As(err, &me) || err.Error() != "model m: status 400" {
		t.Errorf("err = %v", err)
	}
}

// BenchmarkChatZeroLatency is the router's overhead per call: request
// building, HTTP over loopback to the emulator, JSON both ways, usage.
func BenchmarkChatZeroLatency(b *testing.B) {
	r, _ := newRouter(b, chatModel("m"))
	req := userSays("how much does one call cost us?")
	req.Model = "m"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Chat(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatStreamZeroLatency is the same through SSE, 4 runes a chunk.
func BenchmarkChatStreamZeroLatency(b *testing.B) {
	r, _ := newRouter(b, chatModel("m"))
	req := userSays("how much does one streamed call cost us?")
	req.Model = "m"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ChatStream(ctx, req, func(string) {}); err != nil {
			b.Fatal(err)
		}
	}
}
