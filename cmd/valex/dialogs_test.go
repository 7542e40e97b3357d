package main

import (
	"strings"
	"testing"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// The repros of a prompt capturing an unrelated message, turned around:
// every prompt ends when the user moves on, and what they type next goes
// where they mean it.
func TestPromptsEndWhereTheUserMeans(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) })
	u := bottest.User{ID: 7301, FirstName: "Mira", LanguageCode: "en"}
	a.say(u, "/start")
	a.say(u, "hello")
	a.press(u, "I agree")
	a.idle()
	calls := aisv.Count()
	if calls == 0 {
		t.Fatal("the consented first message was not answered")
	}

	// /feedback, then /usage, then a question: the AI answers it, no
	// feedback ticket takes it.
	a.say(u, "/feedback")
	seq := a.lastSeq()
	a.emu.SendText(bottest.PrivateChat(u), u, "/usage")
	a.waitText(u.ID, seq, "stopped waiting for the text of your request")
	a.idle()
	aisv.Script("gpt-4o-mini", aitest.Step{Text: "It is 4."})
	a.say(u, "what is 2+2?")
	a.idle()
	if aisv.Count() != calls+1 {
		t.Fatalf("the question after /usage reached the AI %d times, want once", aisv.Count()-calls)
	}
	calls = aisv.Count()
	if ts := a.tickets(u); len(ts) != 0 {
		t.Fatalf("a ticket took the question: %+v", ts[0])
	}

	// /support, /usage, /model, then a question: the chat's, not support's.
	a.say(u, "/support")
	a.say(u, "/usage")
	a.say(u, "/model")
	aisv.Script("gpt-4o-mini", aitest.Step{Text: "Rinse it first."})
	a.say(u, "how do I cook rice")
	a.idle()
	if ts := a.tickets(u); len(ts) != 0 || aisv.Count() != calls+1 {
		t.Fatalf("%d tickets, %d AI calls after /support /usage /model and a question", len(ts), aisv.Count()-calls)
	}
	calls = aisv.Count()

	// /new ends a waiting prompt too.
	a.say(u, "/support")
	if e := a.say(u, "/new"); !strings.Contains(e.Text, "stopped waiting") {
		t.Fatalf("/new did not end the prompt: %q", e.Text)
	}

	// Inside the prompt, the text is the ticket's and reaches no provider.
	a.say(u, "/support")
	e := a.say(u, "my invoice is wrong")
	if ts := a.tickets(u); len(ts) != 1 || ts[0].Text != "my invoice is wrong" || aisv.Count() != calls {
		t.Fatalf("the prompt's answer: %d tickets, %d AI calls; bot said %q", len(ts), aisv.Count()-calls, e.Text)
	}

	// The phone prompt: a typed number goes nowhere; /cancel ends the
	// prompt and takes the contact keyboard away.
	a.say(u, "/profile")
	ask := a.press(u, "Phone")
	if len(ask.Keyboard) == 0 {
		t.Fatalf("the phone prompt has no contact button: %+v", ask)
	}
	e = a.say(u, "my number is +7 999 123 45 67")
	if aisv.Count() != calls {
		t.Fatal("a phone number typed into the phone prompt reached the AI provider")
	}
	if !strings.Contains(e.Text, "share with the button") {
		t.Fatalf("typed phone answered %q", e.Text)
	}
	if got, _ := a.m.DB.User(u.ID); got.Phone != "" {
		t.Fatalf("a typed phone was stored: %q", got.Phone)
	}
	e = a.say(u, "/cancel")
	if !strings.Contains(e.Text, "Cancelled") || !e.RemoveKeyboard {
		t.Fatalf("/cancel in the phone prompt: %q, keyboard removed %v", e.Text, e.RemoveKeyboard)
	}
	e = a.say(u, "/cancel")
	if !strings.Contains(e.Text, "nothing to cancel") || !e.RemoveKeyboard {
		t.Fatalf("/cancel with nothing open: %q, keyboard removed %v", e.Text, e.RemoveKeyboard)
	}

	// A phone shared with the button is saved.
	a.say(u, "/profile")
	a.press(u, "Phone")
	seq = a.lastSeq()
	a.emu.SendContact(bottest.PrivateChat(u), u, "+15550100", u.ID)
	a.waitText(u.ID, seq, "+15550100")
	a.idle()
	if got, _ := a.m.DB.User(u.ID); got.Phone != "+15550100" {
		t.Fatalf("shared phone = %q", got.Phone)
	}
}
