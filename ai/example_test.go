package ai_test

import (
	"context"
	"fmt"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
)

// A router over the emulator, as `valex demo` wires it: the OpenAI provider's
// base URL is the emulator's URL plus "/v1".
func Example() {
	srv := aitest.New()
	defer srv.Close()
	srv.Script("gpt-4o", aitest.Step{Status: 503}) // the primary model is down

	r, err := ai.New(ai.Config{
		Providers: []ai.ProviderConfig{{Name: "openai", Kind: ai.KindOpenAI, BaseURL: srv.URL() + "/v1", APIKey: "sk-demo"}},
		Models: []ai.Model{
			{ID: "gpt-4o", Provider: "openai", Caps: []ai.Capability{ai.CapChat, ai.CapVision},
				Price: ai.Price{InputPer1K: 2500, OutputPer1K: 10_000}, Fallback: []string{"gpt-4o-mini"}},
			{ID: "gpt-4o-mini", Provider: "openai", Caps: []ai.Capability{ai.CapChat},
				Price: ai.Price{InputPer1K: 150, OutputPer1K: 600}},
		},
	}, valex.SystemClock{})
	if err != nil {
		fmt.Println(err)
		return
	}
	req := ai.ChatRequest{Model: "gpt-4o", Messages: []ai.Message{{Role: "user", Text: "hello"}}}
	res, err := r.ChatStream(context.Background(), req, func(delta string) { fmt.Printf("[%s]", delta) })
	fmt.Println()
	fmt.Println(res.Tried, res.Usage.Model, res.Usage.Cost, err)
	// Output:
	// [echo][: he][llo]
	// [gpt-4o gpt-4o-mini] gpt-4o-mini 2 <nil>
}
