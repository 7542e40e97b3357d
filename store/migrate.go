package store

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// migrations bring an older file up to date. The schema version stored in the
// meta bucket is the number of migrations applied, so entries are only ever
// appended, never edited or reordered. Each runs in its own transaction
// together with the version bump, after Open has created every bucket.
var migrations = []func(*bbolt.Tx) error{
	// v1: build the last-active index from the user records, for files whose
	// users were written without it.
	rebuildActiveIndex,
	// v2: index the tickets closed before the closed-tickets index existed,
	// so the communications purge finds them (retention.go).
	rebuildClosedIndex,
	// v3: index the conversation turns by the time they were written, so
	// the conversations purge finds the expired ones (retention.go).
	rebuildTurnTimeIndex,
	// v4: the global audit log. The trails are re-keyed and anchored in it
	// right after, by settleAuditKey: that needs the audit key, which
	// migrations do not get.
	createAuditLog,
	// v5: index the handled log by handled time, so the inbox prune reads
	// only what expired (inbox.go).
	rebuildHandledTimeIndex,
}

// migrate applies the migrations the file has not had yet.
func (db *DB) migrate(migs []func(*bbolt.Tx) error) error {
	var have int
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		have, err = schemaVersion(tx)
		return err
	})
	if err != nil {
		return err
	}
	if have > len(migs) {
		// Written by a newer build: running on it could corrupt it.
		return fmt.Errorf("this database was written by a newer valex (schema %d; this build knows %d): run that newer binary, or restore a backup this version made", have, len(migs))
	}
	for i := have; i < len(migs); i++ {
		err := db.update(func(tx *bbolt.Tx) error {
			if err := migs[i](tx); err != nil {
				return err
			}
			return putUint64(tx, keySchemaVersion, uint64(i+1))
		})
		if err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
	}
	return db.settleAuditKey()
}

func schemaVersion(tx *bbolt.Tx) (int, error) {
	v, err := getUint64(tx, keySchemaVersion)
	return int(v), err
}

// rebuildActiveIndex replaces the last-active index with one built from the
// user records. It reads only the plain header, never the codec.
func rebuildActiveIndex(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bucketUsersByActive); err != nil {
		return err
	}
	idx, err := tx.CreateBucket(bucketUsersByActive)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("bad user key %x", k)
		}
		rec, err := decodeUserRecord(v)
		if err != nil {
			return fmt.Errorf("user %x: %w", k, err)
		}
		id := int64(binary.BigEndian.Uint64(k))
		return idx.Put(activeKey(rec.lastActiveAt, id), nil)
	})
}

// SchemaLatest is the schema version this build writes.
func SchemaLatest() int { return len(migrations) }

// backupBeforeMigrate writes a compacted copy of a file at an older schema
// (with data, before this build migrates it) into opts.BackupBeforeMigrate.
func (db *DB) backupBeforeMigrate(latest int) error {
	var have int
	var empty bool
	err := db.bolt.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			empty = true // a new file: nothing to keep
			return nil
		}
		var err error
		have, err = schemaVersion(tx)
		return err
	})
	if err != nil || empty || have >= latest {
		return err
	}
	dir := db.opts.BackupBeforeMigrate
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dst := filepath.Join(dir, fmt.Sprintf("pre-migration-v%d-%s.db", have, time.Now().UTC().Format("20060102-150405")))
	if err := compactTo(dst, db.bolt, Options{Timeout: db.opts.Timeout}); err != nil {
		_ = os.Remove(dst)
		return fmt.Errorf("back up before migrating from schema %d: %w", have, err)
	}
	return nil
}
