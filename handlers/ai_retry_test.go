package handlers

import (
	"strings"
	"testing"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// answerButton is the button whose label contains label on the bot's
// newest message that has one, and that message's id.
func (x *aiHarness) answerButton(chatID int64, label string) (int, bottest.Button) {
	x.t.Helper()
	msgs := x.emu.Messages(chatID)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, label) {
					return msgs[i].ID, b
				}
			}
		}
	}
	x.t.Fatalf("no button %q in chat %d", label, chatID)
	return 0, bottest.Button{}
}

// lastAlert is the text of the newest button answer shown as an alert.
func (x *aiHarness) lastAlert() string {
	evs := x.emu.Events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Method == "answerCallbackQuery" {
			if evs[i].ShowAlert {
				return evs[i].CallbackText
			}
			return ""
		}
	}
	return ""
}

func lastUserText(r aitest.Request) string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if r.Messages[i].Role == "user" {
			return r.Messages[i].Text
		}
	}
	return ""
}

func turnTexts(turns []valex.Turn) string {
	var out []string
	for _, t := range turns {
		out = append(out, t.Role+":"+t.Text)
	}
	return strings.Join(out, "|")
}

// Retry answers the last question again as a new, charged turn: the
// provider gets the same question after the same history, and the new
// answer replaces the old one in the history.
func TestRetryAnswersTheSameQuestionAgain(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	chat := bottest.PrivateChat(ann)
	x.say(ann, "hello there")
	x.say(ann, "what is two plus two")
	if got := x.lastText(ann.ID); got != "echo: what is two plus two" {
		t.Fatalf("answer = %q", got)
	}
	x.aisv.Script("chat-a-name", aitest.Step{Text: "four, I think"})
	x.press(ann, chat, "Retry")

	reqs := x.aisv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d AI requests, want 3", len(reqs))
	}
	var got []string
	for _, m := range reqs[2].Messages {
		got = append(got, m.Role+":"+m.Text)
	}
	want := "system:PROMPT-assistant|user:hello there|assistant:echo: hello there|user:what is two plus two"
	if strings.Join(got, "|") != want {
		t.Errorf("retried request = %q,\nwant %q", strings.Join(got, "|"), want)
	}
	if got := x.lastText(ann.ID); got != "four, I think" {
		t.Errorf("retried answer = %q", got)
	}
	if l := x.usage(ann); len(l) != 3 || l[2].Cost <= 0 {
		t.Errorf("ledger = %+v, want the retry charged as a third turn", l)
	}
	wantHistory := "user:hello there|assistant:echo: hello there|user:what is two plus two|assistant:four, I think"
	if h := turnTexts(x.history(ann)); h != wantHistory {
		t.Errorf("history = %q,\nwant %q", h, wantHistory)
	}
	// The new answer has its buttons too, and no user text is in them.
	_, b := x.answerButton(ann.ID, "Retry")
	if strings.Contains(b.Data, "two") {
		t.Errorf("callback data %q carries the question", b.Data)
	}
	if f := x.failedCalls(); len(f) > 0 {
		t.Errorf("failed Bot API calls: %v", f)
	}
}

// Only the latest answer of a conversation can be repeated; tampered
// callback data is refused before anything reaches a provider.
func TestRetryRefusesOldAndTamperedButtons(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	chat := bottest.PrivateChat(ann)
	x.say(ann, "first question")
	oldID, oldRetry := x.answerButton(ann.ID, "Retry")
	x.say(ann, "second question")

	x.emu.PressButton(chat, ann, oldID, oldRetry.Data)
	x.idle()
	if got := x.lastAlert(); !strings.Contains(got, "Only the latest answer") {
		t.Errorf("old Retry: alert %q", got)
	}

	_, retry := x.answerButton(ann.ID, "Retry")
	body, sig, _ := strings.Cut(retry.Data, ".")
	forged := []string{
		strings.Replace(body, ":p1:", ":p2:", 1) + "." + sig, // another conversation, same signature
		body + "." + strings.Repeat("A", len(sig)),           // a made-up signature
		strings.Replace(body, ":r:", ":u:", 1) + "." + sig,   // another action
	}
	for _, data := range forged {
		if data == retry.Data {
			t.Fatalf("forgery %q equals the real data", data)
		}
		x.emu.PressForged(chat, ann, oldID, data)
		x.idle()
		if got := x.lastAlert(); !strings.Contains(got, "button") {
			t.Errorf("forged %q: alert %q", data, got)
		}
	}
	if n := x.aisv.Count(); n != 2 {
		t.Errorf("%d AI requests, want only the 2 questions", n)
	}
}

