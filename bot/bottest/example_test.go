package bottest_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/valex-ai/valex/bot/bottest"
)

// A user writes, the bot (here: tgbotapi driven by hand) answers, and the
// test waits for the answer.
func Example() {
	srv, err := bottest.New(bottest.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	api, err := tgbotapi.NewBotAPIWithClient(srv.Token(), srv.URL()+"/bot%s/%s", &http.Client{})
	if err != nil {
		panic(err)
	}

	user := bottest.User{ID: 42, FirstName: "Ann"}
	srv.SendText(bottest.PrivateChat(user), user, "/start")

	updates, _ := api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
	for _, u := range updates {
		reply := tgbotapi.NewMessage(u.Message.Chat.ID, "Hi, <b>"+u.Message.From.FirstName+"</b>!")
		reply.ParseMode = tgbotapi.ModeHTML
		api.Send(reply)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ev, err := srv.WaitFor(ctx, func(e bottest.Event) bool { return e.Method == "sendMessage" && e.ChatID == 42 })
	fmt.Println(ev.Text, err)
	fmt.Println(srv.Messages(42)[0].Raw)
	// Output:
	// Hi, Ann! <nil>
	// Hi, <b>Ann</b>!
}
