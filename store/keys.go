package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// The key store is a bbolt file of its own (keys.db), never inside valex.db
// or its backups. It holds one data key per user, wrapped by the master key.
// Every personal value in valex.db is sealed with its owner's data key, so
// deleting that one key makes every copy of the owner's data unreadable: the
// live file, its freed pages and every backup (crypto-shredding).
//
// It also holds the service keys that must not travel with the database:
// the audit key (audit chains are keyed with it) and the log key (log lines
// carry a keyed pseudonym instead of the Telegram id).

var (
	bucketKeyMeta  = []byte("meta")      // id, check, audit, log
	bucketUserKeys = []byte("user_keys") // be(userID) → wrapped data key
)

var (
	keyStoreID    = []byte("id")    // random, also written into valex.db: binds the two files
	keyCheck      = []byte("check") // a known value sealed by the master key: detects a wrong master key
	keyAuditKey   = []byte("audit")
	keyLogKey     = []byte("log")
	checkPlain    = []byte("valex key store")
	systemOwnerID = int64(0) // anonymized records are sealed with the system key
)

// Errors of the key store. ErrNoKey means the user has no data key: never
// registered, or erased.
var (
	ErrNoKey          = errors.New("no data key for this user (erased or never registered)")
	ErrWrongMasterKey = errors.New("the master key does not open this key store")
	ErrKeysMissing    = errors.New("the key store file is missing")
)

// formatSealed is the format byte of a value sealed with AES-256-GCM under
// the owner's data key: formatSealed | nonce(12) | ciphertext+tag. The
// owner's id is the additional data, so a value moved to another user's
// record does not open.
const formatSealed byte = 2

// MasterKeyLen is the length of the master key and of every data key.
const MasterKeyLen = 32

// KeysOptions configures OpenKeys.
type KeysOptions struct {
	Timeout time.Duration // bbolt lock timeout, default 2s
	// Create allows making a new key store when the file does not exist.
	// It must be false when valex.db already belongs to a key store: a
	// database without its keys is refused, never given new ones.
	Create   bool
	ReadOnly bool
}

// Keys is an open key store. It implements Codec. It is safe for concurrent
// use.
type Keys struct {
	bolt   *bbolt.DB
	path   string
	opts   KeysOptions
	master cipher.AEAD
	id     string
	audit  []byte
	log    []byte

	// swap is held for reading by every use of bolt and for writing while
	// Compact replaces the file.
	swap sync.RWMutex

	mu      sync.RWMutex
	cache   map[int64]dataKey // unwrapped data keys
	deletes uint64            // Delete calls so far: a key read before one is not cached
}

// dataKey is an unwrapped user key: the AEAD and the user's log salt.
type dataKey struct {
	aead cipher.AEAD
	salt []byte
}

// OpenKeys opens the key store at path with the master key. A wrong master
// key, or a missing file when opts.Create is false, is refused before
// anything is written.
func OpenKeys(path string, master []byte, opts KeysOptions) (*Keys, error) {
	if len(master) != MasterKeyLen {
		return nil, fmt.Errorf("open key store: master key is %d bytes, want %d", len(master), MasterKeyLen)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && (!opts.Create || opts.ReadOnly) {
		return nil, fmt.Errorf("open key store %s: %w", path, ErrKeysMissing)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	m, err := newAEAD(master)
	if err != nil {
		return nil, err
	}
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("open key store %s: %w", path, err)
	}
	if !opts.ReadOnly { // the file lock is ours: no compaction is running
		if err := removeStaleCompaction(path); err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("open key store %s: %w", path, err)
		}
	}
	k := &Keys{bolt: b, path: path, opts: opts, master: m, cache: map[int64]dataKey{}}
	if err := k.init(opts.ReadOnly); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open key store %s: %w", path, err)
	}
	return k, nil
}

