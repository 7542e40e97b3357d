package handlers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// requestTexts are the messages of a provider request, role:text.
func requestTexts(r aitest.Request) string {
	var out []string
	for _, m := range r.Messages {
		out = append(out, m.Role+":"+m.Text)
	}
	return strings.Join(out, "|")
}

func (x *aiHarness) lastRequest() aitest.Request {
	x.t.Helper()
	reqs := x.aisv.Requests()
	if len(reqs) == 0 {
		x.t.Fatal("no provider request")
	}
	return reqs[len(reqs)-1]
}

func (x *aiHarness) settings(u bottest.User) valex.AISettings {
	x.t.Helper()
	s, err := x.db.AISettings(u.ID)
	if err != nil {
		x.t.Fatal(err)
	}
	return s
}

func TestHistoryResumesAConversationWithItsHistory(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	x.say(ann, "tell me about apples")
	x.say(ann, "/new")
	x.say(ann, "tell me about bananas")

	x.say(ann, "/history")
	list := x.lastText(ann.ID)
	for _, want := range []string{"#2", "tell me about bananas (current)", "#1", "tell me about apples", "Tap ▶ to resume"} {
		if !strings.Contains(list, want) {
			t.Fatalf("list %q lacks %q", list, want)
		}
	}
	x.press(ann, bottest.PrivateChat(ann), "▶ #1")
	got := x.lastText(ann.ID)
	if !strings.Contains(got, "Resumed #1 · tell me about apples. Your next message continues it.") || !strings.Contains(got, "tell me about apples (current)") {
		t.Fatalf("after resume: %q", got)
	}
	x.say(ann, "and their colours?")
	want := "system:PROMPT-assistant|user:tell me about apples|assistant:echo: tell me about apples|user:and their colours?"
	if got := requestTexts(x.lastRequest()); got != want {
		t.Fatalf("resumed turn sent %q, want %q", got, want)
	}

	// A new conversation after a resume takes a number never used: #2
	// keeps its own turns.
	x.say(ann, "/new")
	x.say(ann, "cherries now")
	if s := x.settings(ann); s.Conversation != 3 {
		t.Fatalf("new conversation after a resume is #%d, want #3", s.Conversation)
	}
	if got := requestTexts(x.lastRequest()); got != "system:PROMPT-assistant|user:cherries now" {
		t.Fatalf("after /new: %q", got)
	}
	turns, _, err := x.db.RecentTurns(ann.ID, 2, 1<<30, 0)
	if err != nil || len(turns) != 2 || turns[0].Text != "tell me about bananas" {
		t.Fatalf("#2 = %+v, %v", turns, err)
	}

	// /conversations still opens the same screen (the privacy texts and
	// long-time users know it).
	x.say(ann, "/conversations")
	if got := x.lastText(ann.ID); !strings.Contains(got, "cherries now (current)") || !strings.Contains(got, "tell me about apples") {
		t.Fatalf("/conversations: %q", got)
	}
}

// seedConversations stores n conversations of one exchange each, #1 the
// oldest.
func (x *aiHarness) seedConversations(u bottest.User, n int) {
	x.t.Helper()
	start := time.Now().Add(-time.Duration(n) * time.Hour)
	for i := 1; i <= n; i++ {
		at := start.Add(time.Duration(i) * time.Hour)
		q := fmt.Sprintf("question number %d", i)
		turns := []valex.Turn{{Role: valex.TurnUser, Text: q, Tokens: 5, At: at}, {Role: valex.TurnAssistant, Text: "answer " + q, Tokens: 5, At: at}}
		if err := x.db.SaveExchange(u.ID, uint64(i), turns, nil); err != nil {
			x.t.Fatal(err)
		}
	}
	if _, err := x.db.UpdateAISettings(u.ID, func(s *valex.AISettings) { s.Conversation = uint64(n) }); err != nil {
		x.t.Fatal(err)
	}
}

