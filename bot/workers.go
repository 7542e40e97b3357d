package bot

import "sync"

// Workers runs jobs on goroutines that outlive them: a worker that has
// finished a job waits for the next one (up to maxIdle of them wait)
// instead of exiting. A fresh goroutine starts with a small stack and grows
// it, copying, through every deep call chain (JSON, HTTP, the store): 8 % of
// the bot core's CPU, and 2.6 % of an AI answer's, when each job had a
// goroutine of its own.
type Workers[T any] struct {
	run     func(T)
	maxIdle int
	next    chan T        // hands a job to an idle worker (unbuffered)
	quit    chan struct{} // closed by Close: idle workers exit
	once    sync.Once

	mu          sync.Mutex
	alive, idle int
}

// NewWorkers returns workers that call run for each job, keeping at most
// maxIdle of them waiting.
func NewWorkers[T any](maxIdle int, run func(T)) *Workers[T] {
	return &Workers[T]{run: run, maxIdle: maxIdle, next: make(chan T), quit: make(chan struct{})}
}

// Go runs job on an idle worker, or on a new one. It never blocks.
func (w *Workers[T]) Go(job T) {
	select {
	case w.next <- job:
		return
	default:
	}
	w.mu.Lock()
	w.alive++
	w.mu.Unlock()
	go w.work(job)
}

func (w *Workers[T]) work(job T) {
	defer func() {
		w.mu.Lock()
		w.alive--
		w.mu.Unlock()
	}()
	for {
		w.run(job)
		w.mu.Lock()
		if w.idle >= w.maxIdle {
			w.mu.Unlock()
			return
		}
		w.idle++
		w.mu.Unlock()
		var ok bool
		select {
		case job = <-w.next:
			ok = true
		case <-w.quit:
		}
		w.mu.Lock()
		w.idle--
		w.mu.Unlock()
		if !ok {
			return
		}
	}
}

// Close lets the idle workers exit, and those still running exit when
// their job is done. Jobs given to Go afterwards still run.
func (w *Workers[T]) Close() { w.once.Do(func() { close(w.quit) }) }

// Alive is how many workers exist, running a job or waiting for one.
func (w *Workers[T]) Alive() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.alive
}
