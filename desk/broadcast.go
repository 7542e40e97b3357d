package desk

import (
	"context"
	"errors"
	"fmt"

	"github.com/valex-ai/valex"
)

// Broadcasts: a notice runs in its own goroutine so the admin's chat stays
// free; every user's delivery is recorded (delivered, blocked, failed,
// skipped), so a broadcast cut short by a stop resumes where it was and
// the admin gets the totals.

// Broadcast sends a recorded notice in the background and reports its
// totals to reportTo (0 = nobody).
func (s *Service) Broadcast(ctx context.Context, n valex.Notice, reportTo int64) {
	s.broadcasts.Add(1)
	go func() {
		defer s.broadcasts.Done()
		done, err := s.broadcast(ctx, n)
		if err != nil {
			s.Log.Error().Err(err).Uint64("notice_id", n.ID).Msg("broadcast stopped")
			return
		}
		s.Log.Info().Uint64("notice_id", n.ID).Str("kind", string(n.Kind)).
			Int("delivered", done.Totals[valex.DeliveryDelivered]).Int("blocked", done.Totals[valex.DeliveryBlocked]).
			Int("failed", done.Totals[valex.DeliveryFailed]).Int("skipped", done.Totals[valex.DeliverySkipped]).Msg("broadcast finished")
		if reportTo != 0 {
			s.Notify.NoticeReport(ctx, reportTo, done)
		}
	}()
}

// Wait blocks until the broadcasts in flight have finished (or stopped
// with their context).
func (s *Service) Wait() { s.broadcasts.Wait() }

// ResumeBroadcasts restarts the broadcasts a stop interrupted; users who
// already have their delivery recorded are skipped (a failed one is tried
// again). The admin who started each gets the totals.
func (s *Service) ResumeBroadcasts(ctx context.Context) error {
	ns, err := s.Store.UnfinishedNotices()
	if err != nil {
		return err
	}
	for _, n := range ns {
		s.Broadcast(ctx, n, n.CreatedBy)
	}
	return nil
}

// broadcast delivers a notice to its audience and records each delivery.
func (s *Service) broadcast(ctx context.Context, n valex.Notice) (valex.Notice, error) {
	audience, err := s.Store.Audience()
	if err != nil {
		return n, err
	}
	done, err := s.Store.DeliveredTo(n.ID, valex.DeliveryDelivered, valex.DeliveryBlocked, valex.DeliverySkipped)
	if err != nil {
		return n, err
	}
	if len(n.UserIDs) > 0 {
		// A notice for some users: those still registered get it, the
		// others are recorded as not reached.
		lang := map[int64]string{}
		for _, u := range audience {
			lang[u.ID] = u.Language
		}
		audience = audience[:0]
		for _, id := range n.UserIDs {
			l, ok := lang[id]
			if !ok {
				if !done[id] {
					if err := s.record(n, id, valex.DeliveryFailed); err != nil {
						return n, err
					}
				}
				continue
			}
			audience = append(audience, valex.User{ID: id, Language: l})
		}
	}
	for _, u := range audience {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("notice %d: %w", n.ID, err)
		}
		if done[u.ID] {
			continue
		}
		status, err := s.deliver(ctx, n, u)
		if err != nil {
			return n, err
		}
		if err := s.record(n, u.ID, status); err != nil {
			return n, err
		}
	}
	return s.Store.FinishNotice(n.ID, s.Clock.Now())
}

// deliver sends one user their notice. Marketing is sent only if the user
// consents at this very moment. An error return is for a stop; delivery
// problems are a status.
func (s *Service) deliver(ctx context.Context, n valex.Notice, u valex.User) (valex.DeliveryStatus, error) {
	if n.Kind == valex.NoticeMarketing {
		st, err := s.Store.ConsentState(u.ID)
		if err != nil {
			return "", err
		}
		if !valex.CanSendMarketing(st) {
			return valex.DeliverySkipped, nil
		}
	}
	return s.Notify.Notice(ctx, n, u)
}

// record keeps what became of a notice for one user. A user without an
// account (never registered, or erased while the broadcast ran) gets no
// record: the store refuses to write anything keyed by them.
func (s *Service) record(n valex.Notice, userID int64, st valex.DeliveryStatus) error {
	err := s.Store.RecordDelivery(valex.Delivery{NoticeID: n.ID, Kind: n.Kind, UserID: userID, Status: st, At: s.Clock.Now()})
	if errors.Is(err, valex.ErrNotFound) {
		return nil
	}
	return err
}

// RetryBreaches gives a user who had blocked the bot when a breach notice
// went out that notice now that they are back, and records the delivery.
func (s *Service) RetryBreaches(ctx context.Context, u valex.User) {
	ns, err := s.Store.UndeliveredBreaches(u.ID)
	if err != nil || len(ns) == 0 {
		return
	}
	for _, n := range ns {
		status, err := s.Notify.Notice(ctx, n, u)
		if err != nil {
			return
		}
		if err := s.record(n, u.ID, status); err != nil {
			s.Log.Warn().Err(err).Uint64("notice_id", n.ID).Msg("record a retried breach notice")
		}
	}
}
