package store

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// BenchmarkCompact compacts a fragmented file: values of 200–2000 bytes
// under random keys in four buckets, half of them then deleted at random
// (the shape the issue measured: 1.38 GB that compacts to 416 MB). The file
// is 200 MB by default; VALEX_BENCH_COMPACT_MB=1024 builds the 1 GB case.
// Each op copies the fragmented template into place (not timed), opens it
// and compacts it online while a writer keeps committing small
// transactions; ns/op is the whole compaction, which is also the pause:
// max-write-wait-ms is the longest a write waited, as the bot would.
//
//	go test ./store -run '^$' -bench BenchmarkCompact$ -benchtime 1x -count 5
func BenchmarkCompact(b *testing.B) {
	mb := 200
	if s := os.Getenv("VALEX_BENCH_COMPACT_MB"); s != "" {
		var err error
		if mb, err = strconv.Atoi(s); err != nil {
			b.Fatalf("VALEX_BENCH_COMPACT_MB: %v", err)
		}
	}
	dir := b.TempDir()
	template := filepath.Join(dir, "template.db")
	buildFragmented(b, template, int64(mb)<<20)
	// The bot below writes state for users 1..100: they need accounts.
	tdb := openAt(b, template, nil)
	for id := int64(1); id <= 100; id++ {
		mustAccount(b, tdb, id)
	}
	if err := tdb.Close(); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "valex.db")

	var before, after int64
	var maxWait time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		copyFile(b, template, path)
		db, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var worst atomic.Int64
		wg.Add(1)
		go func() { // a bot handling updates
			defer wg.Done()
			for id := 1; ; id++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				if err := db.SetState(int64(id%100+1), "x"); err != nil {
					b.Error(err)
					return
				}
				if d := int64(time.Since(start)); d > worst.Load() {
					worst.Store(d)
				}
				time.Sleep(time.Millisecond)
			}
		}()
		time.Sleep(20 * time.Millisecond)
		b.StartTimer()
		before, after, err = db.Compact()
		b.StopTimer()
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}
		maxWait = max(maxWait, time.Duration(worst.Load()))
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(before)/(1<<20), "before-MB")
	b.ReportMetric(float64(after)/(1<<20), "after-MB")
	b.ReportMetric(float64(maxWait)/float64(time.Millisecond), "max-write-wait-ms")
}

