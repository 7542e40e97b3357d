package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/valex-ai/valex"
)

// InboxPruner is the part of the store that forgets old handled update ids.
type InboxPruner interface {
	InboxPruneHandled(before time.Time) (int, error)
}

// HandledKeep is how long handled update ids are remembered. Telegram keeps
// an unconfirmed update for 24 hours, so a week is well past any re-delivery.
const HandledKeep = 7 * 24 * time.Hour

// InboxPrune drops handled-update records older than HandledKeep.
func InboxPrune(db InboxPruner, clock valex.Clock) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		n, err := db.InboxPruneHandled(clock.Now().Add(-HandledKeep))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("pruned %d handled updates", n), nil
	}
}
