package bot_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

// sendMessageDraft through the outbox, validated by the emulator.
func TestSendDraft(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	ctx := context.Background()
	group := bottest.Chat{ID: -500, Type: "group", Title: "g"}
	emu.SendText(group, bottest.User{ID: 7, FirstName: "A"}, "hi") // the emulator knows the group now

	tests := []struct {
		name     string
		d        bot.Draft
		wantErr  string // "" for success
		wantText string
	}{
		{"html", bot.Draft{ChatID: 42, DraftID: 9, Text: "<b>so</b> far", CanStop: true}, "", "so far"},
		{"empty: Thinking…", bot.Draft{ChatID: 42, DraftID: 9}, "", ""},
		{"in a topic", bot.Draft{ChatID: 42, DraftID: 10, ThreadID: 3, Text: "x"}, "", "x"},
		{"zero id", bot.Draft{ChatID: 42, Text: "x"}, "must not be zero", ""},
		{"group", bot.Draft{ChatID: group.ID, DraftID: 9, Text: "x"}, "400 Bad Request: TEXTDRAFT_PEER_INVALID", ""},
		{"too long", bot.Draft{ChatID: 42, DraftID: 9, Text: strings.Repeat("a", 4097)}, "400 Bad Request: message is too long", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := emu.Count("sendMessageDraft")
			err := out.SendDraft(ctx, tt.d)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, bot.ErrDraftSkipped) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if emu.Count("sendMessageDraft") != before+1 {
				t.Fatal("no draft call")
			}
			evs := emu.EventsFor(tt.d.ChatID)
			e := evs[len(evs)-1]
			if e.Method != "sendMessageDraft" || e.DraftID != tt.d.DraftID || e.Text != tt.wantText || e.CanStop != tt.d.CanStop || e.ThreadID != tt.d.ThreadID {
				t.Errorf("event %s: id %d text %q can_stop %v thread %d", e, e.DraftID, e.Text, e.CanStop, e.ThreadID)
			}
		})
	}
	if d := emu.Drafts(42)[9]; d.Updates != 2 || d.Text != "" || d.CanStop {
		t.Errorf("draft 9 as the chat shows it: %+v", d)
	}
}

// A 429 on a draft holds its chat for retry_after: the next draft is
// skipped without a call, the next message waits; other chats go on.
func TestDraftFloodHoldsOnlyItsChat(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	ctx := context.Background()
	emu.FailNext("sendMessageDraft", 1, 429, 1)
	if err := out.SendDraft(ctx, bot.Draft{ChatID: 42, DraftID: 1, Text: "a"}); !errors.Is(err, bot.ErrDraftSkipped) {
		t.Fatalf("429 on a draft: %v, want ErrDraftSkipped", err)
	}
	if err := out.SendDraft(ctx, bot.Draft{ChatID: 42, DraftID: 1, Text: "ab"}); !errors.Is(err, bot.ErrDraftSkipped) {
		t.Fatalf("draft in the hold: %v, want ErrDraftSkipped", err)
	}
	if n := emu.Count("sendMessageDraft"); n != 1 {
		t.Fatalf("%d draft calls, want only the refused one", n)
	}
	if _, err := out.Send(ctx, bot.Message{ChatID: 43, Text: "elsewhere"}); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Send(ctx, bot.Message{ChatID: 42, Text: "final"}); err != nil {
		t.Fatal(err)
	}
	var flood, other, final bottest.Event
	for _, e := range emu.Events() {
		switch {
		case e.Method == "sendMessageDraft":
			flood = e
		case e.ChatID == 43:
			other = e
		case e.ChatID == 42:
			final = e
		}
	}
	if gap := final.At.Sub(flood.At); gap < time.Second {
		t.Errorf("the message came %v after the draft's 429 (retry_after 1s)", gap)
	}
	if !other.At.Before(flood.At.Add(time.Second)) {
		t.Errorf("another chat waited for the hold: %v", other.At.Sub(flood.At))
	}
	if s := out.Stats(); s.Flood != 1 {
		t.Errorf("stats %+v", s)
	}
}

// Drafts take no token of the message limits: a paced outbox allowing one
// message a second still streams drafts at once.
func TestDraftsAreNotPacedAsMessages(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, bot.OutboxConfig{Pace: bot.PaceConfig{Global: 1, PrivatePerSec: 1, GroupPerMinute: 1, Burst: 1}})
	ctx := context.Background()
	start := time.Now()
	for i := range 20 {
		if err := out.SendDraft(ctx, bot.Draft{ChatID: 42 + int64(i%2), DraftID: 5, Text: strings.Repeat("x", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	// Twenty paced messages would take 19 seconds.
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("20 drafts took %v", took)
	}
	if _, err := out.Send(ctx, bot.Message{ChatID: 44, Text: "reply"}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a reply after 20 drafts came after %v: the drafts used its budget", took)
	}
}

// A draft never queues behind another call to its chat: it is skipped.
func TestDraftSkippedWhileItsChatIsBusy(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	ctx := context.Background()
	emu.SetLatency("sendMessage", 500*time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := out.Send(ctx, bot.Message{ChatID: 42, Text: "slow"})
		done <- err
	}()
	for out.Stats().Backlog == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the send has its turn and is on the wire
	if err := out.SendDraft(ctx, bot.Draft{ChatID: 42, DraftID: 1, Text: "a"}); !errors.Is(err, bot.ErrDraftSkipped) {
		t.Fatalf("draft while the chat is busy: %v", err)
	}
	if err := out.SendDraft(ctx, bot.Draft{ChatID: 43, DraftID: 1, Text: "a"}); err != nil {
		t.Fatalf("draft to another chat: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := emu.Count("sendMessageDraft"); n != 1 {
		t.Errorf("%d draft calls, want 1", n)
	}
}

// The stop button's update, as the emulator sends it, reaches the router
// as KindStop with the user, the chat and the draft.
func TestStopUpdateIsRouted(t *testing.T) {
	emu := newEmulator(t)
	got := make(chan *bot.Request, 1)
	p := newPipeline(t, emu, "", func(p *pipeline) {
		p.rt.On(bot.KindStop, func(ctx context.Context, r *bot.Request) error {
			got <- r
			return nil
		})
	})
	ann := bottest.User{ID: 42, FirstName: "Ann", Username: "ann"}
	if emu.StopDraft(ann, 77) != 0 {
		t.Fatal("a stop for a draft never shown was sent")
	}
	if err := p.out.SendDraft(waitCtx(t), bot.Draft{ChatID: 42, DraftID: 77, ThreadID: 5, Text: "…", CanStop: true}); err != nil {
		t.Fatal(err)
	}
	if emu.StopDraft(ann, 77) == 0 {
		t.Fatal("stop not sent")
	}
	select {
	case r := <-got:
		if r.Kind != bot.KindStop || r.DraftID != 77 || r.ThreadID != 5 || r.ChatID != 42 || r.From.ID != 42 || !r.Private() {
			t.Errorf("stop request %+v", r.Update)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stop update was not routed")
	}
}
