package handlers

import (
	"strings"
	"testing"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot/bottest"
)

// /model shows each chat model's description and price, and the models a
// subscription unlocks with its plan; picking a locked one names the plan
// and switches nothing.
func TestModelShowsDescriptionsPricesAndPlans(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) {
		c.opts.Plans = &valex.Plans{Subscriptions: []valex.Subscription{{ID: "pro", Daily: ai.MicroCredits, Stars: 100}}}
		c.router = func(rc *ai.Config) {
			for i := range rc.Models {
				switch rc.Models[i].ID {
				case "chat-a":
					rc.Models[i].Description = "Quick & cheap"
					rc.Models[i].Descriptions = map[string]string{"ru": "Быстрая и дешёвая"}
				case "chat-pro":
					rc.Models[i].Description = "The clever one"
					rc.Models[i].Price = ai.Price{InputPer1K: 2 * ai.MicroCredits, OutputPer1K: 5 * ai.MicroCredits}
				}
			}
		}
	})
	x.register(ann, true)
	x.register(vera, true)
	chat := bottest.PrivateChat(ann)
	x.say(ann, "/model")
	got := x.lastText(ann.ID)
	for _, want := range []string{
		"chat-a — Quick & cheap\n   0.001 / 0.002 credits per 1,000 tokens in / out",
		"chat-pro — The clever one — 🔒 with the pro plan (/plans)\n   2 / 5 credits per 1,000 tokens in / out",
		"chat-b\n   0.0005 / 0.0005 credits per 1,000 tokens",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("/model lacks %q:\n%s", want, got)
		}
	}
	if f := x.failedCalls(); len(f) > 0 {
		t.Fatalf("failed Bot API calls: %v", f) // the description's & must be escaped
	}
	x.press(ann, chat, "🔒 chat-pro")
	if got := x.lastText(ann.ID); !strings.Contains(got, "chat-pro comes with the pro plan") {
		t.Errorf("locked model tap: %q", got)
	}
	if _, b := x.answerButton(ann.ID, "Plans"); b.Data == "" {
		t.Error("no button to /plans")
	}
	if s, _ := x.db.AISettings(ann.ID); s.Model != "" {
		t.Errorf("a locked model was switched to: %q", s.Model)
	}
	x.say(vera, "/model")
	if got := x.lastText(vera.ID); !strings.Contains(got, "chat-a — Быстрая и дешёвая\n   кредитов за 1000 токенов: 0,001 на вход / 0,002 на выход") {
		t.Errorf("Russian /model:\n%s", got)
	}
}
