package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/valex-ai/valex"
)

// DocumentPurger is the part of the store that deletes pending documents
// read before a time.
type DocumentPurger interface {
	PurgeDocuments(before time.Time) (int, error)
}

// PurgeDocuments deletes the documents users sent without a question once
// they have waited longer than keep: the bot no longer uses them, so they
// are not kept either. Idempotent.
func PurgeDocuments(db DocumentPurger, keep time.Duration, clock valex.Clock) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		n, err := db.PurgeDocuments(clock.Now().Add(-keep))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("deleted %d pending documents older than %s", n, keep), nil
	}
}
