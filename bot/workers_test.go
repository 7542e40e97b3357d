package bot

import (
	"sync"
	"testing"
	"time"
)

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Every job runs; at most maxIdle workers stay once the work is done.
func TestWorkersRunEveryJobAndKeepMaxIdle(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	w := NewWorkers(3, func(int) { <-release; wg.Done() })
	wg.Add(10)
	for i := range 10 {
		w.Go(i)
	}
	if n := w.Alive(); n != 10 {
		t.Errorf("%d workers for 10 blocked jobs, want 10", n)
	}
	close(release)
	wg.Wait()
	waitFor(t, "3 idle workers", func() bool { return w.Alive() == 3 })
}

// Close lets idle workers exit; jobs given afterwards still run.
func TestWorkersClose(t *testing.T) {
	done := make(chan int, 10)
	w := NewWorkers(4, func(i int) { done <- i })
	for i := range 4 {
		w.Go(i)
	}
	for range 4 {
		<-done
	}
	waitFor(t, "idle workers", func() bool { return w.idleCount() > 0 })
	w.Close()
	waitFor(t, "the idle workers to exit", func() bool { return w.Alive() == 0 })
	w.Go(7)
	if got := <-done; got != 7 {
		t.Errorf("job after Close ran %d", got)
	}
	waitFor(t, "no workers", func() bool { return w.Alive() == 0 })
}

func (w *Workers[T]) idleCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.idle
}
