package ai_test

import (
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
)

// Keys the tests send; no error string may contain them.
const (
	openAIKey     = "sk-test-SECRET-openai"
	elevenLabsKey = "xi-test-SECRET-eleven"
)

var testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// providers points an OpenAI-compatible provider "emu" and an ElevenLabs
// provider "el" at srv.
func providers(srv *aitest.Server) []ai.ProviderConfig {
	return []ai.ProviderConfig{
		{Name: "emu", Kind: ai.KindOpenAI, BaseURL: srv.URL() + "/v1", APIKey: openAIKey},
		{Name: "el", Kind: ai.KindElevenLabs, BaseURL: srv.URL(), APIKey: elevenLabsKey},
	}
}

// healthy is the router's timeout in tests: long enough that a call to a
// healthy emulator never times out on a loaded machine. Tests of timeouts
// set a short Model.Timeout on the model that is meant to fail.
const healthy = 30 * time.Second

// newRouter starts an emulator and a router over models; both are closed
// when the test ends.
func newRouter(tb testing.TB, models ...ai.Model) (*ai.Router, *aitest.Server) {
	tb.Helper()
	srv := aitest.New()
	tb.Cleanup(srv.Close)
	r, err := ai.New(ai.Config{Providers: providers(srv), Models: models, Timeout: healthy}, fixedClock{testNow})
	if err != nil {
		tb.Fatalf("ai.New: %v", err)
	}
	return r, srv
}

// chatModel is an OpenAI-compatible chat model whose provider name is id+"-name".
func chatModel(id string, fallback ...string) ai.Model {
	return ai.Model{
		ID: id, Provider: "emu", Name: id + "-name",
		Caps:     []ai.Capability{ai.CapChat},
		Price:    ai.Price{InputPer1K: 1000, OutputPer1K: 3000},
		Fallback: fallback,
	}
}

func userSays(text string) ai.ChatRequest {
	return ai.ChatRequest{Messages: []ai.Message{{Role: "user", Text: text}}}
}
