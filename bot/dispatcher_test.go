package bot

import (
	"sync"
	"testing"
	"time"
)

func TestDispatcherKeepsPerChatOrder(t *testing.T) {
	d := NewDispatcher(8)
	const chats, perChat = 50, 200
	var mu sync.Mutex
	got := make(map[int64][]int)
	for i := 0; i < perChat; i++ {
		for c := int64(1); c <= chats; c++ {
			c, i := c, i
			d.Dispatch(c, func() {
				mu.Lock()
				got[c] = append(got[c], i)
				mu.Unlock()
			})
		}
	}
	d.Wait()
	for c := int64(1); c <= chats; c++ {
		if len(got[c]) != perChat {
			t.Fatalf("chat %d: %d jobs ran, want %d", c, len(got[c]), perChat)
		}
		for i, v := range got[c] {
			if v != i {
				t.Fatalf("chat %d: job %d ran at position %d", c, v, i)
			}
		}
	}
}

func TestDispatcherNeverRunsOneChatTwiceAtOnce(t *testing.T) {
	d := NewDispatcher(16)
	var mu sync.Mutex
	running := map[int64]int{}
	var overlap bool
	for i := 0; i < 500; i++ {
		c := int64(i % 5)
		d.Dispatch(c, func() {
			mu.Lock()
			running[c]++
			if running[c] > 1 {
				overlap = true
			}
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
			mu.Lock()
			running[c]--
			mu.Unlock()
		})
	}
	d.Wait()
	if overlap {
		t.Fatal("two jobs of one chat ran at the same time")
	}
}

func TestDispatcherSlowChatDoesNotDelayOthers(t *testing.T) {
	d := NewDispatcher(4)
	release := make(chan struct{})
	d.Dispatch(1, func() { <-release }) // chat 1 is stuck
	done := make(chan struct{})
	d.Dispatch(2, func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("chat 2 waited behind the stuck chat 1")
	}
	// Chat 2 is forgotten right after its job returns; chat 1 stays busy.
	deadline := time.Now().Add(5 * time.Second)
	for d.Busy() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if d.Busy() != 1 {
		t.Fatalf("busy chats = %d, want 1 (the stuck one)", d.Busy())
	}
	close(release)
	d.Wait()
	if d.Busy() != 0 {
		t.Fatalf("busy chats after Wait = %d", d.Busy())
	}
}

// Workers outlive their chat to take the next one, but no more than
// maxIdleWorkers of them stay once a burst of chats is over, and Close lets
// those go.
func TestIdleWorkersAreBounded(t *testing.T) {
	d := NewDispatcher(1024)
	release := make(chan struct{})
	var started sync.WaitGroup
	const chats = 300
	started.Add(chats)
	for c := range chats {
		d.Dispatch(int64(c), func() { started.Done(); <-release })
	}
	started.Wait() // every chat has a worker of its own now
	if n := d.workers(); n != chats {
		t.Fatalf("%d workers for %d chats running at once", n, chats)
	}
	close(release)
	d.Wait()
	waitWorkers := func(most int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for d.workers() > most && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := d.workers(); n > most {
			t.Fatalf("%d workers left, want at most %d", n, most)
		}
	}
	waitWorkers(maxIdleWorkers)
	// An idle worker takes the next chat: no new goroutine.
	done := make(chan struct{})
	d.Dispatch(1, func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a chat dispatched after the burst never ran")
	}
	if n := d.workers(); n > maxIdleWorkers {
		t.Fatalf("%d workers after one more chat, want at most %d", n, maxIdleWorkers)
	}
	d.Wait()
	d.Close()
	waitWorkers(0)
}