func TestHistoryPagesReachTheOldestConversation(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	x.seedConversations(ann, 15)

	x.say(ann, "/history")
	first := x.lastText(ann.ID)
	if !strings.Contains(first, "question number 15 (current)") || !strings.Contains(first, "question number 4") ||
		strings.Contains(first, "question number 3") || !strings.Contains(first, "Page 1 of 2") {
		t.Fatalf("first page: %q", first)
	}
	x.press(ann, bottest.PrivateChat(ann), "Older »")
	second := x.lastText(ann.ID)
	if !strings.Contains(second, "question number 1") || strings.Contains(second, "question number 4") || !strings.Contains(second, "Page 2 of 2") {
		t.Fatalf("second page: %q", second)
	}
	// Delete from the second page: the screen stays on it.
	x.press(ann, bottest.PrivateChat(ann), "🗑 #2")
	if got := x.lastText(ann.ID); !strings.Contains(got, "Conversation #2 is deleted.") || !strings.Contains(got, "Page 2 of 2") || strings.Contains(got, "question number 2\n") {
		t.Fatalf("after deleting #2: %q", got)
	}
	if l := x.conversations(ann); len(l) != 14 {
		t.Fatalf("%d conversations after deleting one, want 14", len(l))
	}
	x.press(ann, bottest.PrivateChat(ann), "▶ #1")
	if got := x.lastText(ann.ID); !strings.Contains(got, "Resumed #1 · question number 1.") {
		t.Fatalf("after resuming #1: %q", got)
	}
	x.say(ann, "go on")
	want := "system:PROMPT-assistant|user:question number 1|assistant:answer question number 1|user:go on"
	if got := requestTexts(x.lastRequest()); got != want {
		t.Fatalf("turn after resuming the oldest: %q, want %q", got, want)
	}
	// Written in last, #1 now leads the list.
	x.say(ann, "/history")
	if got := x.lastText(ann.ID); !strings.Contains(got, "#1 · ") || !strings.Contains(got, "question number 1 (current)") {
		t.Fatalf("list after the turn: %q", got)
	}
}

func TestHistoryButtonsCannotBeForged(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	x.register(bob, true)
	x.say(ann, "ann's first")
	x.say(ann, "/new")
	x.say(ann, "ann's second")
	x.say(bob, "bob's secret")
	x.say(ann, "/history")
	msgs := x.emu.Messages(ann.ID)
	screen := msgs[len(msgs)-1]
	var resume string
	for _, row := range screen.Keyboard {
		for _, b := range row {
			if b.Text == "▶ #1" {
				resume = b.Data
			}
		}
	}
	if resume == "" {
		t.Fatalf("no resume button: %+v", screen.Keyboard)
	}
	// The same button with another conversation number: the signature no
	// longer matches.
	forged := strings.Replace(resume, ":r:1:", ":r:2:", 1)
	if forged == resume {
		t.Fatalf("cannot find the id in %q", resume)
	}
	before := x.settings(ann)
	x.emu.PressForged(bottest.PrivateChat(ann), ann, screen.ID, forged)
	x.idle()
	if s := x.settings(ann); s.Conversation != before.Conversation {
		t.Fatalf("a forged button switched the conversation: %d → %d", before.Conversation, s.Conversation)
	}
	ans, err := x.emu.WaitFor(x.ctx(), func(e bottest.Event) bool { return e.Method == "answerCallbackQuery" && e.ShowAlert })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ans.CallbackText, "button") {
		t.Fatalf("forged press answered %q", ans.CallbackText)
	}

	// A genuine button for a conversation deleted since: refused clearly.
	if _, err := x.db.DeleteConversation(ann.ID, 1); err != nil {
		t.Fatal(err)
	}
	x.emu.PressButton(bottest.PrivateChat(ann), ann, screen.ID, resume)
	x.idle()
	ans, err = x.emu.WaitFor(x.ctx(), func(e bottest.Event) bool {
		return e.Method == "answerCallbackQuery" && strings.Contains(e.CallbackText, "no longer exists")
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := x.settings(ann); s.Conversation != before.Conversation {
		t.Fatalf("resumed a deleted conversation")
	}
}
