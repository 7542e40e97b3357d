package desk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/valex-ai/valex"
)

// Broadcasts: a notice runs in its own goroutine so the admin's chat stays
// free. Several workers send at once (the outbox paces them to Telegram's
// limit; the workers only hide the round trip), and the store is written
// in batches, not once per user:
//
//  1. a batch of users is claimed in one transaction ("sending");
//  2. the workers send to them;
//  3. the outcomes (delivered, blocked, failed, skipped) are recorded in
//     one transaction per batch.
//
// A stop ends it safely: users whose message had not left are released
// and sent to when the broadcast resumes at the next start; a claim left
// behind (the message was on its way, or the process died) becomes
// "uncertain" on resume and is not sent again. Nobody gets a notice twice;
// at most the users in flight at the stop may have missed it, and the
// admin's totals count them. After a hard crash (kill -9, power loss)
// every claim not yet replaced by an outcome is uncertain: the messages
// on their way and the outcomes waiting for their batch (Flush's worth),
// who did get it, and the rest of the batch being handed out (fewer than
// Batch users), who did not.

// BroadcastConfig tunes the broadcast sender. Zero values take the defaults.
type BroadcastConfig struct {
	// Workers is how many messages are on their way at once (default 8).
	// The outbox's limit sets the pace; R messages a second at a round
	// trip of T need about R×T workers: 30/s at 40 ms about 2, Telegram's
	// 1,000/s for paid broadcasts about 40.
	Workers int
	// Batch is how many users are claimed in one transaction (default: as
	// many as Workers).
	Batch int
	// RecordBatch is how many outcomes are recorded in one transaction
	// (default 256); Flush is the longest an outcome waits for its batch
	// (default 250 ms): a few commits a second, and little progress to
	// lose in a crash.
	RecordBatch int
	Flush       time.Duration
}

// DefaultBroadcastWorkers is the workers' default (telegram.broadcast_workers).
const DefaultBroadcastWorkers = 8

func (c BroadcastConfig) withDefaults() BroadcastConfig {
	if c.Workers <= 0 {
		c.Workers = DefaultBroadcastWorkers
	}
	if c.Batch <= 0 {
		c.Batch = c.Workers
	}
	if c.RecordBatch <= 0 {
		c.RecordBatch = 256
	}
	if c.Flush <= 0 {
		c.Flush = 250 * time.Millisecond
	}
	return c
}

// ErrNotSent marks a notice that surely did not reach its user (the
// Notifier stopped before sending it): the user is sent to on resume.
var ErrNotSent = errors.New("notice not sent")

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
			Int("failed", done.Totals[valex.DeliveryFailed]).Int("skipped", done.Totals[valex.DeliverySkipped]).
			Int("uncertain", done.Totals[valex.DeliveryUncertain]).Msg("broadcast finished")
		if reportTo != 0 {
			s.Notify.NoticeReport(ctx, reportTo, done)
		}
	}()
}

// Wait blocks until the broadcasts in flight have finished (or stopped
// with their context).
func (s *Service) Wait() { s.broadcasts.Wait() }

// ResumeBroadcasts restarts the broadcasts a stop interrupted; users who
// already have an outcome recorded are skipped (a failed one is tried
// again), and users whose message was on its way are not sent to again.
// The admin who started each gets the totals.
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
	uncertain, err := s.Store.ExpireClaims(n.ID, s.Clock.Now())
	if err != nil {
		return n, err
	}
	if uncertain > 0 {
		s.Log.Warn().Uint64("notice_id", n.ID).Int("uncertain", uncertain).Msg("a stop left messages on their way: not sent again")
	}
	users, err := s.recipients(n)
	if err != nil {
		return n, err
	}
	if err := s.send(ctx, n, users); err != nil {
		return n, fmt.Errorf("notice %d: %w", n.ID, err)
	}
	return s.Store.FinishNotice(n.ID, s.Clock.Now())
}

// recipients lists who still has to get the notice: every registered user
// (or, for a notice to some users, those of them still registered) without
// an outcome other than "failed".
func (s *Service) recipients(n valex.Notice) ([]valex.User, error) {
	audience, err := s.Store.Audience()
	if err != nil {
		return nil, err
	}
	done, err := s.Store.DeliveredTo(n.ID, valex.DeliveryDelivered, valex.DeliveryBlocked, valex.DeliverySkipped, valex.DeliveryUncertain)
	if err != nil {
		return nil, err
	}
	if len(n.UserIDs) > 0 {
		// Listed ids without an account get nothing, and no record: the
		// store keeps nothing keyed by an id without an account.
		lang := make(map[int64]string, len(audience))
		for _, u := range audience {
			lang[u.ID] = u.Language
		}
		audience = audience[:0]
		for _, id := range n.UserIDs {
			if l, ok := lang[id]; ok {
				audience = append(audience, valex.User{ID: id, Language: l})
			}
		}
	}
	out := audience[:0]
	for _, u := range audience {
		if !done[u.ID] {
			out = append(out, u)
		}
	}
	return out, nil
}

// outcome is what became of one user's message, for the recorder.
type outcome struct {
	user   int64
	status valex.DeliveryStatus
	err    error // nil: status is the outcome
}

