package jobs

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
)

// fakeCompacter counts compactions; each takes hold.
type fakeCompacter struct {
	ratio float64
	hold  time.Duration

	mu      sync.Mutex
	calls   int
	running int
	overlap bool
}

func (f *fakeCompacter) FreeRatio() (float64, error) { return f.ratio, nil }

func (f *fakeCompacter) Compact() (int64, int64, error) {
	f.mu.Lock()
	f.calls++
	f.running++
	f.overlap = f.overlap || f.running > 1
	f.mu.Unlock()
	time.Sleep(f.hold)
	f.mu.Lock()
	f.running--
	f.mu.Unlock()
	return 3 << 20, 1 << 20, nil
}

func (f *fakeCompacter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func TestCompactJobThreshold(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ratio     float64
		wantCalls int
		wantIn    string
	}{
		{"under the threshold", 0.10, 0, "not compacted"},
		{"at the threshold", 0.25, 1, "compacted 3.0 MiB → 1.0 MiB"},
		{"over the threshold", 0.60, 1, "handling paused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCompacter{ratio: tc.ratio}
			c := NewCompactor(f, time.Hour, zerolog.Nop())
			summary, err := c.Job(0.25)(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if f.count() != tc.wantCalls || !strings.Contains(summary, tc.wantIn) {
				t.Fatalf("%d compactions, summary %q; want %d and %q", f.count(), summary, tc.wantCalls, tc.wantIn)
			}
		})
	}
}

func TestCompactorCoalescesRequests(t *testing.T) {
	f := &fakeCompacter{hold: 50 * time.Millisecond}
	c := NewCompactor(f, 20*time.Millisecond, zerolog.Nop())
	for i := 0; i < 10; i++ { // an erasure batch
		c.Request()
	}
	waitFor(t, func() bool { return f.count() == 1 })
	// A request while that compaction runs gets a compaction of its own,
	// and the scheduled job never overlaps one.
	c.Request()
	if _, err := c.Job(0)(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return f.count() == 3 })
	c.Stop()
	if f.overlap {
		t.Fatal("two compactions ran at once")
	}
	c.Request() // after Stop: ignored
	time.Sleep(40 * time.Millisecond)
	if n := f.count(); n != 3 {
		t.Fatalf("%d compactions, want 3", n)
	}
}

func TestCompactorStopRunsAPendingRequest(t *testing.T) {
	f := &fakeCompacter{}
	c := NewCompactor(f, time.Hour, zerolog.Nop())
	c.Request()
	c.Stop()
	if n := f.count(); n != 1 {
		t.Fatalf("%d compactions at Stop, want the pending one", n)
	}
}

// An erasure's requested compaction reaches the key store too; the
// scheduled job compacts it only past the threshold.
func TestCompactorCompactsTheKeyStore(t *testing.T) {
	db, keys := &fakeCompacter{}, &fakeCompacter{ratio: 0.1}
	c := NewCompactor(db, time.Hour, zerolog.Nop()).WithKeyStore(keys)
	c.Request()
	c.Stop()
	if db.count() != 1 || keys.count() != 1 {
		t.Fatalf("requested: %d database and %d key store compactions, want 1 and 1", db.count(), keys.count())
	}
	c = NewCompactor(db, time.Hour, zerolog.Nop()).WithKeyStore(keys)
	if _, err := c.Job(0.25)(context.Background()); err != nil || keys.count() != 1 {
		t.Fatalf("key store under the threshold compacted: %d, %v", keys.count(), err)
	}
	keys.ratio = 0.5
	if summary, err := c.Job(0.25)(context.Background()); err != nil || keys.count() != 2 || !strings.Contains(summary, "key store compacted") {
		t.Fatalf("key store over the threshold: %d compactions, %q, %v", keys.count(), summary, err)
	}
}

// TestCompactJobOnRealStore: the job shrinks a real store whose data was
// mostly deleted, while the store stays open and usable.
func TestCompactJobOnRealStore(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "valex.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	long := strings.Repeat("x", 12000)
	for id := int64(1); id <= 120; id++ {
		must(t, db.PutUser(valex.User{ID: id, Nickname: "n", Description: long, Language: "en"}))
	}
	for id := int64(1); id <= 100; id++ {
		must(t, db.DeleteUser(id))
	}
	c := NewCompactor(db, time.Hour, zerolog.Nop())
	summary, err := c.Job(0.25)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(summary, "compacted") || strings.Contains(summary, "not compacted") {
		t.Fatalf("summary %q, want a compaction", summary)
	}
	if r, err := db.FreeRatio(); err != nil || r >= 0.25 {
		t.Fatalf("free ratio after the job = %.2f, %v", r, err)
	}
	if n, err := db.CountUsers(); err != nil || n != 20 {
		t.Fatalf("%d users, %v; want 20", n, err)
	}
	summary, err = c.Job(0.25)(context.Background())
	if err != nil || !strings.Contains(summary, "not compacted") {
		t.Fatalf("second run: %q, %v; want no compaction", summary, err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
