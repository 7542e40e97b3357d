package handlers

// The per-user queue of AI jobs: admission, /cancel, StopUser for privacy, shutdown.

import (
	"context"
	"errors"
	"time"

	"github.com/valex-ai/valex/bot"
)

// awaitingMsg is a message held until the user agrees to the AI transfer,
// with the account it came from: a button of an erased account never
// answers it in a new one. Its update stays pending while it is held, so a
// crash or a stop does not lose it: after the restart it is replayed (and
// the consent asked again). It is dropped, and its update counted as
// handled, when the hold expires, a newer message takes its place, or a
// privacy stop voids it.
type awaitingMsg struct {
	r       *bot.Request
	account time.Time        // the account's CreatedAt
	end     func(ended bool) // the held update's Request.Defer
	since   time.Time        // when the message was sent: the hold counts from it
	timer   *time.Timer      // drops it when the hold expires
}

type aiJob struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	ticket uint64 // a.stops when the work was admitted
	// end is the update's Request.Defer. settle calls it as soon as the
	// job's outcome stands — the answer shown in full, or the user told why
	// not — and before the exchange is written: a crash after it repeats no
	// write, a shutdown after it does not answer again. A crash before it
	// answers again (once per crash at most: the window is one commit).
	end func(ended bool)
	// draft is the id of the draft the job's answer streams as (0: none):
	// its stop button stops this job (ai_stop.go). Guarded by AI.mu.
	draft int64

	fn func(ctx context.Context)
	r  *bot.Request // the chat and language of the "queued" notice

	// Under AI.mu.
	running bool      // it holds one of the MaxConcurrent slots
	since   time.Time // when it became its user's next job, waiting for a slot
	noticed bool      // the "queued" notice was sent, or is being sent
	notice  int       // that notice's message id, until it is deleted
	waited  bool      // its wait is over: it started, or was dropped
}

// errShutdown is the cause of the jobs Shutdown cancels: their turn did not
// end, their update stays pending and is answered after the restart.
var errShutdown = errors.New("ai work interrupted by a shutdown")

// interrupted reports whether Shutdown cancelled ctx's job. A job's context
// is cancelled a moment after the root's: until then the root's cause counts.
func (a *AI) interrupted(ctx context.Context) bool {
	if ctx.Err() == nil {
		ctx = a.root
	}
	return errors.Is(context.Cause(ctx), errShutdown)
}

// settle ends ctx's job's update: its outcome stands (see aiJob.end). It
// returns once the update is recorded as handled.
func settle(ctx context.Context) {
	if j, ok := ctx.Value(jobKey{}).(*aiJob); ok {
		j.end(true)
	}
}

// settleRefused settles a job the wallet refused: reserve told the user
// (err == nil) why nothing was sent.
func settleRefused(ctx context.Context, err error) {
	if err == nil {
		settle(ctx)
	}
}

// errStopped is the cause of a job stopped by StopUser: it keeps nothing
// and nothing is reported, the user is told by whoever stopped it.
var errStopped = errors.New("ai work stopped for privacy")

// jobKey carries a job in its context, for the writes it makes.
type jobKey struct{}

// admit is taken before a request's consent check: work admitted before a
// StopUser of its user is dropped by submit.
func (a *AI) admit() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stops
}

// submit queues fn as the user's next job. It runs after the user's earlier
// jobs have finished, when one of the MaxConcurrent slots is free (users
// take turns for the slots: see ai_slots.go), on a context that
// CancelGeneration and StopUser cancel; a job cancelled while it waits is
// dropped and never runs, and work admitted before the user's latest
// StopUser is not queued at all. A waiting job is an entry in its user's
// queue, not a goroutine.
//
// end is the update's Request.Defer, called when the job settles or stops:
// the update counts as handled only once its turn has ended — answered,
// failed and told, or cancelled (by /cancel or a privacy stop). A job
// Shutdown interrupts before it settled (waiting, or mid-answer) leaves the
// update pending: it is answered again after the restart.
func (a *AI) submit(r *bot.Request, ticket uint64, end func(ended bool), fn func(ctx context.Context)) {
	userID := r.From.ID
	j := &aiJob{done: make(chan struct{}), ticket: ticket, end: end, fn: fn, r: r}
	ctx, cancel := context.WithCancelCause(a.root)
	j.ctx, j.cancel = context.WithValue(ctx, jobKey{}, j), cancel
	a.mu.Lock()
	if a.stoppedAt[userID] > ticket {
		a.mu.Unlock()
		cancel(errStopped)
		end(true) // stopped for privacy: the turn is over
		return
	}
	if a.root.Err() != nil {
		a.mu.Unlock()
		cancel(errShutdown)
		end(false) // shutting down: answered after the restart
		return
	}
	q := a.jobs[userID]
	a.jobs[userID] = append(q, j)
	a.wg.Add(1)
	if len(q) == 0 {
		a.waitLocked(userID, j)
	}
	start := a.dispatchLocked()
	a.mu.Unlock()
	a.start(start)
}

