package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

// statusesOf reads a notice's deliveries back as user → status.
func statusesOf(tb testing.TB, db *DB, noticeID uint64) map[int64]valex.DeliveryStatus {
	tb.Helper()
	ds, err := db.Deliveries(noticeID)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[int64]valex.DeliveryStatus{}
	for _, d := range ds {
		out[d.UserID] = d.Status
	}
	return out
}

// The life of a broadcast's records: claims before sending, outcomes in
// batches after, claims of unsent messages released, claims left by a
// crash expired to "uncertain". Each step is checked against the records
// and the totals the admin is shown.
func TestClaimsAndBatchedDeliveries(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 1, 2, 3, 4, 5)
	n, err := db.CreateNotice(valex.Notice{Kind: valex.NoticePolicyUpdate, Text: "2", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	d := func(user int64, st valex.DeliveryStatus) valex.Delivery {
		return valex.Delivery{NoticeID: n.ID, UserID: user, Status: st, At: at}
	}
	if err := db.RecordDeliveries([]valex.Delivery{d(2, valex.DeliveryDelivered), d(3, valex.DeliveryFailed)}); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name       string
		do         func() (any, error)
		wantResult string // fmt of the result
		want       map[int64]valex.DeliveryStatus
		totals     map[valex.DeliveryStatus]int
	}{
		{
			name: "claim: an outcome other than failed, and an id without an account, are left out",
			do:   func() (any, error) { return db.ClaimDeliveries(n.ID, []int64{1, 2, 3, 4, 99}, at) },
			// 3 failed before: claimed again (a failed user is tried again).
			wantResult: "[1 3 4]",
			want:       map[int64]valex.DeliveryStatus{1: "sending", 2: "delivered", 3: "sending", 4: "sending"},
			totals:     map[valex.DeliveryStatus]int{"delivered": 1},
		},
		{
			name:       "claim again: a claimed user is nobody else's",
			do:         func() (any, error) { return db.ClaimDeliveries(n.ID, []int64{1, 3, 4}, at) },
			wantResult: "[]",
			want:       map[int64]valex.DeliveryStatus{1: "sending", 2: "delivered", 3: "sending", 4: "sending"},
			totals:     map[valex.DeliveryStatus]int{"delivered": 1},
		},
		{
			name: "outcomes replace claims in one batch",
			do: func() (any, error) {
				return nil, db.RecordDeliveries([]valex.Delivery{d(1, valex.DeliveryDelivered), d(3, valex.DeliveryBlocked)})
			},
			wantResult: "<nil>",
			want:       map[int64]valex.DeliveryStatus{1: "delivered", 2: "delivered", 3: "blocked", 4: "sending"},
			totals:     map[valex.DeliveryStatus]int{"delivered": 2, "blocked": 1},
		},
		{
			name:       "release: the unsent claim goes, an outcome stays",
			do:         func() (any, error) { return nil, db.ReleaseClaims(n.ID, []int64{4, 1}) },
			wantResult: "<nil>",
			want:       map[int64]valex.DeliveryStatus{1: "delivered", 2: "delivered", 3: "blocked"},
			totals:     map[valex.DeliveryStatus]int{"delivered": 2, "blocked": 1},
		},
		{
			name:       "a released user can be claimed again",
			do:         func() (any, error) { return db.ClaimDeliveries(n.ID, []int64{4, 5}, at) },
			wantResult: "[4 5]",
			want:       map[int64]valex.DeliveryStatus{1: "delivered", 2: "delivered", 3: "blocked", 4: "sending", 5: "sending"},
			totals:     map[valex.DeliveryStatus]int{"delivered": 2, "blocked": 1},
		},
		{
			name: "a crash: 5's outcome is recorded, 4's claim is left; on resume it expires to uncertain",
			do: func() (any, error) {
				if err := db.RecordDeliveries([]valex.Delivery{d(5, valex.DeliverySkipped)}); err != nil {
					return nil, err
				}
				return db.ExpireClaims(n.ID, at)
			},
			wantResult: "1",
			want:       map[int64]valex.DeliveryStatus{1: "delivered", 2: "delivered", 3: "blocked", 4: "uncertain", 5: "skipped"},
			totals:     map[valex.DeliveryStatus]int{"delivered": 2, "blocked": 1, "uncertain": 1, "skipped": 1},
		},
		{
			name:       "expiring again finds nothing",
			do:         func() (any, error) { return db.ExpireClaims(n.ID, at) },
			wantResult: "0",
			want:       map[int64]valex.DeliveryStatus{1: "delivered", 2: "delivered", 3: "blocked", 4: "uncertain", 5: "skipped"},
			totals:     map[valex.DeliveryStatus]int{"delivered": 2, "blocked": 1, "uncertain": 1, "skipped": 1},
		},
		{
			name:       "uncertain is final: never claimed again",
			do:         func() (any, error) { return db.ClaimDeliveries(n.ID, []int64{1, 2, 3, 4, 5}, at) },
			wantResult: "[]",
			want:       map[int64]valex.DeliveryStatus{1: "delivered", 2: "delivered", 3: "blocked", 4: "uncertain", 5: "skipped"},
			totals:     map[valex.DeliveryStatus]int{"delivered": 2, "blocked": 1, "uncertain": 1, "skipped": 1},
		},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if fmt.Sprint(got) != st.wantResult {
			t.Fatalf("%s: result %v, want %s", st.name, got, st.wantResult)
		}
		if s := statusesOf(t, db, n.ID); fmt.Sprint(s) != fmt.Sprint(st.want) {
			t.Fatalf("%s: deliveries %v, want %v", st.name, s, st.want)
		}
		cur, err := db.Notice(n.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(valex.DeliveryStatuses, valex.DeliverySending) {
			if cur.Totals[s] != st.totals[s] {
				t.Fatalf("%s: totals %v, want %v", st.name, cur.Totals, st.totals)
			}
		}
	}
}

func TestRecordDeliveriesRefusals(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 1)
	n, err := db.CreateNotice(valex.Notice{Kind: valex.NoticeMarketing, Text: "x", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ds   []valex.Delivery
		want error // nil: any error
	}{
		{"a claim is not an outcome", []valex.Delivery{{NoticeID: n.ID, UserID: 1, Status: valex.DeliverySending}}, nil},
		{"unknown status", []valex.Delivery{{NoticeID: n.ID, UserID: 1, Status: "lost"}}, nil},
		{"no user", []valex.Delivery{{NoticeID: n.ID, Status: valex.DeliveryDelivered}}, nil},
		{"missing notice", []valex.Delivery{{NoticeID: 99, UserID: 1, Status: valex.DeliveryDelivered}}, valex.ErrNotFound},
	}
	for _, tt := range tests {
		err := db.RecordDeliveries(tt.ds)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if s := statusesOf(t, db, n.ID); len(s) != 0 {
		t.Fatalf("a refused batch wrote %v", s)
	}
	if _, err := db.ClaimDeliveries(99, []int64{1}, t0); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("claim for a missing notice: %v", err)
	}
}

// A user erased between their claim and their outcome: the erasure takes
// the claim, the outcome is passed over (the rest of the batch is kept),
// and nothing keyed by them is left.
func TestErasedWhileClaimed(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 1, 2)
	n, err := db.CreateNotice(valex.Notice{Kind: valex.NoticeBreach, Text: "x", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := db.ClaimDeliveries(n.ID, []int64{1, 2}, t0); err != nil || len(got) != 2 {
		t.Fatalf("claim = %v, %v", got, err)
	}
	if _, err := db.EraseUser(2, 0, t0, nil); err != nil {
		t.Fatal(err)
	}
	err = db.RecordDeliveries([]valex.Delivery{
		{NoticeID: n.ID, UserID: 1, Status: valex.DeliveryDelivered, At: t0},
		{NoticeID: n.ID, UserID: 2, Status: valex.DeliveryDelivered, At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := statusesOf(t, db, n.ID); fmt.Sprint(s) != "map[1:delivered]" {
		t.Fatalf("deliveries = %v", s)
	}
	if hits := keysContaining(t, db, idKey(2)); hits[string(bucketDeliveries)]+hits[string(bucketDeliveriesByUser)] != 0 {
		t.Fatalf("records keyed by the erased user: %v", hits)
	}
}

// One transaction for a batch: 1,000 outcomes recorded in batches of 100
// cost 10 commits, against 1,000 one by one.
func BenchmarkRecordDeliveries(b *testing.B) {
	const users, batch = 1000, 100
	for _, mode := range []string{"one_by_one", "batches_of_100"} {
		b.Run(mode, func(b *testing.B) {
			db := openTest(b, nil)
			ids := make([]int64, users)
			for i := range ids {
				ids[i] = int64(i + 1)
			}
			mustAccount(b, db, ids...)
			b.ResetTimer()
			for range b.N {
				n, err := db.CreateNotice(valex.Notice{Kind: valex.NoticePolicyUpdate, Text: "v", CreatedAt: t0})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				for i := 0; i < users; i += batch {
					ds := make([]valex.Delivery, 0, batch)
					for _, id := range ids[i : i+batch] {
						ds = append(ds, valex.Delivery{NoticeID: n.ID, UserID: id, Status: valex.DeliveryDelivered, At: t0})
					}
					if mode == "one_by_one" {
						for _, d := range ds {
							if err := db.RecordDelivery(d); err != nil {
								b.Fatal(err)
							}
						}
						continue
					}
					if err := db.RecordDeliveries(ds); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(users)/time.Since(start).Seconds(), "deliveries/s")
			}
		})
	}
}

// UndeliveredBreaches skips its read while no breach notice exists, and
// still finds a blocked delivery as soon as one does — in this run and
// after a restart.
func TestUndeliveredBreachesAfterTheFirstBreach(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	db := openAt(t, path, nil)
	mustAccount(t, db, 1)
	undelivered := func(db *DB) int {
		t.Helper()
		ns, err := db.UndeliveredBreaches(1)
		if err != nil {
			t.Fatal(err)
		}
		return len(ns)
	}
	if n := undelivered(db); n != 0 {
		t.Fatalf("%d undelivered breach notices before any", n)
	}
	if _, err := db.CreateNotice(valex.Notice{Kind: valex.NoticeMarketing, Text: "m", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	n, err := db.CreateNotice(valex.Notice{Kind: valex.NoticeBreach, Text: "b", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RecordDelivery(valex.Delivery{NoticeID: n.ID, Kind: n.Kind, UserID: 1, Status: valex.DeliveryBlocked, At: t0}); err != nil {
		t.Fatal(err)
	}
	if got := undelivered(db); got != 1 {
		t.Fatalf("%d undelivered breach notices, want 1", got)
	}
	db.Close()
	db = openAt(t, path, nil)
	if got := undelivered(db); got != 1 {
		t.Fatalf("after a restart: %d undelivered breach notices, want 1", got)
	}
}
