package valex

import "time"

// Roles of a conversation turn, as the AI providers name them.
const (
	TurnUser      = "user"
	TurnAssistant = "assistant"
)

// Turn is one message of a conversation with an AI model. Text is personal
// data: the store keeps it sealed by the per-user codec.
type Turn struct {
	Role   string // TurnUser or TurnAssistant
	Text   string
	Tokens int // estimated when the turn was stored; budgets add these up
	At     time.Time
}

// AISettings are a user's choices for the AI aggregator.
type AISettings struct {
	Model        string // chosen chat model id; "" = the plan's default
	Mode         string // system-prompt preset id; "" = the first configured
	Voice        bool   // answers also come as voice messages
	Conversation uint64 // current conversation; 0 until the first turn
	TrimNotified uint64 // conversation whose trimming the user was told about
	// LastConversation is the highest conversation number handed out
	// (NewConversation): a resumed old conversation is current, and the
	// next new one must not reuse a number.
	LastConversation uint64
	// Topics maps a topic of the user's private chat with the bot
	// (message_thread_id) to its conversation: each topic is its own
	// conversation. Thread ids are not personal text.
	Topics map[int]uint64
}

// MaxTopics bounds AISettings.Topics: past it the topic with the oldest
// conversation is forgotten (its turns stay, listed by /history).
const MaxTopics = 200

// CurrentConversation is the conversation outside topics: conversations
// are numbered from 1.
func (s AISettings) CurrentConversation() uint64 { return max(s.Conversation, 1) }

// NewConversation hands out a conversation number never used before.
func (s *AISettings) NewConversation() uint64 {
	n := max(s.LastConversation, s.CurrentConversation())
	for _, c := range s.Topics {
		n = max(n, c)
	}
	n++
	s.LastConversation = n
	return n
}

// TopicConversation is the conversation of a topic, false when the topic
// has none yet.
func (s AISettings) TopicConversation(thread int) (uint64, bool) {
	c, ok := s.Topics[thread]
	return c, ok
}

// SetTopic makes conv the conversation of a topic.
func (s *AISettings) SetTopic(thread int, conv uint64) {
	if s.Topics == nil {
		s.Topics = make(map[int]uint64)
	}
	s.Topics[thread] = conv
	for len(s.Topics) > MaxTopics {
		oldest, low := 0, uint64(0)
		for t, c := range s.Topics {
			if t != thread && (low == 0 || c < low) {
				oldest, low = t, c
			}
		}
		delete(s.Topics, oldest)
	}
}

// TopicOf is the topic whose conversation conv is, 0 for none.
func (s AISettings) TopicOf(conv uint64) int {
	for t, c := range s.Topics {
		if c == conv {
			return t
		}
	}
	return 0
}

// ForgetConversation drops conv from the topics that had it (it was
// deleted): such a topic starts a new conversation with its next message.
func (s *AISettings) ForgetConversation(conv uint64) {
	for t, c := range s.Topics {
		if c == conv {
			delete(s.Topics, t)
		}
	}
}

// AIUsage is one successful AI call, as the usage ledger keeps it. A failed
// call is never recorded: a failed request is not charged.
type AIUsage struct {
	UserID       int64
	Model        string
	Capability   string // chat, vision, image, transcribe, speech
	InputTokens  int
	OutputTokens int
	Images       int
	AudioSeconds float64
	Chars        int
	Cost         int64 // micro-credits
	At           time.Time
}

// UsageTotal is a user's usage of one capability over a period.
type UsageTotal struct {
	Capability   string
	Calls        int64
	InputTokens  int64
	OutputTokens int64
	Images       int64
	AudioSeconds float64
	Chars        int64
	Cost         int64 // micro-credits
}
