package bot_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/bot/tghtml"
)

// With MaxPending updates in flight (their handlers, or work they deferred
// such as a queued AI answer) the poller takes no more: the rest of a flood
// waits at Telegram instead of in memory, and is answered, in full, once
// the work in flight ends.
func TestMaxPendingLeavesTheRestAtTelegram(t *testing.T) {
	const limit, chats = 5, 20
	emu := newEmulator(t)
	release := make(chan struct{})
	var entered atomic.Int32
	cfg := bot.Config{PollTimeout: time.Second, DoneFlush: 5 * time.Millisecond, MaxPending: limit}
	newPipelineWith(t, emu, "", cfg, func(p *pipeline) {
		p.rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error {
			entered.Add(1)
			end := r.Defer()
			go func() {
				<-release
				_, err := p.out.Send(context.Background(), bot.Message{ChatID: r.ChatID, Text: tghtml.Escape(r.Text)})
				end(err == nil)
			}()
			return nil
		})
	})
	send := func(from, to int) {
		for c := from; c <= to; c++ {
			u := bottest.User{ID: int64(c), FirstName: "u"}
			emu.SendText(bottest.PrivateChat(u), u, strconv.Itoa(c))
		}
	}
	waitEntered := func(n int32) {
		deadline := time.Now().Add(10 * time.Second)
		for entered.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	// Below the limit the poller takes what comes: one short of it first,
	// then the flood (the last place must not wait for half to be free).
	send(1, limit-1)
	waitEntered(limit - 1)
	send(limit, chats)
	waitEntered(limit)
	time.Sleep(300 * time.Millisecond) // room for more to be taken, were the limit not kept
	if n := entered.Load(); n != limit {
		t.Fatalf("%d updates taken with MaxPending %d", n, limit)
	}
	if n := emu.Pending(); n < chats-limit {
		t.Errorf("%d updates left at Telegram, want at least %d", n, chats-limit)
	}
	close(release)
	if _, err := emu.WaitCount(waitCtx(t), chats, sent); err != nil {
		t.Fatal(err)
	}
	if n := entered.Load(); n != chats {
		t.Errorf("%d updates handled, want %d", n, chats)
	}
}

// Work that waits on its user (a message held until they agree to the AI
// transfer) does not count against MaxPending: with more users waiting than
// the limit, their answers still get through and free them.
func TestWorkWaitingOnTheUserLeavesRoom(t *testing.T) {
	const limit, users = 2, 6
	emu := newEmulator(t)
	var mu sync.Mutex
	held := map[int64]func(bool){}
	cfg := bot.Config{PollTimeout: time.Second, DoneFlush: 5 * time.Millisecond, MaxPending: limit}
	newPipelineWith(t, emu, "", cfg, func(p *pipeline) {
		p.rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error {
			if r.Text == "hold" {
				end := r.Defer()
				r.WaitsOnUser(true)
				mu.Lock()
				held[r.From.ID] = end
				mu.Unlock()
				return nil
			}
			mu.Lock()
			end := held[r.From.ID]
			delete(held, r.From.ID)
			mu.Unlock()
			if end != nil {
				end(true)
			}
			_, err := p.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: "released"})
			return err
		})
	})
	for i := 1; i <= users; i++ {
		u := bottest.User{ID: int64(i), FirstName: "u"}
		emu.SendText(bottest.PrivateChat(u), u, "hold")
	}
	for i := 1; i <= users; i++ {
		u := bottest.User{ID: int64(i), FirstName: "u"}
		emu.SendText(bottest.PrivateChat(u), u, "go")
	}
	if _, err := emu.WaitCount(waitCtx(t), users, sent); err != nil {
		t.Fatalf("held work blocked the poller: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(held) != 0 {
		t.Errorf("%d held updates never released", len(held))
	}
}
