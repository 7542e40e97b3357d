package bot_test

import (
	"context"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

// A pre-checkout is answered while the same user's chat is busy with a slow
// handler: Telegram waits only 10 seconds, so a checkout never queues
// behind the chat.
func TestPreCheckoutSkipsTheChatQueue(t *testing.T) {
	emu := newEmulator(t)
	release := make(chan struct{})
	newPipeline(t, emu, "", func(p *pipeline) {
		p.rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error {
			select { // a slow handler holds the user's chat
			case <-release:
			case <-ctx.Done():
			}
			return nil
		})
		p.rt.On(bot.KindPreCheckout, func(ctx context.Context, r *bot.Request) error {
			return p.out.AnswerPreCheckout(ctx, r.PreCheckoutID, true, "")
		})
	})
	t.Cleanup(func() { close(release) }) // before the pipeline stops (cleanups run last-first)
	u := bottest.User{ID: 4242, FirstName: "Pay", LanguageCode: "en"}
	emu.SendText(bottest.PrivateChat(u), u, "a slow request")
	time.Sleep(100 * time.Millisecond) // the slow handler has the chat now
	emu.SendPreCheckout(u, "payload", "XTR", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := emu.WaitFor(ctx, func(e bottest.Event) bool { return e.Method == "answerPreCheckoutQuery" && e.OK() }); err != nil {
		t.Fatalf("the checkout waited behind the busy chat: %v", err)
	}
}
