package jobs

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

// fakeKeys stands in for store.Keys: it writes a recognisable snapshot.
type fakeKeys struct{ data string }

func (k fakeKeys) Backup(w io.Writer) (int64, error) {
	n, err := io.WriteString(w, k.data)
	return int64(n), err
}

func TestBackupKeepsKeySnapshotsForAWindowOnly(t *testing.T) {
	db := openStore(t)
	dir := t.TempDir()
	day := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	// Left by an older configuration with a longer window.
	for _, old := range []string{"keys-2026-09-01.db", "keys-2026-10-20.db"} {
		must(t, os.WriteFile(filepath.Join(dir, old), []byte("old key"), 0o600))
	}
	cfg := BackupConfig{Dir: dir, Keep: 30, Keys: fakeKeys{"key snapshot"}, KeyDays: 7}
	for i := 0; i < 10; i++ {
		if _, err := Backup(db, cfg, fixedClock{day.AddDate(0, 0, i)})(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "keys-*.db"))
	var want []string
	for i := 3; i < 10; i++ { // 2026-11-04 .. 2026-11-10: the last 7 days
		want = append(want, filepath.Join(dir, "keys-"+day.AddDate(0, 0, i).Format("2006-01-02")+".db"))
	}
	if len(keys) != len(want) {
		t.Fatalf("key snapshots = %v, want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("key snapshots = %v, want %v", keys, want)
		}
	}
	if got, err := os.ReadFile(keys[len(keys)-1]); err != nil || !bytes.Equal(got, []byte("key snapshot")) {
		t.Fatalf("newest key snapshot = %q, %v", got, err)
	}
	// Database backups follow Keep, not the key window.
	if dbs, _ := filepath.Glob(filepath.Join(dir, "valex-*.db")); len(dbs) != 10 {
		t.Fatalf("%d database backups, want 10", len(dbs))
	}

	// Without a key store, expired snapshots still go (and none are written).
	cfg.Keys = nil
	summary, err := Backup(db, cfg, fixedClock{day.AddDate(0, 0, 14)})(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys, _ = filepath.Glob(filepath.Join(dir, "keys-*.db"))
	if len(keys) != 2 { // of 11-04 .. 11-10, only 11-09 and 11-10 are within 7 days of 11-15
		t.Fatalf("key snapshots after a keyless run = %v (%s)", keys, summary)
	}
}

func TestBackupIsCompacted(t *testing.T) {
	db := openStore(t)
	dir := t.TempDir()
	day := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	const marker = "erased-nick-P4wq"
	must(t, db.PutUser(valex.User{ID: 42, Nickname: marker, Language: "en"}))
	must(t, db.DeleteUser(42))
	if _, err := Backup(db, BackupConfig{Dir: dir, Keep: 1}, fixedClock{day})(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "valex-2026-11-01.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(marker)) {
		t.Fatal("the backup holds a value deleted before it was taken")
	}
}

// Backups are rotated by size as well as by count: the oldest go until the
// kept ones fit the cap, and the newest stays even when it alone is larger.
func TestBackupRotatesBySize(t *testing.T) {
	tests := []struct {
		name     string
		keep     int
		maxBytes int64
		want     []string
	}{
		{"count only", 3, 0, []string{"valex-2026-11-03.db", "valex-2026-11-04.db", "valex-2026-11-05.db"}},
		{"size caps before count", 10, 2500, []string{"valex-2026-11-04.db", "valex-2026-11-05.db"}},
		{"count caps before size", 1, 1 << 30, []string{"valex-2026-11-05.db"}},
		{"the newest stays over the cap", 10, 10, []string{"valex-2026-11-05.db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for d := 1; d <= 5; d++ { // 1,000 bytes each, the newest 1,200
				size := 1000
				if d == 5 {
					size = 1200
				}
				name := filepath.Join(dir, "valex-2026-11-0"+string(rune('0'+d))+".db")
				must(t, os.WriteFile(name, bytes.Repeat([]byte("x"), size), 0o600))
			}
			removed, err := rotate(dir, tt.keep, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := stamped(dir, "valex-")
			if strings.Join(got, " ") != strings.Join(tt.want, " ") || removed != 5-len(tt.want) {
				t.Fatalf("kept %v (removed %d), want %v", got, removed, tt.want)
			}
		})
	}
}
