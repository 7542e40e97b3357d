package store

import (
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

// An update opens one ticket however often it is handled: a replay after a
// crash gets the ticket back, marked Replayed, with one audit trail. Once
// the update can no longer come back (its handled entry pruned), the index
// forgets it.
func TestTicketOncePerUpdate(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 7)
	if _, err := db.InboxAdd(entries(41, 42)); err != nil {
		t.Fatal(err)
	}
	r := newTicket(t, valex.KindSupport, 7, "my invoice", t0)
	r.SourceUpdate = 41
	first := mustCreate(t, db, r)
	again := mustCreate(t, db, r)
	if again.ID != first.ID || !again.Replayed || first.Replayed || again.Text != "my invoice" {
		t.Fatalf("first %d (replayed %v), again %d (replayed %v, text %q)", first.ID, first.Replayed, again.ID, again.Replayed, again.Text)
	}
	other := r
	other.SourceUpdate = 42
	if second := mustCreate(t, db, other); second.ID == first.ID || second.Replayed {
		t.Fatalf("another update got ticket %d (replayed %v)", second.ID, second.Replayed)
	}
	none := r
	none.SourceUpdate = 0 // a job: no key, a ticket each time
	a, b := mustCreate(t, db, none), mustCreate(t, db, none)
	if a.ID == b.ID {
		t.Fatal("tickets without an update were merged")
	}
	trail, err := db.Audit(first.ID)
	if err != nil || len(trail) != 1 {
		t.Fatalf("audit trail of the replayed ticket: %d entries (%v), want 1", len(trail), err)
	}
	if got := bucketLen(t, db, bucketTicketsByUpdate); got != 2 {
		t.Fatalf("index holds %d entries, want 2", got)
	}
	// Update 41 handled and pruned; 42 still pending: only 41 is forgotten.
	if err := db.InboxDone([]int{41}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.InboxPruneHandled(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := bucketLen(t, db, bucketTicketsByUpdate); got != 1 {
		t.Fatalf("after the prune the index holds %d entries, want 1", got)
	}
}
