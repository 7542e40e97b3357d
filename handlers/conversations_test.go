package handlers

import (
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/locales"
)

// newConvHarness is the AI harness with the /conversations screen wired as
// cmd/valex wires it.
func newConvHarness(t *testing.T) *aiHarness {
	t.Helper()
	return newAIHarness(t, func(hc *harnessConfig) {
		hc.wire = func(h *Handlers, rt *bot.Router, a *AI) {
			NewConversations(h, h.Users.(ConversationStore), a, valex.DefaultRetentionPolicy()).Register(rt)
		}
	})
}

func (x *aiHarness) conversations(u bottest.User) []valex.ConversationSummary {
	x.t.Helper()
	l, err := x.db.Conversations(u.ID)
	if err != nil {
		x.t.Fatal(err)
	}
	return l
}

// storedTurns counts a user's turns as /mydata exports them.
func (x *aiHarness) storedTurns(u bottest.User) int {
	x.t.Helper()
	_, counts, err := x.db.ExportAI(u.ID)
	if err != nil {
		x.t.Fatal(err)
	}
	return counts["conversations"]
}

func TestConversationsAreListedAndDeletedFromTheChat(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	x.register(bob, true)
	x.say(ann, "how do I bake sourdough bread at home with a cold oven")
	x.say(ann, "/new")
	x.aisv.Script("ear", aitest.Step{Text: "what time is it in Lisbon"})
	x.emu.SendVoice(bottest.PrivateChat(ann), ann, aitest.SilentOggOpus(2*time.Second), 2)
	x.idle()
	x.say(bob, "bob's own question")
	if n := x.storedTurns(ann); n != 4 {
		t.Fatalf("ann has %d turns stored, want 4 (a voice transcript among them)", n)
	}

	x.say(ann, "/conversations")
	list := x.lastText(ann.ID)
	for _, want := range []string{"Your AI conversations", "#2", "what time is it in Lisbon (current)", "#1", "how do I bake sourdough bread at home…", "kept until you delete them"} {
		if !strings.Contains(list, want) {
			t.Fatalf("list %q lacks %q", list, want)
		}
	}
	if strings.Contains(list, "bob") {
		t.Fatalf("another user's conversation listed: %q", list)
	}

	// One conversation: deleted at once, the list shown again.
	x.press(ann, bottest.PrivateChat(ann), "🗑 #1")
	if got := x.lastText(ann.ID); !strings.Contains(got, "Conversation #1 is deleted.") || strings.Contains(got, "sourdough") {
		t.Fatalf("after deleting #1: %q", got)
	}
	if l := x.conversations(ann); len(l) != 1 || l[0].ID != 2 {
		t.Fatalf("conversations after deleting #1: %+v", l)
	}
	if n := x.storedTurns(ann); n != 2 {
		t.Fatalf("%d turns left, want the 2 of #2", n)
	}

	// All of them: only after the confirmation, which names how many.
	x.press(ann, bottest.PrivateChat(ann), "Delete all")
	if got := x.lastText(ann.ID); !strings.Contains(got, "Delete all your AI conversations?") || !strings.Contains(got, "1 conversation and every message") {
		t.Fatalf("confirmation: %q", got)
	}
	if n := x.storedTurns(ann); n != 2 {
		t.Fatal("deleted before the confirmation")
	}
	x.press(ann, bottest.PrivateChat(ann), "No, keep them")
	if got := x.lastText(ann.ID); !strings.Contains(got, "Nothing was deleted.") || x.storedTurns(ann) != 2 {
		t.Fatalf("after No: %q, %d turns", got, x.storedTurns(ann))
	}
	x.press(ann, bottest.PrivateChat(ann), "Delete all")
	x.press(ann, bottest.PrivateChat(ann), "Yes, delete all")
	if got := x.lastText(ann.ID); got != "Done: 1 conversation deleted." {
		t.Fatalf("after Yes: %q", got)
	}
	if n := x.storedTurns(ann); n != 0 || len(x.conversations(ann)) != 0 {
		t.Fatalf("%d turns left after deleting all", n)
	}
	if n := x.storedTurns(bob); n != 2 {
		t.Fatalf("bob's conversation touched: %d turns", n)
	}
	// The next message starts a fresh conversation.
	x.say(ann, "hello again")
	if h := x.history(ann); len(h) != 2 || h[0].Text != "hello again" {
		t.Fatalf("history after deleting all: %+v", h)
	}
	x.say(ann, "/conversations")
	if got := x.lastText(ann.ID); !strings.Contains(got, "#3") || !strings.Contains(got, "hello again (current)") {
		t.Fatalf("list after a new message: %q", got)
	}
}

func TestConversationsScreenIsPrivateOnly(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	x.say(ann, "my private medical question")
	group := bottest.Chat{ID: -100777, Type: "group", Title: "friends"}
	x.emu.SendText(group, ann, "/conversations")
	x.idle()
	msgs := x.emu.Messages(group.ID)
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "our private chat") || strings.Contains(msgs[0].Text, "medical") || len(msgs[0].Keyboard) != 0 {
		t.Fatalf("group got %+v", msgs)
	}
}

func TestNoConversationsSaysSo(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	x.say(ann, "/conversations")
	if got := x.lastText(ann.ID); got != "You have no AI conversations stored." {
		t.Fatalf("got %q", got)
	}
}

// /privacy says how long each kind of data is kept: the configured
// periods, the ones the jobs enforce.
func TestPrivacyRetentionLinesFollowTheConfiguration(t *testing.T) {
	tr, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	d := &Desk{Handlers: &Handlers{Tr: tr}}
	got := d.retentionLines("en")
	for _, want := range []string{
		"AI conversations and voice message transcripts: until you delete them (/history) or your account",
		"After 24 months without activity we warn you, and delete it 30 days later",
		"1 year after they are closed", "or 30 days after your last message",
		"Payment records, if you pay: at least 5 years",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("default lines lack %q:\n%s", want, got)
		}
	}
	d.Policy.Retention = valex.RetentionPolicy{Conversations: valex.Period{Days: 90}, Communications: valex.Period{Months: 6}, FeedbackClose: valex.Period{Days: 14}}
	got = d.retentionLines("ru")
	for _, want := range []string{"каждое сообщение — 90 дней", "6 месяцев после закрытия", "через 14 дней после вашего последнего сообщения", "не менее 5 лет"} {
		if !strings.Contains(got, want) {
			t.Errorf("configured lines lack %q:\n%s", want, got)
		}
	}
}
