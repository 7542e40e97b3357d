package valex

import "testing"

func TestNewConversationNeverReusesANumber(t *testing.T) {
	cases := []struct {
		name string
		s    AISettings
		want uint64
	}{
		{"fresh", AISettings{}, 2}, // conversation 1 is the current one
		{"before LastConversation existed", AISettings{Conversation: 5}, 6},
		{"an old one resumed", AISettings{Conversation: 2, LastConversation: 9}, 10},
		{"a topic holds the highest", AISettings{Conversation: 3, LastConversation: 3, Topics: map[int]uint64{12: 8}}, 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			if got := s.NewConversation(); got != tc.want || s.LastConversation != tc.want {
				t.Fatalf("NewConversation = %d (last %d), want %d", got, s.LastConversation, tc.want)
			}
		})
	}
}

func TestTopicsAreBoundedAndForgotten(t *testing.T) {
	var s AISettings
	for thread := 1; thread <= MaxTopics+5; thread++ {
		s.SetTopic(thread*10, s.NewConversation())
	}
	if len(s.Topics) != MaxTopics {
		t.Fatalf("%d topics kept, want %d", len(s.Topics), MaxTopics)
	}
	if _, ok := s.TopicConversation(10); ok {
		t.Fatal("the topic with the oldest conversation was kept")
	}
	last := (MaxTopics + 5) * 10
	conv, ok := s.TopicConversation(last)
	if !ok || s.TopicOf(conv) != last {
		t.Fatalf("newest topic: %d %v", conv, ok)
	}
	s.ForgetConversation(conv)
	if _, ok := s.TopicConversation(last); ok || s.TopicOf(conv) != 0 {
		t.Fatal("a deleted conversation stayed with its topic")
	}
}