// send runs the workers over users: claimed a batch at a time, sent,
// recorded in batches. It returns when everyone has an outcome, or on a
// stop or a failure once every message on its way has come back.
func (s *Service) send(ctx context.Context, n valex.Notice, users []valex.User) error {
	cfg := s.Broadcasts.withDefaults()
	sendCtx, stop := context.WithCancel(ctx)
	defer stop()

	// Unbuffered: a batch is claimed only once the previous one is all in
	// the workers' hands, so few users are claimed and not yet sent.
	jobs := make(chan valex.User)
	results := make(chan outcome, cfg.Workers)
	var workers sync.WaitGroup
	for range cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for u := range jobs {
				if err := sendCtx.Err(); err != nil {
					results <- outcome{user: u.ID, err: fmt.Errorf("%w: %w", ErrNotSent, err)}
					continue
				}
				st, err := s.deliver(sendCtx, n, u)
				results <- outcome{user: u.ID, status: st, err: err}
			}
		}()
	}
	recorded := make(chan error, 1)
	go func() { recorded <- s.record(n, cfg, results, stop) }()

	feedErr := s.feed(sendCtx, n, cfg, users, jobs)
	if feedErr != nil {
		stop()
	}
	close(jobs)
	workers.Wait()
	close(results)
	return errors.Join(<-recorded, feedErr, ctx.Err())
}

// feed claims users a batch at a time and hands them to the workers. On a
// stop it releases the claimed users it did not hand out.
func (s *Service) feed(ctx context.Context, n valex.Notice, cfg BroadcastConfig, users []valex.User, jobs chan<- valex.User) error {
	for start := 0; start < len(users); start += cfg.Batch {
		if ctx.Err() != nil {
			return nil
		}
		chunk := users[start:min(start+cfg.Batch, len(users))]
		ids := make([]int64, len(chunk))
		for i, u := range chunk {
			ids[i] = u.ID
		}
		claimed, err := s.Store.ClaimDeliveries(n.ID, ids, s.Clock.Now())
		if err != nil {
			return err
		}
		// claimed keeps the chunk's order, with users erased meanwhile (or
		// another sender's) left out.
		i := 0
		for c, id := range claimed {
			for chunk[i].ID != id {
				i++
			}
			select {
			case jobs <- chunk[i]:
			case <-ctx.Done():
				return s.Store.ReleaseClaims(n.ID, claimed[c:])
			}
		}
	}
	return nil
}

// record writes the workers' outcomes in batches and releases the claims
// of messages that never left; a message stopped on its way keeps its
// claim, uncertain on resume. A failure other than a stop (the store, a
// notice that cannot be rendered) stops the broadcast and is returned.
func (s *Service) record(n valex.Notice, cfg BroadcastConfig, results <-chan outcome, stop func()) error {
	var failed []error
	fail := func(err error) {
		failed = append(failed, err)
		stop()
	}
	var done []valex.Delivery
	var release []int64
	flush := func() {
		if err := s.Store.RecordDeliveries(done); err != nil {
			fail(err)
		}
		if err := s.Store.ReleaseClaims(n.ID, release); err != nil {
			fail(err)
		}
		done, release = done[:0], release[:0]
	}
	tick := time.NewTicker(cfg.Flush)
	defer tick.Stop()
	for {
		select {
		case o, ok := <-results:
			if !ok {
				flush()
				return errors.Join(failed...)
			}
			switch {
			case o.err == nil:
				done = append(done, valex.Delivery{NoticeID: n.ID, Kind: n.Kind, UserID: o.user, Status: o.status, At: s.Clock.Now()})
			case errors.Is(o.err, ErrNotSent):
				release = append(release, o.user)
			}
			if o.err != nil && !errors.Is(o.err, context.Canceled) && !errors.Is(o.err, context.DeadlineExceeded) {
				fail(o.err) // no user id: the error goes to the log
			}
			if len(done) >= cfg.RecordBatch {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// deliver sends one user their notice. Marketing is sent only if the user
// consents at this very moment. An error is a stop or a failure that ends
// the broadcast; delivery problems are a status.
func (s *Service) deliver(ctx context.Context, n valex.Notice, u valex.User) (valex.DeliveryStatus, error) {
	if n.Kind == valex.NoticeMarketing {
		st, err := s.Store.ConsentState(u.ID)
		if err != nil {
			return "", fmt.Errorf("%w: consent of a recipient: %w", ErrNotSent, err)
		}
		if !valex.CanSendMarketing(st) {
			return valex.DeliverySkipped, nil
		}
	}
	return s.Notify.Notice(ctx, n, u)
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
		// A user without an account (erased meanwhile) gets no record: the
		// store refuses to write anything keyed by them.
		err = s.Store.RecordDelivery(valex.Delivery{NoticeID: n.ID, Kind: n.Kind, UserID: u.ID, Status: status, At: s.Clock.Now()})
		if err != nil && !errors.Is(err, valex.ErrNotFound) {
			s.Log.Warn().Err(err).Uint64("notice_id", n.ID).Msg("record a retried breach notice")
		}
	}
}