// init checks the master key against the stored check value, or, in a new
// file, creates the id, the check value, the service keys and the system
// data key.
func (k *Keys) init(readOnly bool) error {
	load := func(tx *bbolt.Tx) (bool, error) {
		meta := tx.Bucket(bucketKeyMeta)
		if meta == nil || meta.Get(keyCheck) == nil {
			return false, nil
		}
		plain, err := k.unwrap(keyCheck, meta.Get(keyCheck))
		if err != nil || string(plain) != string(checkPlain) {
			return true, ErrWrongMasterKey
		}
		k.id = string(meta.Get(keyStoreID))
		if k.audit, err = k.unwrap(keyAuditKey, meta.Get(keyAuditKey)); err != nil {
			return true, fmt.Errorf("audit key: %w", err)
		}
		if k.log, err = k.unwrap(keyLogKey, meta.Get(keyLogKey)); err != nil {
			return true, fmt.Errorf("log key: %w", err)
		}
		return true, nil
	}
	var found bool
	err := k.bolt.View(func(tx *bbolt.Tx) error {
		var err error
		found, err = load(tx)
		return err
	})
	if err != nil || found {
		return err
	}
	if readOnly {
		return ErrKeysMissing
	}
	return k.bolt.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketKeyMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketUserKeys); err != nil {
			return err
		}
		id := randomBytes(16)
		put := func(name, plain []byte) error {
			w, err := k.wrap(name, plain)
			if err != nil {
				return err
			}
			return meta.Put(name, w)
		}
		if err := meta.Put(keyStoreID, []byte(hex.EncodeToString(id))); err != nil {
			return err
		}
		if err := put(keyCheck, checkPlain); err != nil {
			return err
		}
		if err := put(keyAuditKey, randomBytes(MasterKeyLen)); err != nil {
			return err
		}
		if err := put(keyLogKey, randomBytes(MasterKeyLen)); err != nil {
			return err
		}
		if err := k.createTx(tx, systemOwnerID); err != nil {
			return err
		}
		_, err = load(tx)
		return err
	})
}

// Close releases the file.
func (k *Keys) Close() error {
	k.swap.Lock()
	defer k.swap.Unlock()
	if err := k.bolt.Close(); err != nil {
		return fmt.Errorf("close key store: %w", err)
	}
	return nil
}

// ID identifies this key store; valex.db records it so a database is never
// opened with another store's keys.
func (k *Keys) ID() string { return k.id }

// AuditKey is the key audit chains are MACed with.
func (k *Keys) AuditKey() []byte { return k.audit }

// LogKey is the key log pseudonyms are derived with.
func (k *Keys) LogKey() []byte { return k.log }

// Path returns the file the key store was opened from.
func (k *Keys) Path() string { return k.path }

// Create gives a user a new data key. It is called only when an account is
// created (/start): no other write can create a key, so data written for an
// erased user fails instead of recreating them. Creating an existing key is
// a no-op.
func (k *Keys) Create(userID int64) error {
	if k.Has(userID) {
		return nil // the common case (/start again): no write
	}
	err := k.update(func(tx *bbolt.Tx) error { return k.createTx(tx, userID) })
	if err != nil {
		return fmt.Errorf("create data key of user %d: %w", userID, err)
	}
	return nil
}

func (k *Keys) createTx(tx *bbolt.Tx, userID int64) error {
	b := tx.Bucket(bucketUserKeys)
	if b.Get(idKey(userID)) != nil {
		return nil
	}
	w, err := k.wrap(idKey(userID), randomBytes(MasterKeyLen))
	if err != nil {
		return err
	}
	return b.Put(idKey(userID), w)
}

// Delete destroys a user's data key, durably, before it returns: from then
// on every copy of the user's sealed data is unreadable. Deleting a missing
// key is a no-op.
func (k *Keys) Delete(userID int64) error {
	if userID == systemOwnerID {
		return fmt.Errorf("delete data key: the system key is not a user's")
	}
	k.mu.Lock()
	delete(k.cache, userID)
	k.deletes++
	k.mu.Unlock()
	err := k.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUserKeys).Delete(idKey(userID))
	})
	if err != nil {
		return fmt.Errorf("delete data key of user %d: %w", userID, err)
	}
	return nil
}

// Has reports whether the user has a data key.
func (k *Keys) Has(userID int64) bool {
	k.mu.RLock()
	_, ok := k.cache[userID]
	k.mu.RUnlock()
	if ok {
		return true
	}
	_ = k.view(func(tx *bbolt.Tx) error {
		ok = tx.Bucket(bucketUserKeys).Get(idKey(userID)) != nil
		return nil
	})
	return ok
}

