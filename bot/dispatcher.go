package bot

import (
	"sync"
)

// Dispatcher runs jobs so that the jobs of one chat run strictly in order,
// one at a time, while different chats run concurrently up to a limit. A slow
// job holds up only its own chat: nothing queues behind it but that chat's
// later updates.
type Dispatcher struct {
	sem chan struct{} // bounds the chats running at once

	mu    sync.Mutex
	chats map[int64]*chatQueue
	wg    sync.WaitGroup
}

type chatQueue struct {
	jobs []func()
}

// DefaultConcurrency is how many chats may be handled at the same time.
const DefaultConcurrency = 1024

// NewDispatcher returns a dispatcher running at most limit chats at once.
func NewDispatcher(limit int) *Dispatcher {
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	return &Dispatcher{sem: make(chan struct{}, limit), chats: make(map[int64]*chatQueue)}
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
	go d.run(chatID, q, job)
}

// run drains one chat's queue, then forgets the chat.
func (d *Dispatcher) run(chatID int64, q *chatQueue, job func()) {
	defer d.wg.Done()
	d.sem <- struct{}{}
	defer func() { <-d.sem }()
	for {
		job()
		d.mu.Lock()
		if len(q.jobs) == 0 {
			delete(d.chats, chatID)
			d.mu.Unlock()
			return
		}
		job = q.jobs[0]
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		d.mu.Unlock()
	}
}

// Wait blocks until every queued job has run.
func (d *Dispatcher) Wait() { d.wg.Wait() }

// Busy returns how many chats have jobs queued or running.
func (d *Dispatcher) Busy() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.chats)
}
