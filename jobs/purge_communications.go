package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/valex-ai/valex"
)

// CommunicationPurger is the part of the store that erases the requester's
// data from closed tickets (support, feedback, rights requests) whose
// retention has run out. It visits the closed tickets oldest first and
// stops at the first for which expired is false; tickets of a user under a
// legal hold are counted as held and kept.
type CommunicationPurger interface {
	PurgeClosedTickets(at time.Time, expired func(closedAt time.Time) bool) (visited, purged, held int, err error)
}

// PurgeCommunications erases closed tickets older than the policy's
// Communications period (policy section 8: "up to 1 year, unless required
// for dispute resolution"). The audit trails stay, each ending with a
// "purged" entry. Idempotent: a purged ticket leaves the index.
func PurgeCommunications(db CommunicationPurger, policy valex.RetentionPolicy, clock valex.Clock) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		now := clock.Now()
		visited, purged, held, err := db.PurgeClosedTickets(now, func(closedAt time.Time) bool {
			return policy.CommunicationExpired(closedAt, false, now) // holds are checked by the store
		})
		if err != nil {
			return "", fmt.Errorf("purge communications: %w", err)
		}
		return fmt.Sprintf("visited %d expired tickets: purged %d, kept %d under a legal hold", visited, purged, held), nil
	}
}
