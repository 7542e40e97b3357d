package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// BenchmarkInboxPrune prunes a handled log of n entries that all expired, at
// sizes a busy bot reaches in a week (the daily prune of a bot handling
// 2.6 M updates a day removes a day's worth). The cost per entry must stay
// flat as n grows: the old prune re-seeked from the start after every
// delete (quadratic: 1 M entries took 69 s).
//
// The floor, in the same run, is the least any prune must do: a bare bbolt
// loop deleting the same n sequential keys from one bucket, in transactions
// of the same size. The prune deletes two keys per entry (the log and its
// time index), so about twice the floor is the expected figure.
func BenchmarkInboxPrune(b *testing.B) {
	for _, n := range []int{125_000, 250_000, 500_000} {
		b.Run(fmt.Sprintf("valex/n=%d", n), func(b *testing.B) {
			db := openTest(b, nil)
			at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			next := 1
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				next = fillHandled(b, db, next, n, at)
				b.StartTimer()
				got, err := db.InboxPruneHandled(at.Add(time.Hour))
				if err != nil || got != n {
					b.Fatalf("pruned %d (%v), want %d", got, err, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
		})
		b.Run(fmt.Sprintf("floor/n=%d", n), func(b *testing.B) {
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
						c := tx.Bucket(name).Cursor()
						var keys [][]byte
						for k, _ := c.First(); k != nil && len(keys) < inboxPruneBatch; k, _ = c.Next() {
							keys = append(keys, append([]byte(nil), k...))
						}
						done = len(keys) < inboxPruneBatch
						for _, k := range keys {
							if err := tx.Bucket(name).Delete(k); err != nil {
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
		})
	}
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
