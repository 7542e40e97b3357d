package bot

import "testing"

func TestParseUpdate(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		kind    Kind
		command string
		args    string
		chat    int64
	}{
		{"command", `{"update_id":1,"message":{"message_id":5,"chat":{"id":7,"type":"private"},"from":{"id":7,"language_code":"ru"},"text":"/Start hello","entities":[{"type":"bot_command","offset":0,"length":6}]}}`, KindCommand, "start", "hello", 7},
		{"command for us in group", `{"update_id":2,"message":{"message_id":5,"chat":{"id":-9,"type":"group"},"from":{"id":7},"text":"/help@valex_bot","entities":[{"type":"bot_command","offset":0,"length":15}]}}`, KindCommand, "help", "", -9},
		{"command for another bot", `{"update_id":3,"message":{"message_id":5,"chat":{"id":-9,"type":"group"},"from":{"id":7},"text":"/help@other_bot","entities":[{"type":"bot_command","offset":0,"length":15}]}}`, KindIgnored, "", "", -9},
		{"text", `{"update_id":4,"message":{"message_id":5,"chat":{"id":7,"type":"private"},"from":{"id":7},"text":"hi"}}`, KindText, "", "", 7},
		{"callback", `{"update_id":5,"callback_query":{"id":"cb1","from":{"id":7},"data":"x.y","message":{"message_id":9,"chat":{"id":7,"type":"private"}}}}`, KindCallback, "", "", 7},
		{"sticker", `{"update_id":6,"message":{"message_id":5,"chat":{"id":7,"type":"private"},"from":{"id":7},"sticker":{"file_id":"s"}}}`, KindUnsupported, "", "", 7},
		{"edited message", `{"update_id":7,"edited_message":{"message_id":5,"chat":{"id":7,"type":"private"},"from":{"id":7},"text":"x"}}`, KindUnsupported, "", "", 7},
		{"contact", `{"update_id":8,"message":{"message_id":5,"chat":{"id":7,"type":"private"},"from":{"id":7},"contact":{"phone_number":"+1","first_name":"a","user_id":7}}}`, KindContact, "", "", 7},
		{"joined group", `{"update_id":9,"message":{"message_id":5,"chat":{"id":-9,"type":"group"},"from":{"id":7},"new_chat_members":[{"id":1}]}}`, KindIgnored, "", "", -9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := parseUpdate([]byte(tc.raw), "valex_bot")
			if err != nil {
				t.Fatal(err)
			}
			if u.Kind != tc.kind || u.Command != tc.command || u.Args != tc.args || u.ChatID != tc.chat {
				t.Fatalf("got kind=%d command=%q args=%q chat=%d", u.Kind, u.Command, u.Args, u.ChatID)
			}
		})
	}
	if _, err := parseUpdate([]byte(`{"update_id":`), "valex_bot"); err == nil {
		t.Fatal("truncated JSON parsed without error")
	}
}

func TestParseUpdateTopics(t *testing.T) {
	cases := []struct {
		name   string
		raw    string
		kind   Kind
		thread int
	}{
		{"private topic", `{"update_id":1,"message":{"message_id":9,"message_thread_id":5,"is_topic_message":true,"chat":{"id":7,"type":"private"},"from":{"id":7},"text":"hi"}}`, KindText, 5},
		{"general topic", `{"update_id":2,"message":{"message_id":9,"chat":{"id":7,"type":"private"},"from":{"id":7},"text":"hi"}}`, KindText, 0},
		{"reply thread outside topics", `{"update_id":3,"message":{"message_id":9,"message_thread_id":4,"chat":{"id":-9,"type":"supergroup"},"from":{"id":7},"text":"hi"}}`, KindText, 0},
		{"button under a topic message", `{"update_id":4,"callback_query":{"id":"c","from":{"id":7},"data":"x","message":{"message_id":9,"message_thread_id":5,"is_topic_message":true,"chat":{"id":7,"type":"private"}}}}`, KindCallback, 5},
		{"topic created", `{"update_id":5,"message":{"message_id":5,"message_thread_id":5,"is_topic_message":true,"chat":{"id":7,"type":"private"},"from":{"id":7},"forum_topic_created":{"name":"Trip","icon_color":7322096}}}`, KindIgnored, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := parseUpdate([]byte(tc.raw), "valex_bot")
			if err != nil {
				t.Fatal(err)
			}
			if u.Kind != tc.kind || u.ThreadID != tc.thread {
				t.Fatalf("kind=%d thread=%d, want kind=%d thread=%d", u.Kind, u.ThreadID, tc.kind, tc.thread)
			}
		})
	}
}

// stopped_message_generation (Bot API 10.3), which the SDK does not know:
// the chat names the user in a private chat; a "from" wins when present.
func TestParseStopUpdate(t *testing.T) {
	cases := []struct {
		name   string
		raw    string
		user   int64
		draft  int64
		thread int
	}{
		{"as Telegram sends it", `{"update_id":3,"stopped_message_generation":{"chat":{"id":7,"type":"private","first_name":"A"},"draft_id":12}}`, 7, 12, 0},
		{"in a topic", `{"update_id":3,"stopped_message_generation":{"chat":{"id":7,"type":"private"},"message_thread_id":4,"draft_id":1}}`, 7, 1, 4},
		{"with from", `{"update_id":3,"stopped_message_generation":{"chat":{"id":7,"type":"private"},"from":{"id":8},"draft_id":2}}`, 8, 2, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := parseUpdate([]byte(tc.raw), "valex_bot")
			if err != nil {
				t.Fatal(err)
			}
			if u.Kind != KindStop || u.ChatID != 7 || !u.Private() || u.From.ID != tc.user || u.DraftID != tc.draft || u.ThreadID != tc.thread {
				t.Fatalf("got %+v", u)
			}
		})
	}
	// A message that merely mentions the field is a message.
	u, err := parseUpdate([]byte(`{"update_id":4,"message":{"message_id":5,"chat":{"id":7,"type":"private"},"from":{"id":7},"text":"\"stopped_message_generation\""}}`), "valex_bot")
	if err != nil || u.Kind != KindText {
		t.Fatalf("got %+v, %v", u, err)
	}
}
