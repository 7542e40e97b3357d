package store

import (
	"fmt"

	"go.etcd.io/bbolt"
)

// The allow-list of a private bot: the Telegram ids admins let in.
var bucketAllowList = []byte("allow_list") // be(userID) → empty

// Allow lets a Telegram user use a private bot; Disallow takes it back.
func (db *DB) Allow(userID int64, allowed bool) error {
	err := db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAllowList)
		if allowed {
			return b.Put(idKey(userID), nil)
		}
		return b.Delete(idKey(userID))
	})
	if err != nil {
		return fmt.Errorf("allow-list user %d: %w", userID, err)
	}
	return nil
}

// Allowed reports whether a Telegram user is on the allow-list.
func (db *DB) Allowed(userID int64) (bool, error) {
	ok := false
	err := db.view(func(tx *bbolt.Tx) error {
		ok = tx.Bucket(bucketAllowList).Get(idKey(userID)) != nil
		return nil
	})
	return ok, err
}
