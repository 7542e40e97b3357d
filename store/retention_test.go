package store

import (
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// closedIndex lists the closed-tickets index as ticket ids, in key order.
func closedIndex(tb testing.TB, db *DB) []uint64 {
	tb.Helper()
	var ids []uint64
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTicketsClosed).ForEach(func(k, _ []byte) error {
			ids = append(ids, binary.BigEndian.Uint64(k[8:]))
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

func newClosable(tb testing.TB, db *DB, userID int64, at time.Time) uint64 {
	tb.Helper()
	r, err := valex.NewRequest(valex.KindFeedback, userID, "text", at, valex.DefaultSLAPolicy())
	if err != nil {
		tb.Fatal(err)
	}
	if r, err = db.CreateTicket(r); err != nil {
		tb.Fatal(err)
	}
	return r.ID
}

func closeTicket(tb testing.TB, db *DB, id uint64, at time.Time) {
	tb.Helper()
	_, err := db.UpdateTicket(id, 0, at, func(r *valex.Request) ([]valex.AuditEntry, error) {
		return nil, r.Transition(valex.StatusDone, 0, "ok", at)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func TestClosedIndexFollowsTicketsAndIsBackfilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	db := openAt(t, path, testCodec{})
	mustAccount(t, db, 1, 2)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a := newClosable(t, db, 1, t0)
	b := newClosable(t, db, 1, t0)
	c := newClosable(t, db, 2, t0)
	if got := closedIndex(t, db); len(got) != 0 {
		t.Fatalf("open tickets indexed as closed: %v", got)
	}
	closeTicket(t, db, b, t0.Add(time.Hour))
	closeTicket(t, db, a, t0.Add(2*time.Hour))
	if got := closedIndex(t, db); !slices.Equal(got, []uint64{b, a}) {
		t.Fatalf("closed index = %v, want [%d %d] (closing order)", got, b, a)
	}
	// Erasure anonymizes: nothing left to purge, so the entries go.
	erasure := newClosable(t, db, 1, t0)
	if _, err := db.EraseUser(1, erasure, t0.Add(3*time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	closeTicket(t, db, c, t0.Add(4*time.Hour))
	if got := closedIndex(t, db); !slices.Equal(got, []uint64{c}) {
		t.Fatalf("closed index after erasure = %v, want [%d]", got, c)
	}

	// A file written before the index existed: version 1, index empty.
	err := db.update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketTicketsClosed); err != nil {
			return err
		}
		return putUint64(tx, keySchemaVersion, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, testCodec{})
	if got := closedIndex(t, db); !slices.Equal(got, []uint64{c}) {
		t.Fatalf("backfilled index = %v, want [%d]", got, c)
	}
}

func TestPurgeStopsAtTheCutoffAndSpansBatches(t *testing.T) {
	db := openTest(t, testCodec{})
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.PutUser(valex.User{ID: 1, LastActiveAt: t0}))
	must(db.PutUser(valex.User{ID: 2, LastActiveAt: t0}))
	n := purgeBatch + 10
	for i := 0; i < n; i++ {
		uid := int64(1)
		if i%100 == 0 {
			uid = 2 // held
		}
		closeTicket(t, db, newClosable(t, db, uid, t0), t0.Add(time.Duration(i)*time.Minute))
	}
	must(db.SetHold(2, true, 9, t0))
	cutoff := t0.Add(time.Duration(n-5) * time.Minute) // the last 5 stay
	var asked []time.Time
	visited, purged, held, err := db.PurgeClosedTickets(t0.AddDate(1, 0, 0), func(closedAt time.Time) bool {
		asked = append(asked, closedAt)
		return closedAt.Before(cutoff)
	})
	must(err)
	wantHeld := (n - 5 + 99) / 100
	if visited != n-5 || held != wantHeld || purged != n-5-wantHeld {
		t.Fatalf("visited %d purged %d held %d, want %d %d %d", visited, purged, held, n-5, n-5-wantHeld, wantHeld)
	}
	if len(asked) != n-5+1 {
		t.Fatalf("asked about %d tickets, want the expired ones and the first that is not (%d)", len(asked), n-5+1)
	}
	if got := len(closedIndex(t, db)); got != 5+wantHeld {
		t.Fatalf("index holds %d, want %d", got, 5+wantHeld)
	}
	rep, err := db.VerifyAudit()
	if err != nil || !rep.OK() {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}