// run runs a job that got a slot, then frees the slot for the next one.
func (a *AI) run(userID int64, j *aiJob) {
	defer a.wg.Done()
	a.unnotice(j)
	if a.mayStart(userID, j) {
		j.fn(j.ctx)
	}
	ended := !a.interrupted(j.ctx)
	a.finish(userID, j)
	j.end(ended) // nothing more when the job settled
}

// mayStart reports whether a job whose turn has come may run: it was not
// cancelled, and no StopUser came after its work was admitted (StopUser
// cancels the running job first; the next one must not slip in before it
// is cancelled too).
func (a *AI) mayStart(userID int64, j *aiJob) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return j.ctx.Err() == nil && a.stoppedAt[userID] <= j.ticket
}

// finish takes a job that ran out of its user's queue and gives its slot to
// the next job waiting (the user's own next one goes to the back of the
// line: see ai_slots.go).
func (a *AI) finish(userID int64, j *aiJob) {
	j.cancel(nil)
	close(j.done)
	a.mu.Lock()
	a.running--
	q := a.jobs[userID]
	if len(q) > 0 && q[0] == j {
		q[0] = nil
		q = q[1:]
	}
	if len(q) == 0 {
		delete(a.jobs, userID)
	} else {
		a.jobs[userID] = q
		a.waitLocked(userID, q[0])
	}
	start := a.dispatchLocked()
	a.mu.Unlock()
	a.start(start)
}

// dropWaitingLocked takes the user's jobs that wait (not the running one)
// out of the queues. The caller cancels them, then calls drop for each
// after unlocking.
func (a *AI) dropWaitingLocked(userID int64) []*aiJob {
	q := a.jobs[userID]
	var dropped []*aiJob
	keep := q[:0]
	for _, j := range q {
		if j.running {
			keep = append(keep, j)
		} else {
			dropped = append(dropped, j)
		}
	}
	if len(dropped) > 0 && (len(keep) == 0 || !keep[0].running) {
		a.unwaitLocked(userID)
	}
	if len(keep) == 0 {
		delete(a.jobs, userID)
	} else {
		a.jobs[userID] = keep
	}
	return dropped
}

// drop ends a job taken out of the queue before it ran: its notice goes,
// and its update ends as the job would have (ended unless a shutdown
// interrupted it). A shutdown leaves the notice: deleting thousands of
// them could outlast the shutdown's grace, and the question is answered
// after the restart.
func (a *AI) drop(j *aiJob, ended bool) {
	close(j.done)
	if ended {
		a.unnotice(j)
	} else {
		a.mu.Lock()
		j.waited = true
		a.mu.Unlock()
	}
	j.end(ended)
	a.wg.Done()
}

// CancelGeneration stops the user's running AI job and drops those waiting.
// It reports whether there was any.
func (a *AI) CancelGeneration(userID int64) bool {
	a.mu.Lock()
	q := a.jobs[userID]
	had := len(q) > 0
	for _, j := range q {
		j.cancel(nil)
	}
	dropped := a.dropWaitingLocked(userID)
	a.mu.Unlock()
	for _, j := range dropped {
		a.drop(j, true)
	}
	return had
}

