package bottest

import (
	"context"
	"net/http"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// EchoFloor is the benchmark floor: the bare tgbotapi echo loop from the
// library's README (getUpdates, then sendMessage for each text), with no
// storage, ordering, pacing or retries. It returns after answering n updates.
// The Valex pipeline is measured against it in `make bench`.
func EchoFloor(ctx context.Context, apiURL, token string, n int) error {
	api, err := tgbotapi.NewBotAPIWithClient(token, apiURL+"/bot%s/%s", &http.Client{})
	if err != nil {
		return err
	}
	offset, answered := 0, 0
	for answered < n {
		if err := ctx.Err(); err != nil {
			return err
		}
		updates, err := api.GetUpdates(tgbotapi.UpdateConfig{Offset: offset, Limit: 100, Timeout: 1})
		if err != nil {
			return err
		}
		for _, u := range updates {
			offset = u.UpdateID + 1
			if u.Message == nil {
				continue
			}
			if _, err := api.Send(tgbotapi.NewMessage(u.Message.Chat.ID, u.Message.Text)); err != nil {
				return err
			}
			answered++
		}
	}
	return nil
}
