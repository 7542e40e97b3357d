package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
)

// verifyAudit checks under the key it is given: the right one says OK with
// the counts, any other (the development key included) fails and says so.
func TestAuditVerifyUnderTheKey(t *testing.T) {
	key := []byte("an audit key from the key store.")
	path := filepath.Join(t.TempDir(), "valex.db")
	db, err := store.Open(path, store.Options{AuditKey: key})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	if err := db.PutUser(valex.User{ID: 1, Nickname: "n", Language: "en", CreatedAt: now, LastActiveAt: now}); err != nil {
		t.Fatal(err)
	}
	r, err := valex.NewRequest(valex.KindAccess, 1, "", now, valex.DefaultSLAPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateTicket(r); err != nil {
		t.Fatal(err)
	}
	if err := db.SetHold(1, true, 7, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateNotice(valex.Notice{Kind: valex.NoticeBreach, Text: "t", CreatedAt: now, CreatedBy: 7}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var out strings.Builder
	if err := verifyAudit(path, key, &out); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), "audit OK: 1 trails, 1 entries, 2 system entries, 3 anchored in the global log (root ") {
		t.Fatalf("output = %q", out.String())
	}
	for _, other := range [][]byte{[]byte("another key"), nil} {
		out.Reset()
		if err := verifyAudit(path, other, &out); err == nil || !strings.Contains(out.String(), "all trails: wrong audit key") {
			t.Errorf("verify with key %q: %v, %q", other, err, out.String())
		}
	}
}
