package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/valex-ai/valex"
)

func TestOpenCreatesEveryBucket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	db := openAt(t, path, nil)
	if db.Path() != path {
		t.Errorf("Path = %q, want %q", db.Path(), path)
	}
	err := db.view(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s missing", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(); err != nil || v != len(migrations) {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, len(migrations))
	}
}

// A second opener of the same file gives up after the lock timeout instead
// of hanging (bbolt's own default is to wait forever).
func TestOpenLockTimeout(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		wantMin time.Duration
	}{
		{"explicit", 100 * time.Millisecond, 100 * time.Millisecond},
		{"default", 0, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "valex.db")
			openAt(t, path, nil)
			start := time.Now()
			db, err := Open(path, Options{Timeout: tt.timeout})
			if err == nil {
				_ = db.Close()
				t.Fatal("second Open succeeded, want a lock timeout")
			}
			if !errors.Is(err, bolterrors.ErrTimeout) {
				t.Errorf("error = %v, want bbolt's ErrTimeout", err)
			}
			// bbolt retries the lock every 50ms, so it may give up a bit early.
			if d := time.Since(start); d < tt.wantMin/2 || d > tt.wantMin+5*time.Second {
				t.Errorf("second Open gave up after %v, want about %v", d, tt.wantMin)
			}
		})
	}
}

