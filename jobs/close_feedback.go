package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/valex-ai/valex"
)

// FeedbackTickets is the part of the store the feedback job reads and
// writes: the open-ticket index (bookkeeping only) and a ticket update that
// records its audit entries in the same transaction.
type FeedbackTickets interface {
	OpenTickets(kind valex.RequestKind, status valex.RequestStatus, offset, limit int) (page []valex.Request, total int, err error)
	UpdateTicket(id uint64, actor int64, at time.Time, fn func(*valex.Request) ([]valex.AuditEntry, error)) (valex.Request, error)
}

// errStaysOpen leaves a ticket unchanged from inside UpdateTicket.
var errStaysOpen = errors.New("feedback ticket stays open")

// CloseFeedback closes open feedback and review tickets on their own
// (policy.FeedbackCloseDue): as soon as staff have answered, or once
// policy.FeedbackClose has passed since the last message. The ticket goes
// to done with a system entry (actor 0) in its history and audit trail; the
// user is not messaged. Closed, it falls under the communications purge.
// Tickets on hold stay open. It reads the open-ticket index, so a run costs
// the open feedback tickets, not every ticket. Idempotent.
func CloseFeedback(db FeedbackTickets, policy valex.RetentionPolicy, clock valex.Clock) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		now := clock.Now()
		open, _, err := db.OpenTickets(valex.KindFeedback, "", 0, math.MaxInt)
		if err != nil {
			return "", fmt.Errorf("close feedback: %w", err)
		}
		var answered, quiet, failed int
		var firstErr error
		for _, t := range open {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			var why valex.FeedbackClose
			_, err := db.UpdateTicket(t.ID, 0, now, func(r *valex.Request) ([]valex.AuditEntry, error) {
				why = policy.FeedbackCloseDue(*r, now)
				if why == valex.FeedbackStaysOpen {
					return nil, errStaysOpen
				}
				note := "closed automatically: answered"
				if why == valex.FeedbackQuiet {
					note = "closed automatically: no new message for " + policy.Defaults().FeedbackClose.String()
				}
				return nil, r.Transition(valex.StatusDone, 0, note, now)
			})
			switch {
			case errors.Is(err, errStaysOpen), errors.Is(err, valex.ErrNotFound):
			case err != nil:
				failed++
				if firstErr == nil {
					firstErr = err
				}
			case why == valex.FeedbackAnswered:
				answered++
			default:
				quiet++
			}
		}
		if firstErr != nil {
			return "", fmt.Errorf("close feedback: %d of %d tickets failed: %w", failed, len(open), firstErr)
		}
		return fmt.Sprintf("visited %d open feedback tickets: closed %d answered, %d unanswered for %s",
			len(open), answered, quiet, policy.Defaults().FeedbackClose), nil
	}
}
