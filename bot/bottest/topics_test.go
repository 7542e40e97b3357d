package bottest_test

import (
	"encoding/json"
	"strconv"
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/valex-ai/valex/bot/bottest"
)

// Topics in a private chat have Telegram's shapes: the forum_topic_created
// service message whose id is the thread id, messages with
// message_thread_id and is_topic_message, a bot's send into the topic
// recorded with its thread, and an unknown thread refused.
func TestTopicsInAPrivateChat(t *testing.T) {
	s, api := start(t, bottest.Options{Topics: true})
	resp, err := api.MakeRequest("getMe", nil)
	if err != nil {
		t.Fatal(err)
	}
	var me struct {
		HasTopics bool `json:"has_topics_enabled"`
	}
	if err := json.Unmarshal(resp.Result, &me); err != nil || !me.HasTopics {
		t.Fatalf("getMe = %s", resp.Result)
	}

	topic := s.CreateTopic(chat, ann, "Trip")
	s.SendText(topic, ann, "in the topic")
	resp, err = api.MakeRequest("getUpdates", tgbotapi.Params{"timeout": "0"})
	if err != nil {
		t.Fatal(err)
	}
	var ups []struct {
		Message struct {
			MessageID int  `json:"message_id"`
			ThreadID  int  `json:"message_thread_id"`
			IsTopic   bool `json:"is_topic_message"`
			Text      string
			Created   *struct {
				Name      string `json:"name"`
				IconColor int    `json:"icon_color"`
			} `json:"forum_topic_created"`
		} `json:"message"`
	}
	if err := json.Unmarshal(resp.Result, &ups); err != nil || len(ups) != 2 {
		t.Fatalf("updates = %s, %v", resp.Result, err)
	}
	created, msg := ups[0].Message, ups[1].Message
	if created.Created == nil || created.Created.Name != "Trip" || created.ThreadID != created.MessageID || !created.IsTopic || topic.Thread != created.MessageID {
		t.Fatalf("service message = %+v, topic %d", created, topic.Thread)
	}
	if msg.ThreadID != topic.Thread || !msg.IsTopic {
		t.Fatalf("topic message = %+v", msg)
	}

	send := func(thread int) (*tgbotapi.APIResponse, error) {
		return api.MakeRequest("sendMessage", tgbotapi.Params{"chat_id": strconv.FormatInt(ann.ID, 10), "text": "answer", "message_thread_id": strconv.Itoa(thread)})
	}
	resp, err = send(topic.Thread)
	if err != nil {
		t.Fatal(err)
	}
	var sent struct {
		ThreadID int  `json:"message_thread_id"`
		IsTopic  bool `json:"is_topic_message"`
	}
	if err := json.Unmarshal(resp.Result, &sent); err != nil || sent.ThreadID != topic.Thread || !sent.IsTopic {
		t.Fatalf("sent = %s", resp.Result)
	}
	evs := s.EventsFor(ann.ID)
	if e := evs[len(evs)-1]; e.Method != "sendMessage" || e.ThreadID != topic.Thread {
		t.Fatalf("event = %s thread %d", e, e.ThreadID)
	}
	msgs := s.Messages(ann.ID)
	if m := msgs[len(msgs)-1]; m.Thread != topic.Thread {
		t.Fatalf("message shown in thread %d", m.Thread)
	}

	_, err = send(topic.Thread + 1000)
	if e := apiError(t, err); e.Code != 400 || e.Message != "Bad Request: message thread not found" {
		t.Fatalf("unknown thread: %d %q", e.Code, e.Message)
	}
	_, err = api.MakeRequest("sendChatAction", tgbotapi.Params{"chat_id": strconv.FormatInt(ann.ID, 10), "action": "typing", "message_thread_id": "999"})
	if e := apiError(t, err); e.Code != 400 {
		t.Fatalf("chat action in an unknown thread: %v", err)
	}
}
