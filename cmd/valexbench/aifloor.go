package main

// The floor of the AI chat load run: a bare streaming bot, the fastest
// simple way — tgbotapi long polling getUpdates, one goroutine per chat
// answering that chat's messages in order, go-openai streaming each answer
// and sending it as one message. Like valex it sends the chat's earlier
// messages with each question (the last floorHistory, held in memory): the
// provider gets the same conversation from both. No storage, consent,
// metering, pacing or retries. It is written here, in the benchmark, and is the one
// place besides bot/ and ai/ that imports these two SDKs: it is the bare
// loop Valex is measured against, not part of Valex.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	openai "github.com/sashabaranov/go-openai"
)

// aiFloorChild runs the floor: args are the Bot API URL, the token, the
// OpenAI-compatible base URL, and how many answers to give before it idles.
// It stays up until its stdin closes, so it is measured like the valex
// child.
func aiFloorChild(args []string) error {
	if len(args) != 4 {
		return errors.New("usage: aifloor BOT_URL TOKEN OPENAI_URL N")
	}
	n, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	if err := aiFloor(context.Background(), args[0], args[1], args[2], n); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// floorHistory is how many earlier messages the floor sends with each
// question: valex's default ai.history_turns. Like valex's default mode, a
// system prompt goes first.
const (
	floorHistory = 40
	floorPrompt  = "You are a helpful, concise assistant. Answer in the language the user writes in. Use Markdown for structure and code."
)

func aiFloor(ctx context.Context, botURL, token, aiURL string, n int) error {
	api, err := tgbotapi.NewBotAPIWithClient(token, botURL+"/bot%s/%s", &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}})
	if err != nil {
		return err
	}
	oc := openai.DefaultConfig("sk-floor")
	oc.BaseURL = aiURL
	oc.HTTPClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024}}
	llm := openai.NewClientWithConfig(oc)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var answered atomic.Int64
	var wg sync.WaitGroup
	// answer is called by one chat's goroutine at a time, with that chat's
	// history.
	answer := func(chatID int64, history *[]openai.ChatCompletionMessage, text string) error {
		h := *history
		msgs := make([]openai.ChatCompletionMessage, 0, floorHistory+2)
		msgs = append(msgs, openai.ChatCompletionMessage{Role: "system", Content: floorPrompt})
		msgs = append(msgs, h[max(len(h)-floorHistory, 0):]...)
		msgs = append(msgs, openai.ChatCompletionMessage{Role: "user", Content: text})
		stream, err := llm.CreateChatCompletionStream(ctx, openai.ChatCompletionRequest{
			Model: "gpt-4o-mini", Stream: true, MaxCompletionTokens: 4096, Messages: msgs,
		})
		if err != nil {
			return err
		}
		defer stream.Close()
		var out []byte
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			if len(r.Choices) > 0 {
				out = append(out, r.Choices[0].Delta.Content...)
			}
		}
		if _, err := api.Send(tgbotapi.NewMessage(chatID, string(out))); err != nil {
			return err
		}
		*history = append(h[max(len(h)-floorHistory, 0):], openai.ChatCompletionMessage{Role: "user", Content: text},
			openai.ChatCompletionMessage{Role: "assistant", Content: string(out)})
		return nil
	}
	// Each chat's questions wait in a slice; a goroutine per chat drains
	// it while it has any (like a per-chat dispatcher, without the cap).
	var mu sync.Mutex
	queues := map[int64][]string{}
	histories := map[int64][]openai.ChatCompletionMessage{}
	drain := func(chatID int64) {
		defer wg.Done()
		mu.Lock()
		history := histories[chatID]
		mu.Unlock()
		for {
			mu.Lock()
			q := queues[chatID]
			if len(q) == 0 || ctx.Err() != nil {
				delete(queues, chatID)
				histories[chatID] = history
				mu.Unlock()
				return
			}
			text := q[0]
			queues[chatID] = q[1:]
			mu.Unlock()
			if err := answer(chatID, &history, text); err != nil {
				cancel(fmt.Errorf("chat %d: %w", chatID, err))
				return
			}
			if answered.Add(1) == int64(n) {
				cancel(nil)
			}
		}
	}
	offset := 0
	for ctx.Err() == nil {
		updates, err := api.GetUpdates(tgbotapi.UpdateConfig{Offset: offset, Limit: 100, Timeout: 1})
		if err != nil {
			cancel(err)
			break
		}
		for _, u := range updates {
			offset = u.UpdateID + 1
			if u.Message == nil {
				continue
			}
			id := u.Message.Chat.ID
			mu.Lock()
			q, running := queues[id]
			queues[id] = append(q, u.Message.Text)
			mu.Unlock()
			if !running {
				wg.Add(1)
				go drain(id)
			}
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