func TestBackup(t *testing.T) {
	db := openTest(t, testCodec{})
	want := []valex.User{fullUser(1), fullUser(2), {ID: 3, Language: "en"}}
	for _, u := range want {
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.InboxAdd(entries(5, 6)); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "backup.db")
	n, err := db.Backup(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || n != fi.Size() || n == 0 {
		t.Fatalf("Backup returned %d; file: %v, %v", n, fi, err)
	}
	// The live store keeps working after a backup.
	if err := db.PutUser(fullUser(4)); err != nil {
		t.Fatal(err)
	}

	restored := openAt(t, path, testCodec{})
	var got []valex.User
	if err := restored.ForEachUser(func(u valex.User) error { got = append(got, u); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("backup has %d users, want %d", len(got), len(want))
	}
	for i := range want {
		checkUser(t, got[i], want[i])
	}
	if got := pendingIDs(t, restored); !slices.Equal(got, []int{5, 6}) {
		t.Errorf("backup pending = %v, want [5 6]", got)
	}
	if mark, _ := restored.InboxHighWater(); mark != 6 {
		t.Errorf("backup high-water = %d, want 6", mark)
	}
	if err := restored.Close(); err != nil {
		t.Fatal(err)
	}

	// Personal fields in the backup open only with the codec that sealed
	// them: the seam a per-user key uses to erase backups too.
	plain := openAt(t, path, PlainCodec{})
	if _, err := plain.User(1); err == nil {
		t.Error("backup user opened with the wrong codec")
	}
}

// writeV0 writes a file as a build without migrations would have left it:
// users but no meta bucket and no last-active index.
func writeV0(tb testing.TB, path string, users ...valex.User) {
	tb.Helper()
	b, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	codec := PlainCodec{}
	err = b.Update(func(tx *bbolt.Tx) error {
		bu, err := tx.CreateBucket(bucketUsers)
		if err != nil {
			return err
		}
		for _, u := range users {
			sealed, err := codec.Seal(u.ID, []byte(`{"n":"`+u.Nickname+`"}`))
			if err != nil {
				return err
			}
			v, err := encodeUserRecord(userRecord{
				createdAt:    unixNano(u.CreatedAt),
				lastActiveAt: unixNano(u.LastActiveAt),
				language:     u.Language,
				sealed:       sealed,
			})
			if err != nil {
				return err
			}
			if err := bu.Put(idKey(u.ID), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func TestMigrationsFromV0(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v0.db")
	a := valex.User{ID: 1, Nickname: "a", LastActiveAt: t0}
	b := valex.User{ID: 2, Nickname: "b", LastActiveAt: t0.Add(time.Hour)}
	writeV0(t, path, a, b)

	for _, pass := range []string{"first open migrates", "reopen is a no-op"} {
		t.Run(pass, func(t *testing.T) {
			db := openAt(t, path, nil)
			if v, err := db.SchemaVersion(); err != nil || v != len(migrations) {
				t.Errorf("SchemaVersion = %d, %v; want %d", v, err, len(migrations))
			}
			for _, c := range []struct {
				before time.Time
				want   []int64
			}{
				{b.LastActiveAt, []int64{1}},
				{b.LastActiveAt.Add(1), []int64{1, 2}},
			} {
				if got := inactive(t, db, c.before); !slices.Equal(got, c.want) {
					t.Errorf("InactiveSince(%v) after migration = %v, want %v", c.before, got, c.want)
				}
			}
			if n := bucketLen(t, db, bucketUsersByActive); n != 2 {
				t.Errorf("index entries = %d, want 2", n)
			}
			u, err := db.User(2)
			if err != nil {
				t.Fatal(err)
			}
			checkUser(t, u, b)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The runner applies each migration once, in order, and only the ones the
// file lacks.
func TestMigrationRunner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	var ran []string
	mig := func(name string) func(*bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			ran = append(ran, name)
			// Each migration sees every bucket and the previous one's work.
			return tx.Bucket(bucketMeta).Put([]byte("ran_"+name), []byte("y"))
		}
	}
	errBoom := errors.New("boom")
	boom := func(*bbolt.Tx) error { return errBoom }
	m1, m2, m3 := mig("m1"), mig("m2"), mig("m3")

	steps := []struct {
		name        string
		migs        []func(*bbolt.Tx) error
		wantErr     bool
		wantRan     []string
		wantVersion int
	}{
		{"v0 runs all", []func(*bbolt.Tx) error{m1, m2}, false, []string{"m1", "m2"}, 2},
		{"reopen runs none", []func(*bbolt.Tx) error{m1, m2}, false, nil, 2},
		{"new migration runs alone", []func(*bbolt.Tx) error{m1, m2, m3}, false, []string{"m3"}, 3},
		{"older build refuses a newer file", []func(*bbolt.Tx) error{m1, m2}, true, nil, 3},
		{"failure stops, keeps what succeeded", []func(*bbolt.Tx) error{m1, m2, m3, m3, boom, m3}, true, []string{"m3"}, 4},
		{"after the fix it resumes", []func(*bbolt.Tx) error{m1, m2, m3, m3, m3, m3}, false, []string{"m3", "m3"}, 6},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			ran = nil
			db, err := open(path, Options{}, s.migs)
			if s.wantErr {
				if err == nil {
					_ = db.Close()
					t.Fatal("open succeeded, want error")
				}
			} else if err != nil {
				t.Fatalf("open: %v", err)
			} else if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ran, s.wantRan) {
				t.Errorf("ran %v, want %v", ran, s.wantRan)
			}
			if v := rawSchemaVersion(t, path); v != s.wantVersion {
				t.Errorf("schema version = %d, want %d", v, s.wantVersion)
			}
		})
	}
}

// rawSchemaVersion reads the version with bbolt alone, so reading it runs
// no migrations.
func rawSchemaVersion(tb testing.TB, path string) int {
	tb.Helper()
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	var v int
	if err := b.View(func(tx *bbolt.Tx) error {
		v, err = schemaVersion(tx)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestReadOnlyOpenLeavesTheFileUntouched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser(valex.User{ID: 1, Nickname: "n", Language: "en"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(path)
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := ro.User(1); err != nil || u.Nickname != "n" {
		t.Fatalf("read-only user = %+v, %v", u, err)
	}
	if err := ro.PutUser(valex.User{ID: 2, Nickname: "x"}); err == nil {
		t.Fatal("a write succeeded on a read-only store")
	}
	ro.Close()
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("opening read-only changed the file")
	}
	// A file from before the migrations is refused, not half-read.
	old := filepath.Join(t.TempDir(), "old.db")
	b, err := bbolt.Open(old, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := Open(old, Options{ReadOnly: true}); err == nil {
		t.Fatal("an unmigrated file opened read-only")
	}
}

// A file at the previous schema is copied (compacted) into the backup
// directory before the migration runs, keeps every record through it, and
// a file already current is not copied again.
func TestBackupBeforeMigrateKeepsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "valex.db")
	older, err := open(path, Options{}, migrations[:len(migrations)-1])
	if err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= 50; id++ {
		if err := older.PutUser(valex.User{ID: id, Nickname: fmt.Sprint("n", id), Language: "en"}); err != nil {
			t.Fatal(err)
		}
	}
	older.Close()
	backups := filepath.Join(dir, "backups")
	db, err := Open(path, Options{BackupBeforeMigrate: backups})
	if err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= 50; id++ {
		if u, err := db.User(id); err != nil || u.Nickname != fmt.Sprint("n", id) {
			t.Fatalf("user %d after the migration: %+v, %v", id, u, err)
		}
	}
	if v, _ := db.SchemaVersion(); v != SchemaLatest() {
		t.Fatalf("schema %d, want %d", v, SchemaLatest())
	}
	db.Close()
	entries, _ := os.ReadDir(backups)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), fmt.Sprintf("pre-migration-v%d-", len(migrations)-1)) {
		t.Fatalf("backups = %v", entries)
	}
	copyDB, err := open(filepath.Join(backups, entries[0].Name()), Options{}, migrations)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := copyDB.CountUsers(); n != 50 {
		t.Fatalf("the pre-migration backup holds %d users", n)
	}
	copyDB.Close()
	db, _ = Open(path, Options{BackupBeforeMigrate: backups})
	db.Close()
	if entries, _ = os.ReadDir(backups); len(entries) != 1 {
		t.Fatalf("a current file was backed up again: %v", entries)
	}
}