// Wrapped returns the stored (master-key-wrapped) form of a user's data
// key, nil when there is none: what an erasure must remove from every file,
// for a check that it did.
func (k *Keys) Wrapped(userID int64) []byte {
	var w []byte
	_ = k.view(func(tx *bbolt.Tx) error {
		w = append([]byte(nil), tx.Bucket(bucketUserKeys).Get(idKey(userID))...)
		return nil
	})
	if len(w) == 0 {
		return nil
	}
	return w
}

// Count returns how many user data keys exist (the system key excluded).
func (k *Keys) Count() (int, error) {
	var n int
	err := k.view(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketUserKeys).Stats().KeyN
		return nil
	})
	return n - 1, err
}

// Backup writes a consistent copy of the key store to w. Key snapshots are
// kept for a short window only (see jobs.Backup), so an erased key leaves
// every snapshot within that window.
//
// The copy is compacted: deleted (erased) keys stay in the live file's
// freed pages until they are reused, and must not travel into a snapshot.
func (k *Keys) Backup(w io.Writer) (int64, error) {
	dir, err := os.MkdirTemp("", "valex-keys-")
	if err != nil {
		return 0, fmt.Errorf("back up key store: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := dir + "/keys.db"
	k.swap.RLock()
	err = compactTo(tmp, k.bolt, Options{})
	k.swap.RUnlock()
	if err != nil {
		return 0, fmt.Errorf("back up key store: %w", err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return 0, fmt.Errorf("back up key store: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		return n, fmt.Errorf("back up key store: %w", err)
	}
	return n, nil
}

func (k *Keys) view(fn func(*bbolt.Tx) error) error {
	k.swap.RLock()
	defer k.swap.RUnlock()
	return k.bolt.View(fn)
}

func (k *Keys) update(fn func(*bbolt.Tx) error) error {
	k.swap.RLock()
	defer k.swap.RUnlock()
	return k.bolt.Update(fn)
}

// FreeRatio is the share of the key store file on bbolt's freelist.
func (k *Keys) FreeRatio() (float64, error) {
	var s FileStats
	err := k.view(func(tx *bbolt.Tx) error {
		fi, err := os.Stat(k.path)
		if err != nil {
			return err
		}
		st := tx.DB().Stats()
		s = FileStats{FileSize: fi.Size(), PageSize: tx.DB().Info().PageSize, FreePages: st.FreePageN + st.PendingPageN}
		s.FreeBytes = int64(s.FreePages) * int64(s.PageSize)
		return nil
	})
	return s.FreeRatio(), err
}

// Compact rewrites the key store without its free pages and swaps it in,
// like DB.Compact. A deleted key's wrapped bytes stay in the live file's
// freed pages until then, beside the master key file: compacting after an
// erasure is what makes the deletion final on this disk too. The file is
// small (about 100 bytes a user), so this takes milliseconds.
func (k *Keys) Compact() (before, after int64, err error) {
	if k.opts.ReadOnly {
		return 0, 0, errors.New("compact key store: opened read-only")
	}
	k.swap.Lock()
	defer k.swap.Unlock()
	if fi, err := os.Stat(k.path); err == nil {
		before = fi.Size()
	}
	tmp := k.path + compactingSuffix
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return before, before, fmt.Errorf("compact key store: %w", err)
	}
	err = compactTo(tmp, k.bolt, Options{Timeout: k.opts.Timeout})
	var fresh *bbolt.DB
	if err == nil {
		fresh, err = bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: k.opts.Timeout})
	}
	if err == nil {
		if err = os.Rename(tmp, k.path); err != nil {
			_ = fresh.Close()
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return before, before, fmt.Errorf("compact key store %s: %w", k.path, err)
	}
	old := k.bolt
	k.bolt = fresh
	errs := []error{syncDir(filepath.Dir(k.path)), old.Close()}
	if fi, err := os.Stat(k.path); err == nil {
		after = fi.Size()
	}
	if err := errors.Join(errs...); err != nil {
		return before, after, fmt.Errorf("compacted key store %s, but: %w", k.path, err)
	}
	return before, after, nil
}

// aead returns the user's unwrapped data key, from the cache when it can.
func (k *Keys) aead(userID int64) (cipher.AEAD, error) {
	d, err := k.dataKey(userID)
	return d.aead, err
}

// LogSalt is a value derived from the user's data key that makes their log
// pseudonym: once the key is deleted it cannot be recomputed, so the user's
// old log lines can no longer be linked to them. nil when the user has no
// key.
func (k *Keys) LogSalt(userID int64) []byte {
	d, err := k.dataKey(userID)
	if err != nil {
		return nil
	}
	return d.salt
}

// maxCachedKeys bounds the unwrapped keys kept in memory (about 1 kB each
// with their AES-GCM state): a burst of 10,000 users would otherwise keep
// 10,000 of them for the life of the process. A key not cached costs one
// key-store read and an unwrap.
const maxCachedKeys = 2048

func (k *Keys) dataKey(userID int64) (dataKey, error) {
	k.mu.RLock()
	d, ok := k.cache[userID]
	deletes := k.deletes
	k.mu.RUnlock()
	if ok {
		return d, nil
	}
	var wrapped []byte
	err := k.view(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketUserKeys).Get(idKey(userID)); v != nil {
			wrapped = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return dataKey{}, err
	}
	if wrapped == nil {
		return dataKey{}, ErrNoKey
	}
	raw, err := k.unwrap(idKey(userID), wrapped)
	if err != nil {
		return dataKey{}, fmt.Errorf("unwrap data key of user %d: %w", userID, err)
	}
	a, err := newAEAD(raw)
	if err != nil {
		return dataKey{}, err
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte("valex log pseudonym"))
	d = dataKey{aead: a, salt: mac.Sum(nil)}
	k.mu.Lock()
	if k.deletes == deletes { // no Delete since the read: the key may be cached
		if len(k.cache) >= maxCachedKeys {
			for id := range k.cache { // full: one goes, any one (map order is random)
				delete(k.cache, id)
				break
			}
		}
		k.cache[userID] = d
	}
	k.mu.Unlock()
	return d, nil
}

// Seal encrypts plain with the user's data key.
func (k *Keys) Seal(userID int64, plain []byte) ([]byte, error) {
	a, err := k.aead(userID)
	if err != nil {
		return nil, fmt.Errorf("seal personal data of user %d: %w", userID, err)
	}
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plain)+a.Overhead())
	out[0] = formatSealed
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return a.Seal(out, out[1:], plain, idKey(userID)), nil
}

