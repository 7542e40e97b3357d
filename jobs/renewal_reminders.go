package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/valex-ai/valex"
)

// RenewalStore finds subscriptions about to end and records each reminder.
type RenewalStore interface {
	RenewalsDue(now time.Time, window time.Duration, fn func(valex.Wallet) error) error
	ClaimRenewalReminder(userID int64, ends time.Time) (bool, error)
}

// RenewalNotifier tells a user their subscription ends soon.
type RenewalNotifier func(ctx context.Context, w valex.Wallet) error

// RenewalWindow is how long before a subscription ends its user is told.
const RenewalWindow = 3 * 24 * time.Hour

// RenewalReminders tells each subscriber once, 3 days before the period
// ends, that it renews (or, cancelled, that it ends). The claim is stored
// before the message goes out, so a restart never repeats it; a message
// that fails is not retried (the user can see /subscription).
func RenewalReminders(db RenewalStore, notify RenewalNotifier, clock valex.Clock) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		sent := 0
		err := db.RenewalsDue(clock.Now(), RenewalWindow, func(w valex.Wallet) error {
			ok, err := db.ClaimRenewalReminder(w.UserID, w.PlanEnds)
			if err != nil || !ok {
				return err
			}
			if err := notify(ctx, w); err != nil {
				return nil // told already or not at all: never twice
			}
			sent++
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("renewal reminders: %w", err)
		}
		return fmt.Sprintf("sent %d renewal reminders", sent), nil
	}
}
