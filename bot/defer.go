package bot

// When an update counts as handled: its handler has returned and every piece
// of work it deferred (an AI answer streaming in a job) has ended. Until
// then the update stays pending in the inbox, so a crash or a stop replays it.

import (
	"sync"
	"time"
)

// deferredSettle bounds how long a stop waits, after the shutdown deadline,
// for deferred work to report how it ended: its owner stops it on the same
// deadline (AI.Shutdown), so this only covers the few milliseconds that
// takes, or an owner that was never stopped.
const deferredSettle = time.Second

// inflight is one update from dispatch until it is finished.
type inflight struct {
	b  *Bot
	id int

	mu       sync.Mutex
	open     int  // the handler, plus deferred work not yet ended
	keep     bool // some part was interrupted: the update stays pending
	deferred bool // Defer was called: the update ends when its work is shown
	recorded bool // its work wrote the handled mark itself (MarkedHandled)
	waiting  bool // its work waits on the user (WaitsOnUser)
}

// Defer tells the bot that the update's work goes on after the handler
// returns (an AI answer queued in a job), so that it counts as handled only
// when that work ends. Call it before the handler returns. It returns end,
// which the work calls once when it stops (later calls do nothing):
//
//   - end(true): the work ended — done, failed and told, or cancelled by the
//     user or a privacy stop. The update is marked handled (once the handler
//     has returned too), and end returns when that mark is on disk: call it
//     as soon as the user has seen the outcome, before writing the rest
//     (history, usage), so a crash repeats the answer at most, never the
//     writes.
//   - end(false): a shutdown interrupted it. The update stays pending and is
//     handled again at the next start.
//
// Work that never calls end (the process was killed) leaves the update
// pending too. Deferring does not hold up the chat's next update: only the
// handled mark waits. A graceful stop waits for deferred work as for
// handlers, up to the shutdown timeout; whoever owns the work must stop it
// alongside the bot (so that it calls end) or the stop waits that long.
//
// A Request the bot did not make (a test's) returns an end that does nothing.
func (r *Request) Defer() (end func(ended bool)) {
	f := r.flight
	if f == nil || !f.add() {
		return func(bool) {}
	}
	var once sync.Once
	return func(ended bool) { once.Do(func() { f.end(ended) }) }
}

// MarkedHandled tells the bot that the update's work wrote its handled mark
// in the transaction of its own last write (an AI turn's exchange, see
// valex.Charge.EndsUpdate): when the work ends, there is nothing left to
// commit, and end(true) does not wait for a commit. Call it only after that
// write committed.
func (r *Request) MarkedHandled() {
	if f := r.flight; f != nil {
		f.mu.Lock()
		f.recorded = true
		f.mu.Unlock()
	}
}

// WaitsOnUser tells the bot that the update's deferred work now waits on
// the user (true: a message held until they agree to the AI transfer) or
// runs again (false). Work that waits on the user does not count against
// Config.MaxPending — the update that ends the wait has to get through —
// but its update stays pending all the same.
func (r *Request) WaitsOnUser(waiting bool) {
	f := r.flight
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == 0 || f.waiting == waiting {
		return
	}
	f.waiting = waiting
	b := f.b
	b.mu.Lock()
	if waiting {
		b.waitingOnUser++
	} else {
		b.waitingOnUser--
	}
	b.roomLocked()
	b.mu.Unlock()
}

// add counts one more piece of work, unless the update is finished already
// (Defer called after the handler returned and everything ended: a bug, and
// counting it would mark the update twice).
func (f *inflight) add() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == 0 {
		return false
	}
	f.open++
	f.deferred = true
	return true
}

// end records that one piece stopped; the last one finishes the update.
func (f *inflight) end(ended bool) {
	f.mu.Lock()
	f.open--
	if !ended {
		f.keep = true
	}
	last, keep, deferred, recorded, waiting := f.open == 0, f.keep, f.deferred, f.recorded, f.waiting
	f.mu.Unlock()
	if last {
		f.b.finish(f.id, !keep && !recorded, deferred, waiting)
	}
}

// roomLocked wakes the poller waiting for room when there is room for a
// batch (waitForRoom). b.mu is held.
func (b *Bot) roomLocked() {
	if b.room != nil && b.roomLeftLocked() >= b.batchRoom() {
		close(b.room)
		b.room = nil
	}
}

// begin starts tracking an update; its handler is the first open piece.
func (b *Bot) begin(id int) *inflight {
	b.mu.Lock()
	b.open++
	b.mu.Unlock()
	return &inflight{b: b, id: id, open: 1}
}

// finish ends an update's tracking and, when handled, queues its id for the
// handled log, unless the log is sealed (after a stop: it stays pending).
// The end of deferred work is committed at once, and finish returns after
// the commit (see handled).
func (b *Bot) finish(id int, ok, deferred, waiting bool) {
	var committed chan struct{}
	b.mu.Lock()
	if ok && !b.sealed {
		if deferred {
			committed = make(chan struct{})
		}
		b.done <- handled{id: id, committed: committed}
	}
	b.open--
	if waiting {
		b.waitingOnUser--
	}
	b.roomLocked()
	if b.open == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
	b.mu.Unlock()
	if committed != nil {
		<-committed
	}
}

// waitIdle waits up to timeout until no update is in flight (handlers and
// deferred work), and reports whether that happened.
func (b *Bot) waitIdle(timeout time.Duration) bool {
	b.mu.Lock()
	if b.open == 0 {
		b.mu.Unlock()
		return true
	}
	if b.idle == nil {
		b.idle = make(chan struct{})
	}
	idle := b.idle
	b.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

// seal closes the handled log: updates finishing later stay pending.
func (b *Bot) seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sealed = true
	close(b.done)
}

// inFlight returns how many updates are dispatched and not yet finished:
// queued, being handled, or waiting for work their handler deferred.
func (b *Bot) inFlight() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}
