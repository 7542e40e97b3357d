package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/valex-ai/valex"
)

// TurnPurger is the part of the store that deletes expired conversation
// turns through the turn-time index, oldest first, stopping at the first
// turn for which expired is false.
type TurnPurger interface {
	PurgeTurns(expired func(writtenAt time.Time) bool) (visited, purged int, err error)
}

// PurgeConversations deletes AI conversation turns (voice transcripts are
// turns too) older than policy.Conversations. With no period configured,
// the default, conversations are kept until the user deletes them or the
// account, and the job reads nothing. Idempotent.
func PurgeConversations(db TurnPurger, policy valex.RetentionPolicy, clock valex.Clock) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		if policy.ConversationsKept() {
			return "conversations are kept until the user deletes them: nothing to purge", nil
		}
		now := clock.Now()
		visited, purged, err := db.PurgeTurns(func(at time.Time) bool { return policy.ConversationExpired(at, now) })
		if err != nil {
			return "", fmt.Errorf("purge conversations: %w", err)
		}
		return fmt.Sprintf("visited %d expired turns: deleted %d older than %s", visited, purged, policy.Defaults().Conversations), nil
	}
}
