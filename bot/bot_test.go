package bot_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/bot/tghtml"
	"github.com/valex-ai/valex/store"
)

func echo(p *pipeline) {
	p.rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error {
		if r.Text == "boom" {
			panic("handler bug")
		}
		_, err := p.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: tghtml.Escape(r.Text)})
		return err
	})
	p.rt.Command("fail", valex.RoleUser, "", func(context.Context, *bot.Request) error {
		return fmt.Errorf("disk on fire")
	})
	p.rt.Command("staff", valex.RoleSupport, "", func(ctx context.Context, r *bot.Request) error {
		_, err := p.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: "secret staff data"})
		return err
	})
	p.rt.Callback("ok", valex.RoleUser, func(ctx context.Context, r *bot.Request) error {
		r.Toast = "pressed " + strings.Join(r.CallbackArgs, ",")
		return nil
	})
}

func TestPerChatOrderUnderConcurrency(t *testing.T) {
	emu := newEmulator(t)
	newPipeline(t, emu, "", echo)
	const chats, each = 30, 30
	for i := 0; i < each; i++ {
		for c := 1; c <= chats; c++ {
			u := bottest.User{ID: int64(c), FirstName: "u"}
			emu.SendText(bottest.PrivateChat(u), u, strconv.Itoa(i))
		}
	}
	if _, err := emu.WaitCount(waitCtx(t), chats*each, sent); err != nil {
		t.Fatal(err)
	}
	for c := 1; c <= chats; c++ {
		var got []string
		for _, e := range emu.EventsFor(int64(c)) {
			if sent(e) {
				got = append(got, e.Text)
			}
		}
		for i, text := range got {
			if text != strconv.Itoa(i) {
				t.Fatalf("chat %d: reply %d is %q: order broken (%v)", c, i, text, got)
			}
		}
	}
}

func TestPanicAndErrorsAreAnsweredAndTheBotLivesOn(t *testing.T) {
	emu := newEmulator(t)
	newPipeline(t, emu, "", echo)
	u := bottest.User{ID: 11, FirstName: "u"}
	chat := bottest.PrivateChat(u)
	emu.SendText(chat, u, "boom")
	emu.SendText(chat, u, "/fail")
	emu.SendText(chat, u, "still alive")
	evs, err := emu.WaitCount(waitCtx(t), 3, sent)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(evs[0].Text, "Something went wrong") || !strings.Contains(evs[1].Text, "Something went wrong") {
		t.Fatalf("error replies = %q, %q", evs[0].Text, evs[1].Text)
	}
	if strings.Contains(evs[1].Text, "disk on fire") {
		t.Fatal("internal error detail shown to the user")
	}
	if evs[2].Text != "still alive" {
		t.Fatalf("after the panic the bot answered %q", evs[2].Text)
	}
}

func TestRouterAnswersBadInputClearly(t *testing.T) {
	emu := newEmulator(t)
	p := newPipeline(t, emu, "", echo)
	u := bottest.User{ID: 12, FirstName: "u"}
	chat := bottest.PrivateChat(u)
	signer := bot.NewSigner([]byte(testToken))

	emu.SendText(chat, u, "/nosuchcommand")
	emu.SendRaw([]byte(`{"message":{"message_id":900,"date":1,"chat":{"id":12,"type":"private"},"from":{"id":12,"first_name":"u"},"sticker":{"file_id":"s","file_unique_id":"s","width":1,"height":1,"is_animated":false}}}`))
	emu.SendText(chat, u, "/staff")
	msgID := 1
	emu.PressForged(chat, u, msgID, "prof:edit:password.AAAAAAAAAAA") // forged signature
	emu.PressForged(chat, u, msgID, signer.Data("nosuch"))            // signed, but no such button
	emu.PressForged(chat, u, msgID, signer.Data("ok", "a", "b"))

	ctx := waitCtx(t)
	msgs, err := emu.WaitCount(ctx, 3, sent)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/nosuchcommand", "can't handle this kind of message", "support staff"}
	for i, w := range want {
		if !strings.Contains(msgs[i].Text, w) {
			t.Fatalf("reply %d = %q, want it to mention %q", i, msgs[i].Text, w)
		}
	}
	if strings.Contains(msgs[2].Text, "secret") {
		t.Fatal("refusal leaked staff data")
	}
	answers, err := emu.WaitCount(ctx, 3, func(e bottest.Event) bool { return e.Method == "answerCallbackQuery" })
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if !strings.Contains(answers[i].CallbackText, "no longer valid") || !answers[i].ShowAlert {
			t.Fatalf("tampered button answer %d = %q alert=%v", i, answers[i].CallbackText, answers[i].ShowAlert)
		}
	}
	if answers[2].CallbackText != "pressed a,b" {
		t.Fatalf("valid button answer = %q", answers[2].CallbackText)
	}
	_ = p
}

