package handlers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot/bottest"
)

// sayIn sends text as u in a chat (a topic) and waits until the bot is idle.
func (x *aiHarness) sayIn(chat bottest.Chat, u bottest.User, text string) {
	x.t.Helper()
	x.emu.SendText(chat, u, text)
	x.idle()
}

// In a private chat with topics each topic is its own conversation: the
// provider sees only the topic's history, answers land in the topic, /new
// in a topic starts over there only, and the General topic keeps the
// current conversation.
func TestTopicsAreSeparateConversations(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	chat := bottest.PrivateChat(ann)
	trip := x.emu.CreateTopic(chat, ann, "Trip")
	work := x.emu.CreateTopic(chat, ann, "Work")
	x.idle()

	x.sayIn(trip, ann, "alpha one")
	x.sayIn(work, ann, "beta one")
	x.sayIn(chat, ann, "general one")
	x.sayIn(trip, ann, "alpha two")
	if got, want := requestTexts(x.lastRequest()), "system:PROMPT-assistant|user:alpha one|assistant:echo: alpha one|user:alpha two"; got != want {
		t.Fatalf("trip's second turn sent %q, want %q", got, want)
	}
	x.sayIn(work, ann, "beta two")
	if got, want := requestTexts(x.lastRequest()), "system:PROMPT-assistant|user:beta one|assistant:echo: beta one|user:beta two"; got != want {
		t.Fatalf("work's second turn sent %q, want %q", got, want)
	}
	x.sayIn(chat, ann, "general two")
	if got, want := requestTexts(x.lastRequest()), "system:PROMPT-assistant|user:general one|assistant:echo: general one|user:general two"; got != want {
		t.Fatalf("the General topic sent %q, want %q", got, want)
	}

	// Every answer went into the topic of its question.
	for _, e := range x.emu.EventsFor(ann.ID) {
		if e.Method != "sendMessage" && e.Method != "sendChatAction" {
			continue
		}
		if !e.OK() {
			t.Errorf("failed call: %s", e)
		}
		var want int
		switch {
		case strings.Contains(e.Text, "alpha"):
			want = trip.Thread
		case strings.Contains(e.Text, "beta"):
			want = work.Thread
		case strings.Contains(e.Text, "general"):
			want = 0
		default:
			continue
		}
		if e.ThreadID != want {
			t.Errorf("%s went to thread %d, want %d", e, e.ThreadID, want)
		}
	}
	for _, m := range x.emu.Messages(ann.ID) {
		if strings.Contains(m.Text, "alpha") && m.Thread != trip.Thread {
			t.Errorf("answer %q shown in thread %d", m.Text, m.Thread)
		}
	}

	// /new in one topic: that topic starts over, the other keeps its
	// history; the reply is in the topic.
	x.sayIn(trip, ann, "/new")
	if m := x.emu.Messages(ann.ID); m[len(m)-1].Thread != trip.Thread || !strings.Contains(m[len(m)-1].Text, "new conversation") {
		t.Fatalf("/new answered %+v", m[len(m)-1])
	}
	x.sayIn(trip, ann, "alpha fresh")
	if got := requestTexts(x.lastRequest()); got != "system:PROMPT-assistant|user:alpha fresh" {
		t.Fatalf("after /new in the topic: %q", got)
	}
	x.sayIn(work, ann, "beta three")
	if got := requestTexts(x.lastRequest()); !strings.Contains(got, "user:beta two") || strings.Contains(got, "alpha") {
		t.Fatalf("the other topic after /new: %q", got)
	}
	x.sayIn(chat, ann, "general three")
	if got := requestTexts(x.lastRequest()); !strings.Contains(got, "user:general two") {
		t.Fatalf("the General topic after /new in a topic: %q", got)
	}

	// /history in a topic marks the topic's conversation as current and
	// the others in topics as such; the screen is in the topic.
	x.sayIn(work, ann, "/history")
	msgs := x.emu.Messages(ann.ID)
	screen := msgs[len(msgs)-1]
	if screen.Thread != work.Thread || !strings.Contains(screen.Text, "beta one (current)") || !strings.Contains(screen.Text, "alpha fresh (in a topic)") {
		t.Fatalf("/history in a topic: thread %d %q", screen.Thread, screen.Text)
	}
	// Resuming there gives the conversation to this topic only.
	general := currentConv(x.settings(ann))
	x.press(ann, work, fmt.Sprintf("▶ #%d", general))
	s := x.settings(ann)
	if got := s.Topics[work.Thread]; got != general || currentConv(s) != general || s.Topics[trip.Thread] == general {
		t.Fatalf("resume in a topic: topics %v, current #%d, want work → #%d", s.Topics, s.Conversation, general)
	}
	if m := x.emu.Messages(ann.ID); !strings.Contains(m[len(m)-1].Text, "Resumed #") {
		t.Fatalf("after resume: %q", m[len(m)-1].Text)
	}
}

func TestTopicMapIsErasedWithTheAccount(t *testing.T) {
	x := newConvHarness(t)
	x.register(ann, true)
	topic := x.emu.CreateTopic(bottest.PrivateChat(ann), ann, "Trip")
	x.sayIn(topic, ann, "alpha one")
	if s := x.settings(ann); len(s.Topics) != 1 {
		t.Fatalf("topics = %v", s.Topics)
	}
	if _, err := x.db.EraseUser(ann.ID, 0, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if s := x.settings(ann); len(s.Topics) != 0 || s.Conversation != 0 {
		t.Fatalf("after erasure: %+v", s)
	}
}
