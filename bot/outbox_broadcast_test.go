package bot_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

// broadcastLoad runs senders goroutines that broadcast to fresh chats
// until stop is called, which returns how many messages went out.
func broadcastLoad(t *testing.T, out *bot.Outbox, senders int) (stop func() int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var sent atomic.Int64
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ctx.Err() == nil; i++ {
				chat := int64(100_000 + g*10_000 + int(i))
				if _, err := out.Broadcast(ctx, bot.Message{ChatID: chat, Text: "policy update"}); err == nil {
					sent.Add(1)
				} else if ctx.Err() == nil {
					t.Errorf("broadcast to %d: %v", chat, err)
					return
				}
			}
		}()
	}
	return func() int64 {
		cancel()
		wg.Wait()
		return sent.Load()
	}
}

// A reply sent during a big broadcast is not queued behind it: the
// broadcast takes only the tokens no reply waits for. With 40 broadcast
// messages always waiting at 20 a second, a first-come-first-served
// limiter would make a reply wait about 2 s; here it waits at most one
// token's interval (50 ms) plus the round trip. The broadcast still runs
// at the limit.
func TestReplyJumpsTheBroadcast(t *testing.T) {
	emu := newEmulator(t)
	emu.SetRecord(false)
	const limit = 20
	out := newOutbox(t, emu, bot.OutboxConfig{Pace: bot.PaceConfig{Global: limit, PrivatePerSec: 1000, GroupPerMinute: 60000, Burst: 100}})
	start := time.Now()
	stop := broadcastLoad(t, out, 40)
	time.Sleep(1500 * time.Millisecond) // the first second's burst is spent: the limiter is busy

	var worst time.Duration
	for i := range 5 {
		t0 := time.Now()
		if _, err := out.Send(context.Background(), bot.Message{ChatID: int64(42 + i), Text: "your answer"}); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(t0))
		time.Sleep(200 * time.Millisecond)
	}
	sent := stop()
	elapsed := time.Since(start)
	if worst > 300*time.Millisecond {
		t.Errorf("a reply waited %s behind the broadcast", worst)
	}
	// Everything sent, broadcast and replies, stays within the limit (a
	// second's worth of burst first) and the broadcast used the rest.
	total := float64(sent + 5)
	ceiling := limit + limit*elapsed.Seconds()
	if total > ceiling+1 || total < 0.85*ceiling {
		t.Errorf("%v messages in %s: want close to the limit, %0.f", total, elapsed.Round(time.Millisecond), ceiling)
	}
	t.Logf("worst reply wait %s; %d broadcast messages in %s", worst, sent, elapsed.Round(time.Millisecond))
}

// Paid broadcasts carry allow_paid_broadcast and are paced by their own
// limit, past the global one; replies and unpaid broadcasts carry nothing.
func TestPaidBroadcast(t *testing.T) {
	emu := newEmulator(t)
	emu.SetRateLimit(5, 1000) // Telegram: 5 a second here, paid ones past it
	pace := bot.PaceConfig{Global: 5, PrivatePerSec: 1000, GroupPerMinute: 60000, Burst: 100, PaidPerSec: 1000}
	paid := newOutbox(t, emu, bot.OutboxConfig{Pace: pace, PaidBroadcast: true})
	free := newOutbox(t, emu, bot.OutboxConfig{Pace: pace})
	if !paid.PaidBroadcasts() || free.PaidBroadcasts() {
		t.Fatal("PaidBroadcasts does not follow the configuration")
	}

	start := time.Now()
	var wg sync.WaitGroup
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if _, err := paid.Broadcast(context.Background(), bot.Message{ChatID: int64(1000 + g*10 + i), Text: "breach notice"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	// 200 messages: 40 s at the global limit of 5 a second.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("200 paid broadcast messages took %s", d)
	}
	if _, err := paid.Send(context.Background(), bot.Message{ChatID: 42, Text: "a reply"}); err != nil {
		t.Fatal(err)
	}
	if _, err := free.Broadcast(context.Background(), bot.Message{ChatID: 43, Text: "news"}); err != nil {
		t.Fatal(err)
	}
	var paidOK int
	for _, e := range emu.Events() {
		if e.Method != "sendMessage" {
			continue
		}
		if !e.OK() {
			t.Fatalf("refused: %v", e)
		}
		switch {
		case e.ChatID == 42 || e.ChatID == 43:
			if e.PaidBroadcast || e.Params.Has("allow_paid_broadcast") {
				t.Errorf("chat %d: a reply or an unpaid broadcast was sent as a paid broadcast", e.ChatID)
			}
		case e.PaidBroadcast && e.ParseMode == "HTML":
			paidOK++
		}
	}
	if paidOK != 200 {
		t.Fatalf("%d paid broadcast messages, want 200", paidOK)
	}
}

// A broadcast message stopped before it could reach Telegram says so
// (ErrNotSent), so the broadcast can send it after a restart; one stopped
// while Telegram may have it does not.
func TestBroadcastStoppedSaysWhetherItLeft(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(emu *bottest.Server, out *bot.Outbox)
		notSent bool
	}{
		{
			name: "waiting for the limit",
			setup: func(emu *bottest.Server, out *bot.Outbox) {
				// The limit's only token goes to another message first.
				if _, err := out.Broadcast(context.Background(), bot.Message{ChatID: 7, Text: "first"}); err != nil {
					panic(err)
				}
			},
			notSent: true,
		},
		{
			name:    "waiting out a 429",
			setup:   func(emu *bottest.Server, _ *bot.Outbox) { emu.FailNext("sendMessage", 1, 429, 30) },
			notSent: true,
		},
		{
			name:    "on its way to Telegram",
			setup:   func(emu *bottest.Server, _ *bot.Outbox) { emu.SetLatency("sendMessage", 10*time.Second) },
			notSent: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmulator(t)
			out := newOutbox(t, emu, bot.OutboxConfig{Pace: bot.PaceConfig{Global: 0.1, PrivatePerSec: 1000, GroupPerMinute: 60000, Burst: 100}})
			tt.setup(emu, out)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := out.Broadcast(ctx, bot.Message{ChatID: 8, Text: "second"})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the context's", err)
			}
			if errors.Is(err, bot.ErrNotSent) != tt.notSent {
				t.Fatalf("err = %v: ErrNotSent %v, want %v", err, errors.Is(err, bot.ErrNotSent), tt.notSent)
			}
		})
	}
}
