package bot

import (
	"sync"
)

// Dispatcher runs jobs so that the jobs of one chat run strictly in order,
// one at a time, while different chats run concurrently up to a limit. A slow
// job holds up only its own chat: nothing queues behind it but that chat's
// later updates.
//
// A chat's jobs run on a worker (Workers): one that has drained its chat
// waits for the next chat instead of exiting, up to maxIdleWorkers of them.
type Dispatcher struct {
	sem  chan struct{} // bounds the chats running at once
	pool *Workers[chatRun]

	mu    sync.Mutex
	chats map[int64]*chatQueue
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
	d := &Dispatcher{sem: make(chan struct{}, limit), chats: make(map[int64]*chatQueue)}
	d.pool = NewWorkers(maxIdleWorkers, d.run)
	return d
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
	d.pool.Go(chatRun{chatID: chatID, q: q, job: job})
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
func (d *Dispatcher) Close() { d.pool.Close() }

// Wait blocks until every queued job has run.
func (d *Dispatcher) Wait() { d.wg.Wait() }

// workers returns how many worker goroutines exist, running or idle.
func (d *Dispatcher) workers() int { return d.pool.Alive() }

// Busy returns how many chats have jobs queued or running.
func (d *Dispatcher) Busy() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.chats)
}
