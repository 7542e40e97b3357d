package store

// Answering a question again (the Retry button under an answer): the
// question is read back from the conversation, and the new answer replaces
// the old exchange instead of repeating the question in the history.

import (
	"fmt"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// LastQuestion returns the newest user turn of a conversation; ok is false
// when the conversation has none (never started, or deleted).
func (db *DB) LastQuestion(userID int64, conv uint64) (q valex.Turn, ok bool, err error) {
	err = db.view(func(tx *bbolt.Tx) error {
		b, err := aiBucket(tx, bucketAITurns)
		if b == nil || err != nil {
			return err
		}
		prefix := turnPrefix(userID, conv)
		c := b.Cursor()
		for k, v := lastWithPrefix(c, prefix); k != nil; k, v = prevWithPrefix(c, prefix) {
			if len(v) < turnHeaderLen || v[1] != roleUser {
				continue
			}
			if q, err = db.decodeTurn(userID, v); err != nil {
				return fmt.Errorf("turn %x: %w", k, err)
			}
			ok = true
			return nil
		}
		return nil
	})
	if err != nil {
		return q, false, fmt.Errorf("last question of conversation %d of user %d: %w", conv, userID, err)
	}
	return q, ok, nil
}

// ReplaceExchangeCharged is SaveExchangeCharged for an answer given again:
// in the same commit it first deletes the conversation's last exchange —
// its newest user turn and every turn after it. A conversation without a
// user turn (deleted meanwhile) is valex.ErrNotFound, and nothing is
// written or charged.
func (db *DB) ReplaceExchangeCharged(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage, charge valex.Charge) error {
	if charge.Reservation != 0 {
		defer db.Release(charge.Reservation) // committed or not, the call is over
	}
	err := db.batch(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		if err := endUpdateTx(tx, charge); err != nil {
			return err
		}
		if done, err := chargedBefore(tx, usage, charge); done || err != nil {
			return err // the replay of a retry that replaced it already
		}
		if err := dropLastExchange(tx, userID, conv); err != nil {
			return err
		}
		return db.saveExchangeTx(tx, userID, conv, turns, usage, charge)
	})
	if err != nil {
		return fmt.Errorf("replace exchange of user %d: %w", userID, err)
	}
	return nil
}

// dropLastExchange deletes a conversation's newest user turn and the turns
// after it, with their time index entries.
func dropLastExchange(tx *bbolt.Tx, userID int64, conv uint64) error {
	b, err := aiBucket(tx, bucketAITurns)
	if err != nil {
		return err
	}
	idx, err := aiBucket(tx, bucketAITurnsByTime)
	if err != nil {
		return err
	}
	prefix := turnPrefix(userID, conv)
	var keys, times [][]byte
	found := false
	c := b.Cursor()
	for k, v := lastWithPrefix(c, prefix); k != nil; k, v = prevWithPrefix(c, prefix) {
		keys = append(keys, slices.Clone(k))
		if at, ok := turnAtNano(v); ok {
			times = append(times, turnTimeKey(at, k))
		}
		if len(v) >= turnHeaderLen && v[1] == roleUser {
			found = true
			break
		}
	}
	if !found {
		return fmt.Errorf("conversation %d has no question: %w", conv, valex.ErrNotFound)
	}
	for _, k := range times {
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
