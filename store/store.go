// Package store keeps Valex's state in a single bbolt file: users, dialog
// state and the durable inbox of Telegram updates. It is the only package that
// imports bbolt; everything else sees plain valex types.
package store

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// Bucket names. Every bucket is created at open, so code inside a
// transaction may assume tx.Bucket(name) is never nil.
var (
	bucketMeta          = []byte("meta")            // schema_version, inbox_high_water
	bucketUsers         = []byte("users")           // be(id) → user record
	bucketUsersByActive = []byte("users_by_active") // be(lastActiveUnixNano)‖be(id) → empty
	bucketStates        = []byte("states")          // be(id) → dialog state
	bucketInboxPending  = []byte("inbox_pending")   // be(updateID) → payload
	bucketInboxHandled  = []byte("inbox_handled")   // be(updateID) → be(handledUnixNano)
	// be(handledUnixNano)‖be(updateID) → empty: the prune's way in (inbox.go).
	bucketInboxHandledByTime = []byte("inbox_handled_by_time")

	// Privacy desk (desk.go, consent.go, audit.go, broadcast.go).
	bucketTickets          = []byte("tickets")            // be(id) → ticket record
	bucketTicketsOpen      = []byte("tickets_open")       // be(dueUnixNano)‖be(id) → open-ticket summary
	bucketTicketsByUser    = []byte("tickets_by_user")    // be(userID)‖be(id) → status
	bucketTicketReminders  = []byte("ticket_reminders")   // be(id)‖reminder key → be(sentUnixNano)
	bucketAudit            = []byte("audit")              // be(ticketID)‖be(seq) → audit entry
	bucketAuditHeads       = []byte("audit_heads")        // be(ticketID) → be(seq)‖hash of the latest entry
	bucketConsents         = []byte("consents")           // be(userID)‖be(seq) → consent event
	bucketRestrictions     = []byte("restrictions")       // be(userID)‖be(seq) → restriction event
	bucketHolds            = []byte("holds")              // be(userID) → legal hold
	bucketPolicies         = []byte("policy_versions")    // be(seq) → published policy version
	bucketNotices          = []byte("notices")            // be(id) → broadcast notice
	bucketDeliveries       = []byte("deliveries")         // be(noticeID)‖be(userID) → delivery
	bucketDeliveriesByUser = []byte("deliveries_by_user") // be(userID)‖be(noticeID) → empty
	bucketTicketMessages   = []byte("ticket_messages")    // be(chatID)‖be(messageID) → be(ticketID)
	// be(updateID) → be(ticketID): the ticket an update opened, so a replay
	// of that update finds it instead of opening another (desk.go).
	bucketTicketsByUpdate = []byte("tickets_by_update")
	bucketNoticesByUpdate = []byte("notices_by_update") // update id → the notice it started
	bucketUsageByUpdate   = []byte("usage_by_update")   // be(update id)‖capability → nothing: charged once

	// Retention (retention.go).
	bucketTicketsClosed   = []byte("tickets_closed")   // be(closedAtUnixNano)‖be(id) → empty
	bucketInactiveNotices = []byte("inactive_notices") // be(userID) → be(sentUnixNano)

	allBuckets = [][]byte{
		bucketMeta, bucketUsers, bucketUsersByActive, bucketStates,
		bucketInboxPending, bucketInboxHandled, bucketInboxHandledByTime,
		bucketTickets, bucketTicketsOpen, bucketTicketsByUser, bucketTicketReminders,
		bucketAudit, bucketAuditHeads, bucketConsents, bucketRestrictions, bucketHolds,
		bucketPolicies, bucketNotices, bucketDeliveries, bucketDeliveriesByUser, bucketTicketMessages, bucketTicketsByUpdate, bucketNoticesByUpdate, bucketUsageByUpdate,
		bucketTicketsClosed, bucketInactiveNotices, bucketErasures,
		// AI aggregator (conversations.go, usage.go).
		bucketAISettings, bucketAITurns, bucketAIUsage, bucketAIUsageSums,
		bucketAIDocuments, // documents.go
		// Credits and payments (wallet.go, payments.go).
		bucketWallets, bucketPayments, bucketPaymentsByUser, bucketYooKassaPending, bucketAllowList,
	}
)

// Keys in bucketMeta.
var (
	keySchemaVersion  = []byte("schema_version")
	keyInboxHighWater = []byte("inbox_high_water")
)

// Options configures Open. The zero value is usable.
type Options struct {
	Timeout time.Duration // bbolt lock timeout, default 2s
	Codec   Codec         // default PlainCodec{}
	// ReadOnly opens the file without writing to it (for verifying a
	// backup): no bucket is created and no migration runs, so the file must
	// already be at this build's schema.
	ReadOnly bool
	// Now is the clock for what Open itself records (erasures of keyless
	// users); default time.Now.
	Now func() time.Time
	// AuditKey MACs the audit trails (audit.go). Main always passes the key
	// store's audit key; nil means DevAuditKey, for tests and tools only.
	AuditKey []byte
	// BackupBeforeMigrate is a directory: when the file is at an older
	// schema, a compacted copy is written there (pre-migration-vN-DATE.db)
	// before any migration runs.
	BackupBeforeMigrate string
}

// DB is an open store file. It is safe for concurrent use.
type DB struct {
	// swap is held for reading by every transaction and for writing while
	// the file is replaced (online compaction), so no transaction ever sees
	// a closed handle.
	swap sync.RWMutex
	// maint serialises Backup and Compact, so a compaction waiting for a
	// long backup does not hold swap half-taken (which would stall every
	// new transaction behind it).
	maint sync.Mutex
	bolt  *bbolt.DB
	codec Codec
	path  string // kept here: bbolt forgets it on Close
	opts  Options
	swept int // keyless users erased by Open

	holds holds // credits held by AI calls in flight (wallet.go)

	aiAllowed aiAllowedCache // whether users may use the AI (ai_allowed.go)
	breaches  atomic.Int32   // breachesUnknown, None or Some (broadcast.go)

	commits atomic.Int64 // write transactions committed: each is an fsync
	// The last batch transaction counted (countBatch).
	batchMu     sync.Mutex
	lastBatchTx int
}

