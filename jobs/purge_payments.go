package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/valex-ai/valex"
)

// PaymentPurger deletes the payment records deletable says may go.
type PaymentPurger interface {
	PurgePayments(deletable func(paidAt time.Time) bool) (int, error)
}

// PurgePayments deletes payment records once the legal minimum
// (policy.PaymentRecords, at least 5 years) has passed; never before, not
// even for an erased account. Idempotent.
func PurgePayments(db PaymentPurger, policy valex.RetentionPolicy, clock valex.Clock) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		now := clock.Now()
		n, err := db.PurgePayments(func(paidAt time.Time) bool { return policy.PaymentDeletable(paidAt, now) })
		if err != nil {
			return "", fmt.Errorf("purge payments: %w", err)
		}
		return fmt.Sprintf("deleted %d payment records older than %s", n, policy.Defaults().PaymentRecords), nil
	}
}