// Open decrypts a value sealed for the user. Values written before the key
// store existed (the plain format) still read, so an upgraded database keeps
// working; they are sealed when next written.
func (k *Keys) Open(userID int64, sealed []byte) ([]byte, error) {
	if len(sealed) > 0 && sealed[0] == formatPlain {
		return PlainCodec{}.Open(userID, sealed)
	}
	if len(sealed) == 0 || sealed[0] != formatSealed {
		return nil, fmt.Errorf("open personal data of user %d: unknown format", userID)
	}
	a, err := k.aead(userID)
	if err != nil {
		return nil, fmt.Errorf("open personal data of user %d: %w", userID, err)
	}
	ns := a.NonceSize()
	if len(sealed) < 1+ns+a.Overhead() {
		return nil, fmt.Errorf("open personal data of user %d: truncated", userID)
	}
	plain, err := a.Open(nil, sealed[1:1+ns], sealed[1+ns:], idKey(userID))
	if err != nil {
		return nil, fmt.Errorf("open personal data of user %d: %w", userID, err)
	}
	return plain, nil
}

// wrap seals a key (or the check value) with the master key; name is the
// additional data, so a wrapped key cannot be moved to another user.
func (k *Keys) wrap(name, plain []byte) ([]byte, error) {
	nonce := randomBytes(k.master.NonceSize())
	return k.master.Seal(nonce, nonce, plain, name), nil
}

func (k *Keys) unwrap(name, wrapped []byte) ([]byte, error) {
	ns := k.master.NonceSize()
	if len(wrapped) < ns+k.master.Overhead() {
		return nil, fmt.Errorf("wrapped key truncated")
	}
	return k.master.Open(nil, wrapped[:ns], wrapped[ns:], name)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	return cipher.NewGCM(block)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux since Go 1.24
	}
	return b
}

// KeyOwner is what a codec that holds keys per user also does: the store
// asks it whether a user still has a key (records of a user without one
// are removed on open) and gives a new account its key.
type KeyOwner interface {
	Codec
	ID() string
	Has(userID int64) bool
	Create(userID int64) error
}

var _ KeyOwner = (*Keys)(nil)