// view runs fn in a read transaction.
func (db *DB) view(fn func(*bbolt.Tx) error) error {
	db.swap.RLock()
	defer db.swap.RUnlock()
	return db.bolt.View(fn)
}

// update runs fn in a read-write transaction.
func (db *DB) update(fn func(*bbolt.Tx) error) error {
	db.swap.RLock()
	defer db.swap.RUnlock()
	err := db.bolt.Update(fn)
	if err == nil {
		db.commits.Add(1)
	}
	return err
}

// batch is update for the hot path's writes (a chat turn's history and
// charge): concurrent calls are grouped by bbolt's Batch into one
// transaction and one disk sync, and each returns once that commit is done,
// so what a caller does next still follows its write. fn may run twice (a
// batch whose other function failed is retried one by one): it must not
// have effects outside tx.
func (db *DB) batch(fn func(*bbolt.Tx) error) error {
	db.swap.RLock()
	defer db.swap.RUnlock()
	return db.bolt.Batch(func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		db.countBatch(tx.ID())
		return nil
	})
}

// countBatch counts a batch's transaction once, however many functions it
// ran (they share its id).
func (db *DB) countBatch(txID int) {
	db.batchMu.Lock()
	defer db.batchMu.Unlock()
	if txID != db.lastBatchTx {
		db.lastBatchTx = txID
		db.commits.Add(1)
	}
}

// Commits returns how many write transactions the store has committed since
// it was opened (each one is a disk sync): a metric for the write path.
func (db *DB) Commits() int64 { return db.commits.Load() }

// Open opens (creating if needed) the store file at path, creates every
// bucket and brings the schema up to date.
func Open(path string, opts Options) (*DB, error) {
	return open(path, opts, migrations)
}

// open is Open with the migration list as a parameter, so tests can count
// which migrations run.
func open(path string, opts Options, migs []func(*bbolt.Tx) error) (*DB, error) {
	if opts.Timeout <= 0 {
		// Without a timeout a second process on the same file blocks forever.
		opts.Timeout = 2 * time.Second
	}
	if opts.Codec == nil {
		opts.Codec = PlainCodec{}
	}
	b, err := bbolt.Open(path, 0o600, boltOptions(opts))
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if !opts.ReadOnly {
		// With the file lock held: no compaction of this file is running.
		if err := removeStaleCompaction(path); err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	}
	db := &DB{bolt: b, codec: opts.Codec, path: path, opts: opts}
	if !opts.ReadOnly && opts.BackupBeforeMigrate != "" {
		if err := db.backupBeforeMigrate(len(migs)); err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	}
	if opts.ReadOnly {
		if err := db.checkCurrent(len(migs)); err != nil {
			_ = b.Close()
			return nil, fmt.Errorf("open store %s read-only: %w", path, err)
		}
		return db, nil
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err == nil {
		err = db.migrate(migs)
	}
	if owner, ok := opts.Codec.(KeyOwner); ok && err == nil {
		if err = db.bindKeys(owner); err == nil {
			now := time.Now
			if opts.Now != nil {
				now = opts.Now
			}
			db.swept, err = db.sweepKeyless(owner, now())
		}
	} else if err == nil {
		err = db.refuseBound()
	}
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// refuseBound fails when a file that belongs to a key store is opened
// without one: its personal values would not read, and new ones would be
// written unsealed.
func (db *DB) refuseBound() error {
	return db.view(func(tx *bbolt.Tx) error {
		if id := tx.Bucket(bucketMeta).Get(keyKeysID); len(id) > 0 {
			return fmt.Errorf("the database is encrypted: open it with its key store (keys.db)")
		}
		return nil
	})
}

// boltOptions are the bbolt options for opts, the same at Open and when a
// compacted file replaces the store.
func boltOptions(opts Options) *bbolt.Options {
	return &bbolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly}
}

// Close releases the file. Pending transactions finish first.
func (db *DB) Close() error {
	db.swap.Lock() // not in the middle of a compaction swapping the handle
	defer db.swap.Unlock()
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path returns the file the store was opened from.
func (db *DB) Path() string { return db.path }

// SchemaVersion returns how many migrations the file has had applied.
func (db *DB) SchemaVersion() (int, error) {
	var v int
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		v, err = schemaVersion(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("load schema version: %w", err)
	}
	return v, nil
}

// idKey is the 8-byte big-endian key for a user or update id, so keys sort
// in id order.
func idKey(id int64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(id))
	return k
}

// getUint64 reads an 8-byte big-endian value from the meta bucket; absent
// means 0.
func getUint64(tx *bbolt.Tx, key []byte) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(key)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta %s: %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func putUint64(tx *bbolt.Tx, key []byte, n uint64) error {
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, n)
	return tx.Bucket(bucketMeta).Put(key, v)
}

// checkCurrent reports whether a file opened read-only has every bucket and
// this build's schema version, so code may assume both as usual.
func (db *DB) checkCurrent(want int) error {
	return db.view(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %s missing: open the file read-write once to migrate it", name)
			}
		}
		have, err := schemaVersion(tx)
		if err != nil {
			return err
		}
		if have != want {
			return fmt.Errorf("schema version %d, this build uses %d: open it read-write once to migrate it", have, want)
		}
		return nil
	})
}
