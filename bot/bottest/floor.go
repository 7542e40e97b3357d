package bottest

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// EchoFloor is the benchmark floor: the bare tgbotapi echo loop from the
// library's README, made concurrent the fastest simple way — one getUpdates
// loop feeding `workers` goroutines that each answer with sendMessage — with
// no storage, ordering, pacing or retries. It returns after answering n
// updates. The Valex pipeline is measured against it in `make bench`, with
// the same number of chats handled at once. With reply set, every answer is
// that HTML text (the bytes Valex sends for the same update) instead of the
// echo, so both sides send and get back the same amount.
func EchoFloor(ctx context.Context, apiURL, token string, n, workers int, reply string) error {
	api, err := tgbotapi.NewBotAPIWithClient(token, apiURL+"/bot%s/%s", &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan tgbotapi.Chattable, workers)
	var answered atomic.Int64
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range jobs {
				if _, err := api.Send(msg); err != nil {
					cancel(err)
				}
				if answered.Add(1) == int64(n) {
					cancel(nil)
				}
			}
		}()
	}
	offset, queued := 0, 0
	for queued < n && ctx.Err() == nil {
		updates, err := api.GetUpdates(tgbotapi.UpdateConfig{Offset: offset, Limit: 100, Timeout: 1})
		if err != nil {
			cancel(err)
			break
		}
		for _, u := range updates {
			offset = u.UpdateID + 1
			if u.Message != nil {
				msg := tgbotapi.NewMessage(u.Message.Chat.ID, u.Message.Text)
				if reply != "" {
					msg.Text, msg.ParseMode = reply, tgbotapi.ModeHTML
				}
				jobs <- msg
				queued++
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}
