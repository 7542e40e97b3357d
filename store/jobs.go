package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// jobKeyPrefix namespaces job run times inside the meta bucket.
const jobKeyPrefix = "job_last_run:"

// JobLastRun returns when a job last finished successfully (zero if never).
func (db *DB) JobLastRun(name string) (time.Time, error) {
	var at time.Time
	err := db.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get([]byte(jobKeyPrefix + name))
		if len(v) == 8 {
			at = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
		}
		return nil
	})
	if err != nil {
		return at, fmt.Errorf("load last run of %s: %w", name, err)
	}
	return at, nil
}

// SetJobLastRun records a successful run of a job.
func (db *DB) SetJobLastRun(name string, at time.Time) error {
	err := db.update(func(tx *bbolt.Tx) error {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(at.UnixNano()))
		return tx.Bucket(bucketMeta).Put([]byte(jobKeyPrefix+name), v[:])
	})
	if err != nil {
		return fmt.Errorf("record last run of %s: %w", name, err)
	}
	return nil
}
