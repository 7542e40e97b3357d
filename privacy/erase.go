// Package privacy holds the privacy workflows that handlers and jobs both
// call. Erasure lives here, not in a Telegram handler: /forget, staff
// completing an erasure request, the inactivity job and the start-up resume
// all go through Eraser.
package privacy

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
)

// WorkStopper cancels a user's running and queued AI work and waits for it
// to stop, so nothing it would still write lands after the erasure.
type WorkStopper interface {
	StopUser(ctx context.Context, userID int64) (stopped int)
}

// EraseStore is the part of the store erasure needs.
type EraseStore interface {
	MarkErasure(userID int64, ticket uint64, at time.Time) error
	EraseUser(userID int64, ticket uint64, at time.Time, extra map[string]int) (map[string]int, error)
	PendingErasures() ([]valex.PendingErasure, error)
}

// KeyDeleter destroys a user's data key.
type KeyDeleter interface {
	Delete(userID int64) error
}

// Eraser erases accounts. Work and Compact may be nil.
type Eraser struct {
	Work  WorkStopper
	Store EraseStore
	Keys  KeyDeleter
	// Compact is asked for a compaction after an erasure, so the freed
	// pages holding the user's (already unreadable) records leave the file.
	Compact func()
	Log     zerolog.Logger
}

// Erase erases a user, in this order: stop their AI work and wait for it;
// write the erasure to the journal; delete their data key (from this
// instant every copy of their data, backups included, is unreadable);
// delete every record keyed by them. It is idempotent, and resumable: if it
// stops half-way, Resume (run at start) finishes it with the same end
// state. ticket is the erasure request it completes.
func (e *Eraser) Erase(ctx context.Context, userID int64, ticket uint64, at time.Time) (map[string]int, error) {
	stopped := 0
	if e.Work != nil {
		stopped = e.Work.StopUser(ctx, userID)
	}
	if err := e.Store.MarkErasure(userID, ticket, at); err != nil {
		return nil, err
	}
	counts, err := e.finish(userID, ticket, at)
	if err != nil {
		return nil, err
	}
	e.Log.Info().Uint64("ticket_id", ticket).Int("ai_jobs_stopped", stopped).Msg("account erased")
	return counts, nil
}

func (e *Eraser) finish(userID int64, ticket uint64, at time.Time) (map[string]int, error) {
	if err := e.Keys.Delete(userID); err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	counts, err := e.Store.EraseUser(userID, ticket, at, nil)
	if err != nil {
		return nil, err
	}
	if e.Compact != nil {
		e.Compact()
	}
	return counts, nil
}

// Resume finishes the erasures the journal holds: a stop between writing
// the journal and deleting the records. It returns how many it finished.
func (e *Eraser) Resume() (int, error) {
	pending, err := e.Store.PendingErasures()
	if err != nil {
		return 0, err
	}
	for _, p := range pending {
		if _, err := e.finish(p.UserID, p.Ticket, p.At); err != nil {
			return 0, fmt.Errorf("resume erasure: %w", err)
		}
		e.Log.Info().Uint64("ticket_id", p.Ticket).Msg("interrupted erasure finished")
	}
	return len(pending), nil
}