// StopUser stops the user's AI work because the user withdrew the AI
// consent, restricted AI processing, or is being erased: it cancels the
// running job and drops those waiting, voids the message held for consent
// and the image price offer, and waits (bounded by ctx) until the running
// job has returned. Unlike /cancel nothing is kept or charged: from the
// moment StopUser returns — even when ctx ended first — no stopped job
// writes to the store, and no work admitted before it reaches a provider.
// It returns how many jobs it stopped (running and waiting).
func (a *AI) StopUser(ctx context.Context, userID int64) (stopped int) {
	a.keep.Lock() // waits for a write in progress; none starts after
	a.mu.Lock()
	a.stops++
	a.stoppedAt[userID] = a.stops
	q := append([]*aiJob(nil), a.jobs[userID]...)
	for _, j := range q {
		if j.ctx.Err() == nil {
			stopped++
		}
	}
	for _, j := range q {
		j.cancel(errStopped)
	}
	dropped := a.dropWaitingLocked(userID)
	held := a.unholdLocked(userID)
	delete(a.pending, userID)
	a.asked.forget(userID)
	a.mu.Unlock()
	a.keep.Unlock()
	if held != nil {
		held.end(true) // voided by the privacy stop: its update is done with
	}
	for _, j := range dropped {
		a.drop(j, true) // stopped for privacy: the turn is over
	}

	for _, j := range q {
		select {
		case <-j.done:
		case <-ctx.Done():
			a.h.Log.Warn().Str("user", a.h.IDs.User(userID)).Msg("stopped ai job still returning; it writes nothing")
			return stopped
		}
	}
	return stopped
}

// write runs fn, a store write of the job running on ctx, unless StopUser
// stopped the job: then it writes nothing and returns errStopped.
func (a *AI) write(ctx context.Context, userID int64, fn func() error) error {
	a.keep.RLock()
	defer a.keep.RUnlock()
	if j, ok := ctx.Value(jobKey{}).(*aiJob); ok && a.stoppedAt[userID] > j.ticket {
		return errStopped
	}
	return fn()
}

// stoppedForPrivacy reports whether StopUser cancelled ctx's job.
func stoppedForPrivacy(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errStopped)
}

// allowed is the gate right before every call to a provider: the job was
// not stopped and the user's consent still stands (it may have changed
// while the job waited, downloaded a file or read the history).
func (a *AI) allowed(ctx context.Context, userID int64) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	return a.consent.CanUseAI(userID)
}

// Busy is the number of AI jobs running or waiting.
func (a *AI) Busy() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, q := range a.jobs {
		n += len(q)
	}
	return n
}

// Shutdown lets running jobs finish for up to grace, then cancels them and
// waits until they have returned. Call it when the bot stops, alongside
// Bot.Run's own stop (not after it: the bot waits for the jobs' updates),
// and before the store closes. The updates of messages held for consent and
// of jobs it interrupts stay pending: they are handled after the restart.
func (a *AI) Shutdown(grace time.Duration) {
	a.mu.Lock()
	a.closing = true
	var held []*awaitingMsg
	for uid := range a.awaiting {
		held = append(held, a.unholdLocked(uid))
	}
	a.mu.Unlock()
	for _, m := range held {
		m.end(false) // waits on the user, not on us: replayed after the restart
	}

	finished := make(chan struct{})
	go func() { a.wg.Wait(); close(finished) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		a.h.Log.Warn().Int("jobs", a.Busy()).Msg("ai shutdown deadline passed, cancelling generations")
	}
	a.stop(errShutdown)
	a.pool.Close() // nothing more starts: the idle workers go
	a.mu.Lock()
	var dropped []*aiJob
	for uid := range a.jobs {
		dropped = append(dropped, a.dropWaitingLocked(uid)...)
	}
	a.mu.Unlock()
	for _, j := range dropped {
		a.drop(j, false) // never started: answered after the restart
	}
	late := time.AfterFunc(tgLinger, func() { a.stopTG(errShutdown) })
	<-finished
	late.Stop()
	a.stopTG(errShutdown)
}

// tgLinger is how long Telegram calls in flight get after Shutdown cancels
// the jobs; well within the second the bot waits for deferred work to say
// how it ended (bot.deferredSettle).
const tgLinger = 500 * time.Millisecond
