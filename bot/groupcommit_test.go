package bot_test

import (
	"context"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

// At a trickle of updates (each getUpdates brings one), the handled id of
// one update rides in the commit that stores the next: about one commit per
// update, not two, and every update is still handled exactly once.
func TestTrickleCostsOneCommitPerUpdate(t *testing.T) {
	emu := newEmulator(t)
	p := newPipelineWith(t, emu, "", bot.Config{PollTimeout: time.Second}, func(p *pipeline) {
		p.rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error {
			_, err := p.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: "ok"})
			return err
		})
	})
	const n = 40
	ctx := waitCtx(t)
	if err := emu.WaitCalls(ctx, "getUpdates", 1); err != nil {
		t.Fatal(err)
	}
	before := p.db.Commits()
	for i := 0; i < n; i++ {
		u := bottest.User{ID: int64(7000 + i), FirstName: "trickle"}
		emu.SendText(bottest.PrivateChat(u), u, "hi")
		time.Sleep(30 * time.Millisecond) // 33 updates a second, one per poll
	}
	if _, err := emu.WaitCount(ctx, n, sent); err != nil {
		t.Fatal(err)
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	commits := p.db.Commits() - before
	if commits > n*5/4 {
		t.Errorf("%d commits for %d updates, want about one each (at most %d)", commits, n, n*5/4)
	}
	t.Logf("%d commits for %d updates", commits, n)
}
