package handlers

import (
	"context"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// Topics in the private chat: when the user has enabled topics in their
// chat with the bot, each topic is its own conversation. The map from topic
// (message_thread_id) to conversation is kept in the user's AI settings, so
// it goes with the account. The General topic, and a chat without topics,
// use the current conversation as before. Groups keep no history at all.

// inTopic reports whether r comes from a topic of the private chat.
func inTopic(r *bot.Request) bool { return r.Private() && r.ThreadID != 0 }

// conversationOf is the conversation r continues without creating one: 0
// (none) for a topic that has no conversation yet.
func conversationOf(s valex.AISettings, r *bot.Request) uint64 {
	if !inTopic(r) {
		return currentConv(s)
	}
	conv, _ := s.TopicConversation(r.ThreadID)
	return conv
}

// conversationFor is the conversation r continues: its topic's, created
// with the topic's first message, or the current one.
func (a *AI) conversationFor(ctx context.Context, r *bot.Request, s valex.AISettings) (uint64, error) {
	if !inTopic(r) {
		return currentConv(s), nil
	}
	if conv, ok := s.TopicConversation(r.ThreadID); ok {
		return conv, nil
	}
	var conv uint64
	err := a.write(ctx, r.From.ID, func() error {
		_, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) {
			c, ok := s.TopicConversation(r.ThreadID)
			if !ok {
				c = s.NewConversation()
				s.SetTopic(r.ThreadID, c)
			}
			conv = c
		})
		return err
	})
	return conv, err
}

// startConversation moves r's topic, or outside topics the user, on to a
// new conversation (/new).
func startConversation(s *valex.AISettings, r *bot.Request) {
	conv := s.NewConversation()
	if inTopic(r) {
		s.SetTopic(r.ThreadID, conv)
		return
	}
	s.Conversation = conv
}
