package bot

import (
	"sync"
)

// Dispatcher runs jobs so that the jobs of one chat run strictly in order,
// one at a time, while different chats run concurrently up to a limit. A slow
// job holds up only its own chat: nothing queues behind it but that chat's
// later updates.
//
// A chat's jobs run on a worker goroutine. A worker that has drained its
// chat waits for the next chat instead of exiting (up to maxIdleWorkers of
// them): a fresh goroutine starts with a small stack and grows it, copying,
// on every update's deep handler chain — 8 % of the pipeline's CPU when
// each chat had a goroutine of its own.
type Dispatcher struct {
	sem  chan struct{} // bounds the chats running at once
	next chan chatRun  // hands a chat to an idle worker (unbuffered)

	mu    sync.Mutex
	chats map[int64]*chatQueue
	idle  int // workers waiting on next
	alive int // workers running or waiting
	wg    sync.WaitGroup
}

type chatQueue struct {
	jobs []func()
}

// chatRun is a chat to drain, starting with job.
type chatRun struct {
	chatID int64
	q      *chatQueue
	job    func()
}

// DefaultConcurrency is how many chats may be handled at the same time.
const DefaultConcurrency = 1024

// maxIdleWorkers bounds the workers kept waiting for a chat; more than that
// exit when their chat is drained.
const maxIdleWorkers = 64

// NewDispatcher returns a dispatcher running at most limit chats at once.
func NewDispatcher(limit int) *Dispatcher {
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	return &Dispatcher{sem: make(chan struct{}, limit), next: make(chan chatRun), chats: make(map[int64]*chatQueue)}
}

// Dispatch queues job behind the earlier jobs of chatID. It never blocks.
func (d *Dispatcher) Dispatch(chatID int64, job func()) {
	d.mu.Lock()
	q, running := d.chats[chatID]
	if running {
		q.jobs = append(q.jobs, job)
		d.mu.Unlock()
		return
	}
	q = &chatQueue{}
	d.chats[chatID] = q
	d.wg.Add(1)
	d.mu.Unlock()
	run := chatRun{chatID: chatID, q: q, job: job}
	select {
	case d.next <- run: // an idle worker takes it
	default:
		d.mu.Lock()
		d.alive++
		d.mu.Unlock()
		go d.worker(run)
	}
}

// worker drains run's chat, then waits for another while fewer than
// maxIdleWorkers wait.
func (d *Dispatcher) worker(run chatRun) {
	defer func() {
		d.mu.Lock()
		d.alive--
		d.mu.Unlock()
	}()
	for {
		d.run(run)
		d.mu.Lock()
		if d.idle >= maxIdleWorkers {
			d.mu.Unlock()
			return
		}
		d.idle++
		d.mu.Unlock()
		var open bool
		if run, open = <-d.next; !open {
			return // Close
		}
		d.mu.Lock()
		d.idle--
		d.mu.Unlock()
	}
}

// run drains one chat's queue, then forgets the chat.
func (d *Dispatcher) run(r chatRun) {
	defer d.wg.Done()
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	job := r.job
	for {
		job()
		d.mu.Lock()
		if len(r.q.jobs) == 0 {
			delete(d.chats, r.chatID)
			d.mu.Unlock()
			return
		}
		job = r.q.jobs[0]
		r.q.jobs[0] = nil
		r.q.jobs = r.q.jobs[1:]
		d.mu.Unlock()
	}
}

// Close lets the idle workers exit. Call it when nothing more will be
// dispatched (the bot has stopped).
func (d *Dispatcher) Close() { close(d.next) }

// Wait blocks until every queued job has run.
func (d *Dispatcher) Wait() { d.wg.Wait() }

// workers returns how many worker goroutines exist, running or idle.
func (d *Dispatcher) workers() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.alive
}

// Busy returns how many chats have jobs queued or running.
func (d *Dispatcher) Busy() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.chats)
}
