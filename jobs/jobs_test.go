package jobs

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
)

func TestBackupWritesReadableCopiesAndRotates(t *testing.T) {
	db := openStore(t)
	if err := db.PutUser(valex.User{ID: 7, Nickname: "kept", Language: "en"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	day := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		run := Backup(db, BackupConfig{Dir: dir, Keep: 3}, fixedClock{day.AddDate(0, 0, i)})
		if _, err := run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Idempotent: the same day again replaces, it does not add.
	if _, err := Backup(db, BackupConfig{Dir: dir, Keep: 3}, fixedClock{day.AddDate(0, 0, 4)})(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "valex-*.db"))
	if len(files) != 3 || filepath.Base(files[0]) != "valex-2026-11-03.db" {
		t.Fatalf("backups = %v, want the newest 3", files)
	}
	copyDB, err := store.Open(files[2], store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer copyDB.Close()
	if u, err := copyDB.User(7); err != nil || u.Nickname != "kept" {
		t.Fatalf("user in backup = %+v, %v", u, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestInboxPruneKeepsRecentIDs(t *testing.T) {
	db := openStore(t)
	now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	if _, err := db.InboxAdd([]valex.InboxEntry{{ID: 1, Payload: []byte("{}")}, {ID: 2, Payload: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	must(t, db.InboxDone([]int{1}, now.Add(-8*24*time.Hour)))
	must(t, db.InboxDone([]int{2}, now.Add(-time.Hour)))
	summary, err := InboxPrune(db, fixedClock{now})(context.Background())
	if err != nil || summary != "pruned 1 handled updates" {
		t.Fatalf("summary %q, err %v", summary, err)
	}
	var left []int
	must(t, db.InboxHandled(func(id int, _ time.Time) error { left = append(left, id); return nil }))
	if len(left) != 1 || left[0] != 2 {
		t.Fatalf("handled log after prune = %v", left)
	}
}
