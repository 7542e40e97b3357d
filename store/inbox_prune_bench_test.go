package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// BenchmarkInboxPrune prunes a handled log of n entries that all expired. The
// cost per entry must stay flat as n grows: the old prune re-seeked from the
// start after every delete (quadratic: 1 M entries took 69 s).
//
//   - valex: the prune alone, its total time.
//   - valex+poller: the same while a poller commits one update every
//     millisecond (add, then handled); max-poller-commit-ms is the longest
//     such commit took, fsync included: the stall a user would feel.
//   - floor: the least any prune must do, a bare bbolt loop deleting the
//     same n sequential keys from one bucket in transactions of the same
//     size. The prune deletes two keys per entry (the log and its time
//     index), so about twice the floor is the expected figure.
func BenchmarkInboxPrune(b *testing.B) {
	for _, n := range []int{250_000, 1_000_000} {
		b.Run(fmt.Sprintf("valex/n=%d", n), func(b *testing.B) { benchPrune(b, n, false) })
		b.Run(fmt.Sprintf("valex+poller/n=%d", n), func(b *testing.B) { benchPrune(b, n, true) })
		b.Run(fmt.Sprintf("floor/n=%d", n), func(b *testing.B) { benchPruneFloor(b, n) })
	}
}

func benchPrune(b *testing.B, n int, poller bool) {
	db := openTest(b, nil)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	next := 1
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		next = fillHandled(b, db, next, n, at)
		stop, waited := make(chan struct{}), make(chan time.Duration, 1)
		if poller {
			go pollerCommits(b, db, next+10_000_000*(i+1), at.Add(2*time.Hour), stop, waited)
		}
		b.StartTimer()
		got, err := db.InboxPruneHandled(at.Add(time.Hour))
		b.StopTimer()
		if poller {
			close(stop)
			worst = max(worst, <-waited)
		}
		if err != nil || got != n {
			b.Fatalf("pruned %d (%v), want %d", got, err, n)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
	if poller {
		b.ReportMetric(float64(worst.Microseconds())/1000, "max-poller-commit-ms")
	}
}

// pollerCommits stores and handles one update a millisecond until stop, then
// sends the longest time one took.
func pollerCommits(b *testing.B, db *DB, id int, at time.Time, stop <-chan struct{}, waited chan<- time.Duration) {
	var worst time.Duration
	for {
		select {
		case <-stop:
			waited <- worst
			return
		case <-time.After(time.Millisecond):
		}
		start := time.Now()
		if _, err := db.InboxAdd([]InboxEntry{{ID: id, Payload: []byte("{}")}}); err != nil {
			b.Error(err)
		}
		if err := db.InboxDone([]int{id}, at); err != nil {
			b.Error(err)
		}
		worst = max(worst, time.Since(start))
		id++
	}
}

func benchPruneFloor(b *testing.B, n int) {
	bolt, err := bbolt.Open(filepath.Join(b.TempDir(), "floor.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer bolt.Close()
	name := []byte("handled")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		err := bolt.Update(func(tx *bbolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			bk.FillPercent = appendFill
			v := make([]byte, 8)
			for id := 1; id <= n; id++ {
				if err := bk.Put(idKey(int64(id)), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for done := false; !done; {
			err := bolt.Update(func(tx *bbolt.Tx) error {
				// The fastest simple way: one key buffer, one reused cursor.
				keys := make([]byte, 0, 8*inboxPruneBatch)
				c := tx.Bucket(name).Cursor()
				for k, _ := c.First(); k != nil && len(keys) < cap(keys); k, _ = c.Next() {
					keys = append(keys, k...)
				}
				done = len(keys) < cap(keys)
				for i := 0; i < len(keys); i += 8 {
					c.Seek(keys[i : i+8])
					if err := c.Delete(); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}

// fillHandled adds n updates from id next on and marks them handled at at,
// in poller-sized batches, and returns the next free id.
func fillHandled(tb testing.TB, db *DB, next, n int, at time.Time) int {
	tb.Helper()
	const batch = 5000
	payload := []byte(`{"update_id":0}`)
	for left := n; left > 0; left -= batch {
		size := min(batch, left)
		es := make([]InboxEntry, size)
		ids := make([]int, size)
		for i := range es {
			es[i] = InboxEntry{ID: next, Payload: payload}
			ids[i] = next
			next++
		}
		if _, err := db.InboxAdd(es); err != nil {
			tb.Fatal(err)
		}
		if err := db.InboxDone(ids, at); err != nil {
			tb.Fatal(err)
		}
	}
	return next
}
