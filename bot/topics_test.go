package bot_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

// A message written in a topic of a private chat comes with its thread
// (parsed from the raw update, which tgbotapi v5.5.1 does not know), and
// the answer goes back into that topic: the bot's own error reply too.
func TestRepliesGoToTheTopicOfTheRequest(t *testing.T) {
	emu := newEmulator(t)
	var got []bot.Request
	newPipeline(t, emu, "", func(p *pipeline) {
		p.rt.Command("echo", 0, "", func(ctx context.Context, r *bot.Request) error {
			got = append(got, *r)
			_, err := p.out.Send(ctx, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: "echo"})
			return err
		})
		p.rt.Command("fail", 0, "", func(ctx context.Context, r *bot.Request) error { return errors.New("boom") })
	})
	u := bottest.User{ID: 42, FirstName: "Ann"}
	topic := emu.CreateTopic(bottest.PrivateChat(u), u, "Trip")
	if topic.Thread == 0 {
		t.Fatal("CreateTopic gave no thread id")
	}
	emu.SendText(topic, u, "/echo")
	emu.SendText(bottest.PrivateChat(u), u, "/echo")
	emu.SendText(topic, u, "/fail")
	evs, err := emu.WaitCount(waitCtx(t), 3, sent)
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].ThreadID != topic.Thread || evs[1].ThreadID != 0 || evs[2].ThreadID != topic.Thread {
		t.Fatalf("threads = %d, %d, %d; want %d, 0, %d", evs[0].ThreadID, evs[1].ThreadID, evs[2].ThreadID, topic.Thread, topic.Thread)
	}
	if len(got) != 2 || got[0].ThreadID != topic.Thread || got[1].ThreadID != 0 {
		t.Fatalf("requests = %+v", got)
	}
	// The forum_topic_created service message needs no answer: the three
	// replies above are all the bot sent.
	if n := emu.Count("sendMessage"); n != 3 {
		t.Fatalf("sendMessage called %d times, want 3 (the service message answered?)", n)
	}
}

// Every outgoing kind carries message_thread_id; a topic the chat does not
// have is refused like Telegram refuses it.
func TestOutboxSendsIntoTopics(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	ctx := context.Background()
	u := bottest.User{ID: 43, FirstName: "Bo"}
	topic := emu.CreateTopic(bottest.PrivateChat(u), u, "Work")
	if _, err := out.Send(ctx, bot.Message{ChatID: u.ID, ThreadID: topic.Thread, Text: "hi", Keyboard: [][]bot.Button{{{Text: "x", Data: "y"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := out.Typing(ctx, u.ID, topic.Thread, "typing"); err != nil {
		t.Fatal(err)
	}
	if _, err := out.SendFile(ctx, bot.FileMessage{ChatID: u.ID, ThreadID: topic.Thread, Kind: bot.FileVoice, Name: "a.ogg", Data: []byte("OggS"), Caption: "<i>v</i>"}); err != nil {
		t.Fatal(err)
	}
	if _, err := out.SendFile(ctx, bot.FileMessage{ChatID: u.ID, ThreadID: topic.Thread, Kind: bot.FileDocument, Name: "a.txt", Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"sendMessage", "sendChatAction", "sendVoice", "sendDocument"} {
		e, err := emu.WaitFor(waitCtx(t), func(e bottest.Event) bool { return e.Method == method && e.OK() })
		if err != nil {
			t.Fatal(err)
		}
		if e.ThreadID != topic.Thread {
			t.Errorf("%s went to thread %d, want %d", method, e.ThreadID, topic.Thread)
		}
	}
	_, err := out.Send(ctx, bot.Message{ChatID: u.ID, ThreadID: topic.Thread + 100, Text: "lost"})
	var ae *bot.APIError
	if !errors.As(err, &ae) || ae.Code != 400 || !strings.Contains(ae.Description, "message thread not found") {
		t.Fatalf("send to an unknown topic: %v", err)
	}
	if err := out.Typing(ctx, u.ID, 999, "typing"); err == nil {
		t.Fatal("chat action in an unknown topic accepted")
	}
}
