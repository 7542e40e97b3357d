package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// bucketBulk is a test-only bucket: compaction copies every bucket, known or
// not.
var bucketBulk = []byte("test_bulk")

// putBulk writes n values of size bytes under keys from..from+n-1 in one
// transaction, and bumps the bucket's sequence to from+n.
func putBulk(tb testing.TB, db *DB, from, n, size int) {
	tb.Helper()
	err := db.update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketBulk)
		if err != nil {
			return err
		}
		for i := from; i < from+n; i++ {
			if err := b.Put(idKey(int64(i)), bulkValue(i, size)); err != nil {
				return err
			}
		}
		return b.SetSequence(uint64(from + n))
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func bulkValue(i, size int) []byte {
	v := bytes.Repeat([]byte{byte(i)}, size)
	binary.BigEndian.PutUint64(v, uint64(i))
	return v
}

// deleteBulk deletes the keys i in [from, to) with i%every == 0.
func deleteBulk(tb testing.TB, db *DB, from, to, every int) {
	tb.Helper()
	err := db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketBulk)
		for i := from; i < to; i += every {
			if err := b.Delete(idKey(int64(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func fileSize(tb testing.TB, path string) int64 {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	return fi.Size()
}

func fileHas(tb testing.TB, path, marker string) bool {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.Contains(data, []byte(marker))
}

func TestCompactShrinksAndKeepsEveryRecord(t *testing.T) {
	db := openTest(t, PlainCodec{})
	const n, size = 4000, 2000
	putBulk(t, db, 0, n, size)
	for id := int64(1); id <= 20; id++ {
		if err := db.PutUser(fullUser(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.InboxAdd(entries(101, 102, 103)); err != nil {
		t.Fatal(err)
	}
	deleteBulk(t, db, 0, n, 2)
	st, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.FreeRatio() < 0.3 {
		t.Errorf("free ratio after deleting half = %.2f (%+v), want at least 0.3", st.FreeRatio(), st)
	}

	before, after, err := db.Compact()
	if err != nil {
		t.Fatal(err)
	}
	if before != st.FileSize || after != fileSize(t, db.Path()) {
		t.Errorf("Compact reported %d → %d; file was %d, is %d", before, after, st.FileSize, fileSize(t, db.Path()))
	}
	if after > before*7/10 {
		t.Errorf("compacted %d → %d bytes, want at most 70%%", before, after)
	}
	if r, err := db.FreeRatio(); err != nil || r > 0.05 {
		t.Errorf("free ratio after compaction = %.2f, %v", r, err)
	}
	if _, err := os.Stat(db.Path() + compactingSuffix); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}

	check := func(db *DB) {
		t.Helper()
		err := db.view(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketBulk)
			if seq := b.Sequence(); seq != n {
				t.Errorf("sequence = %d, want %d", seq, n)
			}
			for i := 0; i < n; i++ {
				v := b.Get(idKey(int64(i)))
				switch {
				case i%2 == 0 && v != nil:
					t.Fatalf("deleted key %d is back", i)
				case i%2 == 1 && !bytes.Equal(v, bulkValue(i, size)):
					t.Fatalf("key %d lost or changed", i)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for id := int64(1); id <= 20; id++ {
			u, err := db.User(id)
			if err != nil {
				t.Fatalf("user %d: %v", id, err)
			}
			checkUser(t, u, fullUser(id))
		}
		pending, err := db.InboxPending()
		if err != nil || len(pending) != 3 {
			t.Fatalf("pending updates = %v, %v; want 101..103", ids(pending), err)
		}
	}
	check(db)
	// Still writable, and the same after a reopen.
	if err := db.PutUser(fullUser(21)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	check(openAt(t, db.Path(), PlainCodec{}))
}

func TestCompactWithConcurrentWriters(t *testing.T) {
	db := openTest(t, PlainCodec{})
	putBulk(t, db, 0, 500, 1000)
	deleteBulk(t, db, 0, 500, 2)

	const writers, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	start := make(chan struct{})
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			for i := 0; i < each; i++ {
				id := int64(1000*(w+1) + i)
				if err := db.PutUser(valex.User{ID: id, Nickname: fmt.Sprint("n", id), Language: "en"}); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() { // the poller: update ids only grow
		defer wg.Done()
		<-start
		for id := 1; id <= writers*each; id++ {
			if added, err := db.InboxAdd(entries(id)); err != nil || len(added) != 1 {
				errs <- fmt.Errorf("inbox add %d: %v, %v", id, added, err)
			}
		}
	}()
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Compact again and again for as long as the writers write.
	compactions := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if _, _, err := db.Compact(); err != nil {
			t.Fatalf("compaction %d: %v", compactions, err)
		}
		compactions++
		time.Sleep(30 * time.Millisecond) // the job is not a busy loop
	}
	if compactions < 3 {
		t.Errorf("only %d compactions overlapped the writes", compactions)
	}
	close(errs)
	for err := range errs {
		t.Errorf("write during compaction: %v", err)
	}
	if n, err := db.CountUsers(); err != nil || n != writers*each {
		t.Fatalf("%d users, %v; want %d", n, err, writers*each)
	}
	pending, err := db.InboxPending()
	if err != nil || len(pending) != writers*each {
		t.Fatalf("%d pending updates, %v; want %d", len(pending), err, writers*each)
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			id := int64(1000*(w+1) + i)
			if u, err := db.User(id); err != nil || u.Nickname != fmt.Sprint("n", id) {
				t.Fatalf("user %d = %+v, %v", id, u, err)
			}
		}
	}
}

func TestErasedBytesGoneAfterCompactAndFromBackups(t *testing.T) {
	const marker = "erase-me-Q7vX2k"
	db := openTest(t, PlainCodec{})
	putBulk(t, db, 0, 200, 500) // the marker shares the file with other data
	u := fullUser(42)
	u.Nickname = marker
	if err := db.PutUser(u); err != nil {
		t.Fatal(err)
	}
	if err := db.PutUser(fullUser(43)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	before := filepath.Join(dir, "before.db")
	if _, err := db.Backup(before); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser(42); err != nil {
		t.Fatal(err)
	}

	if !fileHas(t, before, marker) {
		t.Fatal("the backup taken before the deletion lacks the marker: the test proves nothing")
	}
	// bbolt leaves the deleted value in a freed page: this is what
	// compaction is for.
	if !fileHas(t, db.Path(), marker) {
		t.Fatal("the live file lacks the deleted marker before compaction: the test proves nothing")
	}
	after := filepath.Join(dir, "after.db")
	n, err := db.Backup(after)
	if err != nil {
		t.Fatal(err)
	}
	if n != fileSize(t, after) {
		t.Errorf("Backup returned %d, file has %d bytes", n, fileSize(t, after))
	}
	if fileHas(t, after, marker) {
		t.Error("a backup taken after the deletion holds the deleted value")
	}
	if _, _, err := db.Compact(); err != nil {
		t.Fatal(err)
	}
	if fileHas(t, db.Path(), marker) {
		t.Error("the live file holds the deleted value after compaction")
	}

	// Both are usable store files with the other user intact.
	for _, path := range []string{after, db.Path()} {
		copyDB := db
		if path != db.Path() {
			copyDB = openAt(t, path, PlainCodec{})
		}
		if got, err := copyDB.User(43); err != nil {
			t.Fatalf("%s: %v", filepath.Base(path), err)
		} else {
			checkUser(t, got, fullUser(43))
		}
		if _, err := copyDB.User(42); err == nil {
			t.Errorf("%s: the deleted user is back", filepath.Base(path))
		}
	}
}

func TestOpenRemovesInterruptedCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	db := openAt(t, path, PlainCodec{})
	if err := db.PutUser(fullUser(1)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash mid-compaction: half a file beside the complete old one.
	if err := os.WriteFile(path+compactingSuffix, []byte("half a compacted file"), 0o600); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, PlainCodec{})
	if _, err := os.Stat(path + compactingSuffix); !os.IsNotExist(err) {
		t.Fatalf("stale %s kept: %v", compactingSuffix, err)
	}
	if u, err := db.User(1); err != nil {
		t.Fatal(err)
	} else {
		checkUser(t, u, fullUser(1))
	}
}

func TestCompactFailureKeepsOldFile(t *testing.T) {
	db := openTest(t, PlainCodec{})
	if err := db.PutUser(fullUser(1)); err != nil {
		t.Fatal(err)
	}
	// A directory where the temporary file goes makes the compaction fail
	// before anything is replaced.
	if err := os.Mkdir(db.Path()+compactingSuffix, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(db.Path()+compactingSuffix, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Compact(); err == nil {
		t.Fatal("Compact succeeded, want an error")
	}
	if err := db.PutUser(fullUser(2)); err != nil {
		t.Fatalf("store unusable after a failed compaction: %v", err)
	}
	if n, err := db.CountUsers(); err != nil || n != 2 {
		t.Fatalf("%d users, %v; want 2", n, err)
	}
}

func TestCompactReadOnlyRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	db := openAt(t, path, PlainCodec{})
	db.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, _, err := ro.Compact(); err == nil {
		t.Fatal("compacting a read-only store succeeded")
	}
	// A backup of a read-only store (a backup being checked) still works.
	if _, err := ro.Backup(filepath.Join(t.TempDir(), "copy.db")); err != nil {
		t.Fatal(err)
	}
}

// A backup copies a live store while writers grow its file. bbolt.Compact
// committed its last batch after releasing the source, and a writer's remap
// in between made that commit read unmapped memory (a SIGSEGV seen in CI);
// the copy must hold the source until its last commit.
func TestBackupWhileWritersGrowTheFile(t *testing.T) {
	db := openTest(t, PlainCodec{})
	putBulk(t, db, 0, 300, 4000)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // each batch adds ~400 KB, so the file grows and remaps often
		defer wg.Done()
		for from := 1000; from < 1000+100*100; from += 100 {
			select {
			case <-stop:
				return
			default:
			}
			putBulk(t, db, from, 100, 4000)
		}
	}()
	dir := t.TempDir()
	for i := 0; i < 10; i++ {
		dst := filepath.Join(dir, fmt.Sprintf("b%d.db", i))
		if _, err := db.Backup(dst); err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("backup %d: %v", i, err)
		}
		copyDB := openAt(t, dst, PlainCodec{})
		err := copyDB.view(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketBulk)
			for j := 0; j < 300; j++ {
				if v := b.Get(idKey(int64(j))); !bytes.Equal(v, bulkValue(j, 4000)) {
					return fmt.Errorf("value %d differs in the backup", j)
				}
			}
			return nil
		})
		_ = copyDB.Close()
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("backup %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
}
