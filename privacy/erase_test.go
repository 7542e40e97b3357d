package privacy_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/privacy"
	"github.com/valex-ai/valex/store"
)

func open(t *testing.T, dir string) (*store.Keys, *store.DB) {
	t.Helper()
	master := make([]byte, store.MasterKeyLen)
	keys, err := store.OpenKeys(filepath.Join(dir, "keys.db"), master, store.KeysOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "valex.db"), store.Options{Codec: keys})
	if err != nil {
		t.Fatal(err)
	}
	return keys, db
}

// stopper records when it was asked to stop a user's work, and whether the
// user's key still existed then: work must stop before the key goes, or a
// running answer could fail half-written.
type stopper struct {
	keys        *store.Keys
	calls       []int64
	keyAtCallOK bool
}

func (s *stopper) StopUser(_ context.Context, userID int64) int {
	s.calls = append(s.calls, userID)
	s.keyAtCallOK = s.keys.Has(userID)
	return 1
}

func seed(t *testing.T, db *store.DB, id int64) uint64 {
	t.Helper()
	now := time.Now()
	if _, _, err := db.EnsureUser(valex.User{ID: id, Nickname: "zq", Language: "en"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveExchange(id, 1, []valex.Turn{{Role: valex.TurnUser, Text: "q", At: now}}, nil); err != nil {
		t.Fatal(err)
	}
	tk, err := db.CreateTicket(valex.Request{UserID: id, Kind: valex.KindErasure, Status: valex.StatusNew, ReceivedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return tk.ID
}

func TestEraseStopsWorkThenKeyThenRecords(t *testing.T) {
	keys, db := open(t, t.TempDir())
	defer keys.Close()
	defer db.Close()
	ticket := seed(t, db, 7)
	seed(t, db, 8)
	st := &stopper{keys: keys}
	compactions := 0
	e := &privacy.Eraser{Work: st, Store: db, Keys: keys, Compact: func() { compactions++ }, Log: zerolog.Nop()}
	counts, err := e.Erase(context.Background(), 7, ticket, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.calls) != 1 || st.calls[0] != 7 || !st.keyAtCallOK {
		t.Fatalf("work stop: calls %v, key present then: %v", st.calls, st.keyAtCallOK)
	}
	if keys.Has(7) || !keys.Has(8) {
		t.Fatal("the wrong keys are gone")
	}
	if counts[store.CategoryConversations] != 1 || counts[store.CategoryRequests] != 1 {
		t.Fatalf("counts = %v", counts)
	}
	if _, err := db.User(7); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("user 7: %v", err)
	}
	tk, err := db.Ticket(ticket)
	if err != nil || tk.Status != valex.StatusDone || tk.UserID != 0 {
		t.Fatalf("erasure ticket: %+v %v", tk, err)
	}
	if compactions != 1 {
		t.Fatalf("%d compactions asked, want 1", compactions)
	}
	// Idempotent: a second run changes nothing and does not fail.
	if _, err := e.Erase(context.Background(), 7, 0, time.Now()); err != nil {
		t.Fatalf("erase again: %v", err)
	}
	if u, err := db.User(8); err != nil || u.Nickname != "zq" {
		t.Fatalf("user 8: %+v %v", u, err)
	}
}

// A stop after the journal entry and before the key deletion: the next
// start finishes the erasure with the same end state.
func TestResumeFinishesAnInterruptedErasure(t *testing.T) {
	dir := t.TempDir()
	keys, db := open(t, dir)
	ticket := seed(t, db, 7)
	if err := db.MarkErasure(7, ticket, time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	keys.Close()

	keys, db = open(t, dir) // "restart"
	defer keys.Close()
	defer db.Close()
	e := &privacy.Eraser{Store: db, Keys: keys, Log: zerolog.Nop()}
	n, err := e.Resume()
	if err != nil || n != 1 {
		t.Fatalf("resume: %d, %v", n, err)
	}
	if keys.Has(7) {
		t.Fatal("key survived the resumed erasure")
	}
	if _, err := db.User(7); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("user 7: %v", err)
	}
	tk, _ := db.Ticket(ticket)
	if tk.Status != valex.StatusDone || tk.UserID != 0 {
		t.Fatalf("erasure ticket after resume: %+v", tk)
	}
	if p, _ := db.PendingErasures(); len(p) != 0 {
		t.Fatalf("journal: %+v", p)
	}
	if n, err := e.Resume(); err != nil || n != 0 {
		t.Fatalf("second resume: %d, %v", n, err)
	}
}