// buildFragmented writes a store file of about size bytes, then deletes
// half of its values at random.
func buildFragmented(tb testing.TB, path string, size int64) {
	tb.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.bolt.NoSync = true // building the fixture; syncing does not change the layout
	rng := rand.New(rand.NewPCG(1, 2))
	names := [][]byte{[]byte("bench_a"), []byte("bench_b"), []byte("bench_c"), []byte("bench_d")}
	type ref struct {
		bucket int
		key    uint64
	}
	var refs []ref
	val := make([]byte, 2000)
	for {
		err := db.update(func(tx *bbolt.Tx) error {
			for i := 0; i < 20000; i++ {
				r := ref{rng.IntN(len(names)), rng.Uint64()}
				b, err := tx.CreateBucketIfNotExists(names[r.bucket])
				if err != nil {
					return err
				}
				v := val[:200+rng.IntN(1800)]
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				if err := b.Put(idKey(int64(r.key)), v); err != nil {
					return err
				}
				refs = append(refs, r)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil {
			tb.Fatal(err)
		} else if fi.Size() >= size {
			break
		}
	}
	rng.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
	refs = refs[:len(refs)/2]
	for len(refs) > 0 {
		batch := refs[:min(len(refs), 50000)]
		refs = refs[len(batch):]
		err := db.update(func(tx *bbolt.Tx) error {
			for _, r := range batch {
				if err := tx.Bucket(names[r.bucket]).Delete(idKey(int64(r.key))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	in, err := os.Open(src)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkYearOfTraffic runs a simulated year through the real store
// methods and reports the file size at the end, without compaction and with
// the compact job's policy (checked daily: compact when 25 % of the file is
// free). Each day: 20 sign-ups, 60 AI exchanges (a 300-byte question and a
// 1,200-byte answer), 400 Telegram updates through the inbox in batches of
// 100 (handled log pruned after 7 days) and 3 erasures (profile and
// conversations); every 30 days a retention purge erases a quarter of the
// accounts (standing in for the inactive-account and conversation purges).
// The bot's policy is the last case: the compact job at 25 % plus a
// compaction after every erasure batch (the Compactor coalesces a day's
// erasures into one here). final-compacted-MB is what one compaction at
// the end of the year would leave.
//
//	go test ./store -run '^$' -bench BenchmarkYearOfTraffic -benchtime 1x -count 5
func BenchmarkYearOfTraffic(b *testing.B) {
	for _, tc := range []struct {
		name          string
		threshold     float64 // 0 = never on free space
		afterErasures bool
	}{
		{"compaction=none", 0, false},
		{"compaction=at25pct", 0.25, false},
		{"compaction=at25pct+after_erasures", 0.25, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var last yearResult
			for i := 0; i < b.N; i++ {
				last = simulateYear(b, filepath.Join(b.TempDir(), "valex.db"), tc.threshold, tc.afterErasures)
			}
			b.ReportMetric(float64(last.size)/(1<<20), "file-MB")
			b.ReportMetric(float64(last.peak)/(1<<20), "peak-file-MB")
			b.ReportMetric(float64(last.live)/(1<<20), "live-MB")
			b.ReportMetric(float64(last.compactions), "compactions")
			b.ReportMetric(float64(last.compacted)/(1<<20), "final-compacted-MB")
		})
	}
}

type yearResult struct {
	size, peak, live, compacted int64
	compactions                 int
}

func simulateYear(tb testing.TB, path string, threshold float64, afterErasures bool) yearResult {
	tb.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	nosync := func() { db.swap.Lock(); db.bolt.NoSync = true; db.swap.Unlock() } // size, not durability, is measured
	nosync()
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	text := func(n int) string {
		p := make([]byte, n)
		for i := range p {
			p[i] = 'a' + byte(rng.IntN(26))
		}
		return string(p)
	}
	var res yearResult
	var live []int64 // user ids not erased
	nextUser, nextUpdate := int64(1), 1
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for day := 0; day < 365; day++ {
		now := start.AddDate(0, 0, day)
		for i := 0; i < 20; i++ {
			u := valex.User{ID: nextUser, Nickname: text(12), City: text(10), Description: text(120),
				Email: text(16), Language: "en", CreatedAt: now, LastActiveAt: now}
			must(db.PutUser(u))
			live = append(live, nextUser)
			nextUser++
		}
		for i := 0; i < 60; i++ {
			id := live[rng.IntN(len(live))]
			must(db.SaveExchange(id, 1, []valex.Turn{
				{Role: valex.TurnUser, Text: text(300), Tokens: 75, At: now},
				{Role: valex.TurnAssistant, Text: text(1200), Tokens: 300, At: now},
			}, nil))
		}
		for batch := 0; batch < 4; batch++ {
			es := make([]InboxEntry, 100)
			ids := make([]int, 100)
			for i := range es {
				es[i] = InboxEntry{ID: nextUpdate, Payload: []byte(fmt.Sprintf(`{"update_id":%d,"message":{"text":%q}}`, nextUpdate, text(400)))}
				ids[i] = nextUpdate
				nextUpdate++
			}
			_, err := db.InboxAdd(es)
			must(err)
			must(db.InboxDone(ids, now))
		}
		_, err := db.InboxPruneHandled(now.AddDate(0, 0, -7))
		must(err)
		for i := 0; i < 3; i++ {
			j := rng.IntN(len(live))
			id := live[j]
			live = append(live[:j], live[j+1:]...)
			must(db.DeleteUser(id))
			_, err := db.EraseAI(id)
			must(err)
		}
		if day%30 == 29 {
			rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
			purge := live[:len(live)/4]
			live = live[len(purge):]
			for _, id := range purge {
				must(db.DeleteUser(id))
				_, err := db.EraseAI(id)
				must(err)
			}
		}
		st, err := db.Stats()
		must(err)
		res.peak = max(res.peak, st.FileSize)
		if (threshold > 0 && st.FreeRatio() >= threshold) || afterErasures {
			_, _, err := db.Compact()
			must(err)
			nosync()
			res.compactions++
		}
	}
	st, err := db.Stats()
	must(err)
	res.size = st.FileSize
	res.live = st.DataSize - st.FreeBytes
	res.peak = max(res.peak, st.FileSize)
	_, res.compacted, err = db.Compact()
	must(err)
	return res
}
