package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valex-ai/valex"
)

// InactiveUsers is the part of the store the inactivity job reads and
// writes.
type InactiveUsers interface {
	// InactiveSince calls fn for every user last active before `before`.
	InactiveSince(before time.Time, fn func(id int64) error) error
	// InactiveStatus returns a user's last activity, the last inactivity
	// notice (zero if none), their language and whether a legal hold
	// stands; a missing user wraps valex.ErrNotFound.
	InactiveStatus(userID int64) (lastActive, noticeAt time.Time, lang string, held bool, err error)
	SetInactiveNotice(userID int64, at time.Time) error
	// PruneInactiveNotices forgets the notices of users gone or back.
	PruneInactiveNotices() (int, error)
}

// InactiveNotifier tells a user, in their language, that their account
// will be deleted after deleteAfter unless they write to the bot. A nil
// error means the notice counts as given.
type InactiveNotifier func(ctx context.Context, userID int64, lang string, deleteAfter time.Time) error

// AccountEraser erases an account the way /forget does.
type AccountEraser func(ctx context.Context, userID int64, at time.Time) error

// InactiveAccounts enforces the inactivity rule (policy section 8): a user
// inactive for longer than policy.InactiveAfter is notified once; one still
// inactive policy.InactiveGrace after the notice is erased. Any activity
// after the notice (TouchUser) cancels it, and the next inactive spell
// starts over with a new notice. Users under a legal hold are skipped. A
// failure for one user does not stop the others; the run then fails, so it
// is retried at the next start-up.
func InactiveAccounts(db InactiveUsers, notify InactiveNotifier, erase AccountEraser, policy valex.RetentionPolicy, clock valex.Clock) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		now := clock.Now()
		def := valex.DefaultRetentionPolicy()
		after := orDefault(policy.InactiveAfter, def.InactiveAfter)
		grace := orDefault(policy.InactiveGrace, def.InactiveGrace)
		// A day of slack: AddDate backwards is not the exact inverse of
		// Period.From at month ends; the policy decides each user exactly.
		before := now.UTC().AddDate(-after.Years, -after.Months, -after.Days+1)
		var visited, notified, erased, held, failed int
		var firstErr error
		fail := func(err error) {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
		err := db.InactiveSince(before, func(id int64) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			visited++
			lastActive, noticeAt, lang, isHeld, err := db.InactiveStatus(id)
			if errors.Is(err, valex.ErrNotFound) {
				return nil // erased since the walk started
			}
			if err != nil {
				fail(err)
				return nil
			}
			switch {
			case isHeld:
				held++
			case policy.InactiveDeleteDue(lastActive, noticeAt, now):
				if err := erase(ctx, id, now); err != nil {
					fail(fmt.Errorf("erase inactive user %d: %w", id, err))
					return nil
				}
				erased++
			case policy.InactiveNoticeDue(lastActive, noticeAt, now):
				// Sent first, recorded after: a notice that failed is
				// retried, and nobody is deleted without one.
				if err := notify(ctx, id, lang, grace.From(now)); err != nil {
					fail(fmt.Errorf("notify inactive user %d: %w", id, err))
					return nil
				}
				if err := db.SetInactiveNotice(id, now); err != nil {
					fail(err)
					return nil
				}
				notified++
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("walk inactive users: %w", err)
		}
		pruned, err := db.PruneInactiveNotices()
		if err != nil {
			fail(err)
		}
		if firstErr != nil {
			return "", fmt.Errorf("inactive accounts: %d of %d users failed: %w", failed, visited, firstErr)
		}
		return fmt.Sprintf("visited %d inactive users: notified %d, erased %d, skipped %d under a legal hold, forgot %d notices", visited, notified, erased, held, pruned), nil
	}
}

// orDefault is the policy's own rule for an unset or negative period.
func orDefault(p, def valex.Period) valex.Period {
	if p.Years < 0 || p.Months < 0 || p.Days < 0 || p == (valex.Period{}) {
		return def
	}
	return p
}