// "Model" opens the other models of the plan; picking one makes it the
// user's model and answers the same question again with it.
func TestRetryWithAnotherModel(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	chat := bottest.PrivateChat(ann)
	x.say(ann, "compare us")
	x.press(ann, chat, "Model")
	id, _ := x.answerButton(ann.ID, "Back")
	var labels []string
	for _, m := range x.emu.Messages(ann.ID) {
		if m.ID != id {
			continue
		}
		for _, row := range m.Keyboard {
			for _, b := range row {
				labels = append(labels, b.Text)
			}
		}
	}
	if strings.Join(labels, ",") != "chat-b,seer,↩ Back" {
		t.Fatalf("model menu = %q", labels)
	}
	x.press(ann, chat, "chat-b")
	reqs := x.aisv.Requests()
	if len(reqs) != 2 || reqs[1].Model != "chat-b-name" || lastUserText(reqs[1]) != "compare us" {
		t.Fatalf("requests = %v, last user text %q", models(reqs), lastUserText(reqs[len(reqs)-1]))
	}
	if s, _ := x.db.AISettings(ann.ID); s.Model != "chat-b" {
		t.Errorf("model after the switch = %q", s.Model)
	}
	if h := turnTexts(x.history(ann)); h != "user:compare us|assistant:echo: compare us" {
		t.Errorf("history = %q", h)
	}
	if l := x.usage(ann); len(l) != 2 || l[1].Model != "chat-b" {
		t.Errorf("ledger = %+v", l)
	}
}

// A retry whose conversation was deleted, or whose account was erased, is
// told so clearly, and nothing reaches a provider.
func TestRetryOfAGoneAnswerIsExplained(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	chat := bottest.PrivateChat(ann)
	x.say(ann, "keep this")
	id, retry := x.answerButton(ann.ID, "Retry")
	if _, err := x.db.DeleteConversation(ann.ID, 1); err != nil {
		t.Fatal(err)
	}
	x.emu.PressButton(chat, ann, id, retry.Data)
	x.idle()
	if got := x.lastAlert(); !strings.Contains(got, "conversation was deleted") {
		t.Errorf("deleted conversation: alert %q", got)
	}
	if err := x.db.DeleteUser(ann.ID); err != nil {
		t.Fatal(err)
	}
	x.emu.PressButton(chat, ann, id, retry.Data)
	x.idle()
	if got := x.lastAlert(); !strings.Contains(got, "Your data was erased") {
		t.Errorf("erased account: alert %q", got)
	}
	if n := x.aisv.Count(); n != 1 {
		t.Errorf("%d AI requests, want 1", n)
	}
}

// In a group the buttons are the asker's: another member is refused; the
// asker's retry answers the same question, replying to it.
func TestRetryInAGroupIsTheAskers(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.register(bob, true)
	group := bottest.Chat{ID: -100777, Type: "group", Title: "friends"}
	qid := x.emu.SendText(group, ann, "@valex_bot name a colour")
	x.idle()
	_ = qid
	id, retry := x.answerButton(group.ID, "Retry")
	x.emu.PressButton(group, bob, id, retry.Data)
	x.idle()
	if got := x.lastAlert(); !strings.Contains(got, "Only the person who asked") {
		t.Errorf("bob's press: alert %q", got)
	}
	if n := x.aisv.Count(); n != 1 {
		t.Fatalf("%d AI requests after bob's press", n)
	}
	x.emu.PressButton(group, ann, id, retry.Data)
	x.idle()
	reqs := x.aisv.Requests()
	if len(reqs) != 2 || lastUserText(reqs[1]) != "name a colour" {
		t.Fatalf("%d requests; retried %q", len(reqs), lastUserText(reqs[len(reqs)-1]))
	}
	var replies []int
	for _, e := range x.emu.EventsFor(group.ID) {
		if e.Method == "sendMessage" {
			replies = append(replies, e.ReplyTo)
		}
	}
	if len(replies) != 2 || replies[0] == 0 || replies[1] != replies[0] {
		t.Errorf("answers reply to %v, want both to the question", replies)
	}
}