func TestGroupsAnswerOnlyWhenSpokenTo(t *testing.T) {
	emu := newEmulator(t)
	newPipeline(t, emu, "", echo)
	u := bottest.User{ID: 13, FirstName: "u"}
	group := bottest.Chat{ID: -100, Type: "group", Title: "g"}
	emu.SendText(group, u, "chatter between people")
	emu.SendText(group, u, "/nosuchcommand")           // maybe another bot's
	emu.SendText(group, u, "hey @valex_bot translate") // mentioned
	e, err := emu.WaitFor(waitCtx(t), sent)
	if err != nil {
		t.Fatal(err)
	}
	if e.Text != "hey @valex_bot translate" {
		t.Fatalf("group reply = %q, want only the mention answered", e.Text)
	}
	if n := emu.Count("sendMessage"); n != 1 {
		t.Fatalf("%d messages sent to the group, want 1", n)
	}
}

func TestInboxNeverHandlesAnUpdateTwice(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "valex.db")
	emu := newEmulator(t)
	p := newPipeline(t, emu, dbPath, echo)
	u := bottest.User{ID: 14, FirstName: "u"}
	for i := 0; i < 5; i++ {
		emu.SendText(bottest.PrivateChat(u), u, "first run "+strconv.Itoa(i))
	}
	if _, err := emu.WaitCount(waitCtx(t), 5, sent); err != nil {
		t.Fatal(err)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	// A fresh emulator numbers updates from 1 again: to the bot these are
	// update ids it already stored, as when Telegram re-sends after a lost ack.
	emu2 := newEmulator(t)
	newPipeline(t, emu2, dbPath, echo)
	for i := 0; i < 7; i++ {
		emu2.SendText(bottest.PrivateChat(u), u, "second run "+strconv.Itoa(i))
	}
	evs, err := emu2.WaitCount(waitCtx(t), 2, sent)
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Text != "second run 5" || evs[1].Text != "second run 6" {
		t.Fatalf("handled %q, %q: only updates 6 and 7 are new", evs[0].Text, evs[1].Text)
	}
}

func TestGracefulShutdownFinishesInFlightHandlers(t *testing.T) {
	emu := newEmulator(t)
	started := make(chan struct{})
	dbPath := filepath.Join(t.TempDir(), "valex.db")
	p := newPipeline(t, emu, dbPath, func(p *pipeline) {
		p.rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error {
			if r.Text == "slow" {
				close(started)
				time.Sleep(300 * time.Millisecond)
			}
			_, err := p.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: "finished " + r.Text})
			return err
		})
	})
	u := bottest.User{ID: 15, FirstName: "u"}
	emu.SendText(bottest.PrivateChat(u), u, "slow")
	<-started
	if err := p.stop(); err != nil { // SIGINT arrives while the handler runs
		t.Fatal(err)
	}
	if e, err := emu.WaitFor(waitCtx(t), sent); err != nil || e.Text != "finished slow" {
		t.Fatalf("in-flight reply = %q, %v", e.Text, err)
	}
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pending, _ := db.InboxPending()
	db.Close()
	if len(pending) != 0 {
		t.Fatalf("%d updates pending after a clean stop", len(pending))
	}
}
