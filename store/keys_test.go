package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

func testMaster(b byte) []byte { return bytes.Repeat([]byte{b}, MasterKeyLen) }

// openKeyed opens a database sealed with a key store in dir.
func openKeyed(tb testing.TB, dir string) (*Keys, *DB) {
	tb.Helper()
	keys, err := OpenKeys(filepath.Join(dir, "keys.db"), testMaster(7), KeysOptions{Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	db, err := Open(filepath.Join(dir, "valex.db"), Options{Codec: keys})
	if err != nil {
		keys.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		db.Close()
		keys.Close()
	})
	return keys, db
}

func TestKeysSealOpen(t *testing.T) {
	keys, err := OpenKeys(filepath.Join(t.TempDir(), "keys.db"), testMaster(1), KeysOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if _, err := keys.Seal(42, []byte("x")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("seal without a key: %v, want ErrNoKey", err)
	}
	if err := keys.Create(42); err != nil {
		t.Fatal(err)
	}
	if err := keys.Create(43); err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.Seal(42, []byte("zq-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("zq-secret")) {
		t.Fatal("sealed value holds the plain text")
	}
	if plain, err := keys.Open(42, sealed); err != nil || string(plain) != "zq-secret" {
		t.Fatalf("open: %q, %v", plain, err)
	}
	if _, err := keys.Open(43, sealed); err == nil {
		t.Fatal("another user's key opened the value")
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	if _, err := keys.Open(42, tampered); err == nil {
		t.Fatal("a tampered value opened")
	}
	if plain, err := keys.Open(42, []byte{formatPlain, 'o', 'k'}); err != nil || string(plain) != "ok" {
		t.Fatalf("a value from before encryption: %q, %v", plain, err)
	}
	if err := keys.Delete(42); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Open(42, sealed); !errors.Is(err, ErrNoKey) {
		t.Fatalf("open after the key was deleted: %v, want ErrNoKey", err)
	}
	if n, _ := keys.Count(); n != 1 {
		t.Fatalf("%d keys, want 1", n)
	}
}

func TestKeysRefuseWrongMasterAndMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.db")
	if _, err := OpenKeys(path, testMaster(1), KeysOptions{}); !errors.Is(err, ErrKeysMissing) {
		t.Fatalf("missing file without Create: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused open created the file")
	}
	keys, err := OpenKeys(path, testMaster(1), KeysOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	keys.Create(5)
	audit := append([]byte(nil), keys.AuditKey()...)
	keys.Close()
	before, _ := os.ReadFile(path)
	if _, err := OpenKeys(path, testMaster(2), KeysOptions{}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("wrong master key: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("a refused open changed the key store")
	}
	keys, err = OpenKeys(path, testMaster(1), KeysOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	if !keys.Has(5) || !bytes.Equal(keys.AuditKey(), audit) || len(keys.LogKey()) != MasterKeyLen {
		t.Fatal("the reopened key store lost its keys")
	}
}

// Personal values are sealed in the file: a marker written through the
// store is not in the file's bytes, and reads back.
func TestPersonalDataSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	_, db := openKeyed(t, dir)
	if _, _, err := db.EnsureUser(valex.User{ID: 9, Nickname: "zq-nick", City: "zq-city", Language: "en"}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveExchange(9, 1, []valex.Turn{{Role: valex.TurnUser, Text: "zq-turn", At: time.Now()}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateTicket(valex.Request{UserID: 9, Kind: valex.KindSupport, Status: valex.StatusNew, Text: "zq-ticket", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "valex.db"))
	for _, m := range []string{"zq-nick", "zq-city", "zq-turn", "zq-ticket"} {
		if bytes.Contains(raw, []byte(m)) {
			t.Errorf("%s is readable in valex.db", m)
		}
	}
	if u, err := db.User(9); err != nil || u.City != "zq-city" {
		t.Fatalf("read back: %+v %v", u, err)
	}
}

// No write brings back a user without an account: a racing AI answer, a
// usage row, a consent, a ticket or a dialog state for an erased id fail.
func TestNoWriteRecreatesAUser(t *testing.T) {
	_, db := openKeyed(t, t.TempDir())
	now := time.Now()
	for name, write := range map[string]func() error{
		"exchange": func() error {
			return db.SaveExchange(77, 1, []valex.Turn{{Role: valex.TurnUser, Text: "x", At: now}}, nil)
		},
		"usage": func() error {
			return db.RecordUsage(valex.AIUsage{UserID: 77, Capability: "chat", Model: "m", At: now})
		},
		"consent": func() error {
			return db.AddConsent(valex.ConsentEvent{UserID: 77, Kind: valex.ConsentAITransfer, Granted: true, At: now})
		},
		"ticket": func() error {
			_, err := db.CreateTicket(valex.Request{UserID: 77, Kind: valex.KindSupport, Status: valex.StatusNew, ReceivedAt: now})
			return err
		},
		"state": func() error { return db.SetState(77, "profile:city") },
		"ai settings": func() error {
			_, err := db.UpdateAISettings(77, func(s *valex.AISettings) { s.Model = "x" })
			return err
		},
	} {
		if err := write(); !errors.Is(err, ErrNoAccount) {
			t.Errorf("%s for a user without an account: %v, want ErrNoAccount", name, err)
		}
	}
	if n, _ := db.CountUsers(); n != 0 {
		t.Fatalf("%d users exist", n)
	}
}

// A user whose key is gone (an erasure cut short after the key, or a backup
// restored from before an erasure) is erased when the file opens.
func TestKeylessUsersSweptOnOpen(t *testing.T) {
	dir := t.TempDir()
	keys, db := openKeyed(t, dir)
	now := time.Now()
	for _, id := range []int64{1, 2} {
		if _, _, err := db.EnsureUser(valex.User{ID: id, Nickname: "n", Language: "en"}); err != nil {
			t.Fatal(err)
		}
		if err := db.SaveExchange(id, 1, []valex.Turn{{Role: valex.TurnUser, Text: "t", At: now}}, []valex.AIUsage{{UserID: id, Capability: "chat", Model: "m", At: now}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateTicket(valex.Request{UserID: id, Kind: valex.KindSupport, Status: valex.StatusNew, Text: "x", ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.MarkErasure(1, 0, now); err != nil {
		t.Fatal(err)
	}
	if err := keys.Delete(1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(filepath.Join(dir, "valex.db"), Options{Codec: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Swept() != 1 {
		t.Fatalf("swept %d, want 1", db.Swept())
	}
	if _, err := db.User(1); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("user 1: %v", err)
	}
	if ts, _ := db.UserTickets(1); len(ts) != 0 {
		t.Fatalf("user 1 still has %d tickets", len(ts))
	}
	if us, _ := db.UsageSince(1, time.Time{}); len(us) != 0 {
		t.Fatalf("user 1 still has %d usage rows", len(us))
	}
	if p, _ := db.PendingErasures(); len(p) != 0 {
		t.Fatalf("journal still holds %+v", p)
	}
	if u, err := db.User(2); err != nil || u.Nickname != "n" {
		t.Fatalf("user 2: %+v %v", u, err)
	}
}

// A database is never opened with another key store, nor without one once
// it has been sealed.
func TestDatabaseBoundToItsKeyStore(t *testing.T) {
	dir := t.TempDir()
	keys, db := openKeyed(t, dir)
	db.EnsureUser(valex.User{ID: 1, Language: "en"})
	db.Close()
	keys.Close()
	if _, err := Open(filepath.Join(dir, "valex.db"), Options{}); err == nil {
		t.Fatal("a sealed database opened without its key store")
	}
	other, err := OpenKeys(filepath.Join(t.TempDir(), "keys.db"), testMaster(7), KeysOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := Open(filepath.Join(dir, "valex.db"), Options{Codec: other}); !errors.Is(err, ErrKeysMismatch) {
		t.Fatalf("another key store: %v, want ErrKeysMismatch", err)
	}
	if id, err := KeysID(filepath.Join(dir, "valex.db"), time.Second); err != nil || id == "" || id == other.ID() {
		t.Fatalf("KeysID = %q, %v", id, err)
	}
}

// A database written before encryption is bound on first open: every user
// gets a key, old values still read, new ones are sealed.
func TestPlainDatabaseUpgrades(t *testing.T) {
	dir := t.TempDir()
	plain, err := Open(filepath.Join(dir, "valex.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain.PutUser(valex.User{ID: 3, Nickname: "old", Language: "en"})
	plain.Close()
	keys, db := openKeyed(t, dir)
	if db.Swept() != 0 || !keys.Has(3) {
		t.Fatalf("upgrade swept %d users, key for 3: %v", db.Swept(), keys.Has(3))
	}
	if u, err := db.User(3); err != nil || u.Nickname != "old" {
		t.Fatalf("old user: %+v %v", u, err)
	}
}

// A deleted data key stays in the live keys.db's freed pages, beside the
// master key, until the key store is compacted; after Compact the file no
// longer holds its wrapped bytes, and every other key still works, also
// while others seal during the compaction.
func TestKeysCompactDropsDeletedKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.db")
	keys, err := OpenKeys(path, testMaster(3), KeysOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	for id := int64(1); id <= 200; id++ {
		if err := keys.Create(id); err != nil {
			t.Fatal(err)
		}
	}
	var wrapped []byte
	err = keys.view(func(tx *bbolt.Tx) error {
		wrapped = append([]byte(nil), tx.Bucket(bucketUserKeys).Get(idKey(77))...)
		return nil
	})
	if err != nil || len(wrapped) == 0 {
		t.Fatalf("wrapped key of 77: %x, %v", wrapped, err)
	}
	if err := keys.Delete(77); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw, wrapped) {
		t.Fatal("the deleted key is not in the live file's freed pages: this test shows nothing")
	}

	stop := make(chan struct{})
	sealErr := make(chan error, 1)
	go func() { // writers and readers go on during the swap
		defer close(sealErr)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := int64(1 + i%200)
			if id == 77 {
				continue
			}
			if _, err := keys.Seal(id, []byte("x")); err != nil {
				sealErr <- err
				return
			}
			if err := keys.Create(int64(1000 + i)); err != nil {
				sealErr <- err
				return
			}
		}
	}()
	for i := 0; i < 3; i++ {
		if _, _, err := keys.Compact(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-sealErr; err != nil {
		t.Fatalf("seal during compaction: %v", err)
	}
	raw, _ = os.ReadFile(path)
	if bytes.Contains(raw, wrapped) {
		t.Fatal("the deleted key survived compaction")
	}
	if _, err := os.Stat(path + compactingSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("compaction left %s: %v", path+compactingSuffix, err)
	}
	sealed, err := keys.Seal(5, []byte("still here"))
	if err != nil {
		t.Fatal(err)
	}
	keys.Close()
	again, err := OpenKeys(path, testMaster(3), KeysOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if plain, err := again.Open(5, sealed); err != nil || string(plain) != "still here" {
		t.Fatalf("after reopen: %q, %v", plain, err)
	}
	if again.Has(77) {
		t.Fatal("the deleted key came back")
	}
}

// The unwrapped-key cache is bounded: more users than it holds all still
// seal and open (a key that left the cache is read and unwrapped again),
// and memory does not grow with every user who ever wrote.
func TestKeyCacheIsBounded(t *testing.T) {
	keys, err := OpenKeys(filepath.Join(t.TempDir(), "keys.db"), testMaster(1), KeysOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	const users = maxCachedKeys + 500
	sealed := make([][]byte, users+1)
	for u := int64(1); u <= users; u++ {
		if err := keys.Create(u); err != nil {
			t.Fatal(err)
		}
		if sealed[u], err = keys.Seal(u, []byte("note of user")); err != nil {
			t.Fatal(err)
		}
	}
	keys.mu.RLock()
	n := len(keys.cache)
	keys.mu.RUnlock()
	if n > maxCachedKeys {
		t.Fatalf("%d keys cached, want at most %d", n, maxCachedKeys)
	}
	for u := int64(1); u <= users; u++ {
		if plain, err := keys.Open(u, sealed[u]); err != nil || string(plain) != "note of user" {
			t.Fatalf("user %d: %q, %v", u, plain, err)
		}
	}
}
