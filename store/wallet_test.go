package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

func usageCost(userID, cost int64, at time.Time) []valex.AIUsage {
	return []valex.AIUsage{{UserID: userID, Model: "m", Capability: "chat", InputTokens: 10, OutputTokens: 10, Cost: cost, At: at}}
}

// 100 concurrent calls against a balance that pays for 10: exactly 10
// hold credits; once each is charged, the balance is exactly zero.
func TestReserveNeverOverdraws(t *testing.T) {
	_, db := openKeyed(t, t.TempDir())
	mustAccount(t, db, 7)
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	if _, err := db.AddCredits(7, 10*1000); err != nil {
		t.Fatal(err)
	}
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	ids := make(chan uint64, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := db.Reserve(7, 1000, 0, now)
			switch {
			case err == nil:
				ok.Add(1)
				ids <- id
			case errors.Is(err, valex.ErrNoCredits):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(ids)
	if ok.Load() != 10 || refused.Load() != 90 {
		t.Fatalf("%d reserved, %d refused; want 10 and 90", ok.Load(), refused.Load())
	}
	for id := range ids {
		if err := db.SaveExchangeCharged(7, 1, nil, usageCost(7, 1000, now), valex.Charge{Reservation: id, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := db.Wallet(7)
	if w.Balance != 0 || w.Reserved != 0 {
		t.Fatalf("wallet after charging = %+v", w)
	}
	if _, err := db.Reserve(7, 1, 0, now); !errors.Is(err, valex.ErrNoCredits) {
		t.Fatalf("a call on an empty wallet: %v", err)
	}
}

// The daily allowance pays first and comes back with the UTC date; a
// released (failed) call costs nothing; a call may cost less than it held;
// a call of a user erased meanwhile recreates nothing.
func TestAllowanceChargeRelease(t *testing.T) {
	_, db := openKeyed(t, t.TempDir())
	mustAccount(t, db, 8)
	day1 := time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC)
	db.AddCredits(8, 500)
	id, err := db.Reserve(8, 1200, 1000, day1) // 1000 allowance + 500 balance
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Reserve(8, 400, 1000, day1); !errors.Is(err, valex.ErrNoCredits) {
		t.Fatalf("a second hold over what is left: %v", err)
	}
	if err := db.SaveExchangeCharged(8, 1, nil, usageCost(8, 1100, day1), valex.Charge{Reservation: id, Allowance: 1000, Now: day1}); err != nil {
		t.Fatal(err)
	}
	w, _ := db.Wallet(8)
	if w.Used != 1000 || w.Balance != 400 || w.Reserved != 0 {
		t.Fatalf("after the charge: %+v", w)
	}
	id, _ = db.Reserve(8, 300, 1000, day1)
	db.Release(id)
	if w, _ = db.Wallet(8); w.Balance != 400 || w.Reserved != 0 {
		t.Fatalf("a released call was charged: %+v", w)
	}
	day2 := day1.Add(2 * time.Hour) // the next UTC day: the allowance is back
	if got := w.Available(1000, day2); got != 1400 {
		t.Fatalf("available the next day = %d, want 1400", got)
	}
	id, _ = db.Reserve(8, 100, 1000, day2)
	if _, err := db.EraseUser(8, 0, day2, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveExchangeCharged(8, 1, nil, usageCost(8, 100, day2), valex.Charge{Reservation: id, Allowance: 1000, Now: day2}); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("charging an erased user: %v", err)
	}
	if n := bucketLen(t, db, bucketWallets); n != 0 {
		t.Fatalf("%d wallets after the erasure", n)
	}
	if w, _ := db.Wallet(8); w.Reserved != 0 {
		t.Fatalf("the erased user's hold stayed: %+v", w)
	}
}

// BenchmarkReserveCharge is what credits add to an AI call: the hold and
// the charge inside the commit that records the call, beside the floor of
// that commit alone (SaveExchange, uncharged) in the same run. Wall time is
// mostly the commit's fsync, which varies with the disk; cpu-µs/op is the
// figure to compare.
//
//	go test ./store -run '^$' -bench BenchmarkReserveCharge -count 5
func BenchmarkReserveCharge(b *testing.B) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	turns := []valex.Turn{{Role: valex.TurnUser, Text: "hi", Tokens: 1, At: now}, {Role: valex.TurnAssistant, Text: "hello", Tokens: 1, At: now}}
	b.Run("floor-uncharged", func(b *testing.B) {
		_, db := openKeyed(b, b.TempDir())
		mustAccount(b, db, 9)
		cpu0 := cpuTime()
		defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op") }()
		for range b.N {
			if err := db.SaveExchange(9, 1, turns, usageCost(9, 900, now)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reserve+charge", func(b *testing.B) {
		_, db := openKeyed(b, b.TempDir())
		mustAccount(b, db, 9)
		db.AddCredits(9, 1<<50)
		cpu0 := cpuTime()
		defer func() { b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op") }()
		for range b.N {
			id, err := db.Reserve(9, 1000, 0, now)
			if err != nil {
				b.Fatal(err)
			}
			if err := db.SaveExchangeCharged(9, 1, turns, usageCost(9, 900, now), valex.Charge{Reservation: id, Now: now}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reserve-100-concurrent", func(b *testing.B) {
		_, db := openKeyed(b, b.TempDir())
		mustAccount(b, db, 9)
		db.AddCredits(9, 1<<50)
		b.SetParallelism(50) // ×2 cores = 100 goroutines
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id, err := db.Reserve(9, 1000, 0, now)
				if err != nil {
					b.Fatal(err)
				}
				db.Release(id)
			}
		})
	})
}

// A daily cap the user set stops calls once the day's spending reaches
// it, whatever the balance, and lifts the next UTC day.
func TestDailyCap(t *testing.T) {
	_, db := openKeyed(t, t.TempDir())
	mustAccount(t, db, 5)
	day := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	db.AddCredits(5, 1_000_000)
	if err := db.SetDailyCap(5, 3000); err != nil {
		t.Fatal(err)
	}
	id, err := db.Reserve(5, 2000, 0, day)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveExchangeCharged(5, 1, nil, usageCost(5, 2000, day), valex.Charge{Reservation: id, Now: day}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Reserve(5, 1500, 0, day); !errors.Is(err, valex.ErrDailyCap) {
		t.Fatalf("a call past the cap: %v", err)
	}
	held, err := db.Reserve(5, 1000, 0, day)
	if err != nil {
		t.Fatalf("a call within the cap: %v", err)
	}
	db.Release(held)
	if _, err := db.Reserve(5, 2500, 0, day.Add(24*time.Hour)); err != nil {
		t.Fatalf("the next day: %v", err)
	}
}

// An exchange is saved and charged once per update and capability: the
// same call made again by a replay of its update after a crash saves and
// charges nothing more; another capability of the same update (a voice
// message's transcript, then its answer) and another update are charged.
func TestChargedOncePerUpdate(t *testing.T) {
	_, db := openKeyed(t, t.TempDir())
	mustAccount(t, db, 6)
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	if _, err := db.AddCredits(6, 10_000); err != nil {
		t.Fatal(err)
	}
	save := func(update int64, capability string) {
		t.Helper()
		turns := []valex.Turn{{Role: valex.TurnUser, Text: "q", At: now}, {Role: valex.TurnAssistant, Text: "a", At: now}}
		saveCall(t, db, 6, capability, turns, valex.Charge{Now: now, Update: update})
	}
	save(501, "chat")
	save(501, "chat") // the replay
	save(501, "transcribe")
	save(502, "chat")
	w, _ := db.Wallet(6)
	if w.Balance != 7000 || w.Reserved != 0 {
		t.Fatalf("wallet = %+v, want 3 calls charged (7000 left), nothing held", w)
	}
	day, _, err := db.UsageTotals(6, now)
	if err != nil {
		t.Fatal(err)
	}
	var calls int64
	for _, d := range day {
		calls += d.Calls
	}
	if calls != 3 {
		t.Fatalf("usage totals %+v: %d calls, want 3", day, calls)
	}
	turns, _, err := db.RecentTurns(6, 1, 1000, 0)
	if err != nil || len(turns) != 6 {
		t.Fatalf("%d turns (%v), want 3 exchanges' 6", len(turns), err)
	}
}

// Chat turns saved at the same time share a commit (one disk sync): the
// write path's commits do not grow with the number of turns in flight.
func TestConcurrentExchangesShareCommits(t *testing.T) {
	_, db := openKeyed(t, t.TempDir())
	const n = 64
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for u := int64(1); u <= n; u++ {
		mustAccount(t, db, u)
	}
	before := db.Commits()
	var wg sync.WaitGroup
	for u := int64(1); u <= n; u++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			turns := []valex.Turn{{Role: valex.TurnUser, Text: "q", At: now}, {Role: valex.TurnAssistant, Text: "a", At: now}}
			if err := db.SaveExchangeCharged(u, 1, turns, usageCost(u, 0, now), valex.Charge{Update: 1000 + u}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	commits := db.Commits() - before
	if commits < 1 || commits > n/4 {
		t.Fatalf("%d exchanges saved at once took %d commits, want at most %d", n, commits, n/4)
	}
	for u := int64(1); u <= n; u++ {
		if turns, _, err := db.RecentTurns(u, 1, 1000, 0); err != nil || len(turns) != 2 {
			t.Fatalf("user %d: %d turns (%v)", u, len(turns), err)
		}
	}
	t.Logf("%d exchanges, %d commits", n, commits)
}

// A turn's last write carries its update's handled mark (Charge.EndsUpdate):
// one commit for the exchange, the charge and the mark. A write that does
// not end the update (a voice transcript) leaves it pending.
func TestExchangeThatEndsItsUpdateMarksItHandled(t *testing.T) {
	_, db := openKeyed(t, t.TempDir())
	mustAccount(t, db, 6)
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	if _, err := db.AddCredits(6, 10_000); err != nil {
		t.Fatal(err)
	}
	if _, err := db.InboxAddDone([]InboxEntry{{ID: 701, Payload: []byte(`{"update_id":701}`), UserID: 6}, {ID: 702, Payload: []byte(`{"update_id":702}`), UserID: 6}}, nil, now); err != nil {
		t.Fatal(err)
	}
	save := func(update int64, capability string, ends bool) {
		t.Helper()
		saveCall(t, db, 6, capability, nil, valex.Charge{Now: now, Update: update, EndsUpdate: ends})
	}
	pending := func() []int {
		t.Helper()
		es, err := db.InboxPending()
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, e := range es {
			ids = append(ids, e.ID)
		}
		return ids
	}
	save(701, "transcribe", false)
	if got := pending(); len(got) != 2 {
		t.Fatalf("pending %v after a write that does not end the update", got)
	}
	save(701, "chat", true)
	if got := pending(); len(got) != 1 || got[0] != 702 {
		t.Fatalf("pending %v, want [702]", got)
	}
	save(702, "chat", true)
	save(702, "chat", true) // a replay: charged once, still handled
	if got := pending(); len(got) != 0 {
		t.Fatalf("pending %v, want none", got)
	}
	if w, _ := db.Wallet(6); w.Balance != 7000 {
		t.Errorf("balance %d, want 7000 (three calls)", w.Balance)
	}
}

// saveCall holds 1,000 micro-credits for a call of capability by user and
// saves it (with turns, in conversation 1) charged as c says.
func saveCall(t *testing.T, db *DB, user int64, capability string, turns []valex.Turn, c valex.Charge) {
	t.Helper()
	id, err := db.Reserve(user, 1000, 0, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	u := usageCost(user, 1000, c.Now)
	u[0].Capability = capability
	c.Reservation = id
	if err := db.SaveExchangeCharged(user, 1, turns, u, c); err != nil {
		t.Fatal(err)
	}
}
