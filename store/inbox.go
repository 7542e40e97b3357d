package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/valex-ai/valex"
)

// The inbox makes Telegram updates durable. The poller stores each batch
// with InboxAdd before it acknowledges the batch's offset to Telegram, so a
// crash never loses an update; after a restart InboxPending replays what was
// stored but not handled. The high-water mark is the largest update id ever
// stored: anything at or below it is a redelivery and is dropped, so an
// update is handled at most once per store file. Telegram update ids are
// positive; ids <= 0 are dropped as well.

// ErrAlreadyHandled is returned (wrapped) by InboxDone for an update id that
// is already in the handled log.
var ErrAlreadyHandled = errors.New("update already handled")

// InboxEntry is one Telegram update: its update_id and raw JSON. It is the
// domain type, so the bot's Inbox interface and the store agree without
// importing each other.
type InboxEntry = valex.InboxEntry

// handledFill is the page fill of the handled log: keyed by update id but
// written as updates finish, commands at once and AI questions after their
// answer, hundreds of updates later on a busy bot. bbolt splits a page by
// size, not where the keys arrive, so appendFill leaves slivers behind the
// late ones (48 % full with two in five late) and the even split wastes half
// of every page in order (50 %); 0.8 keeps both near or above two thirds
// (79 % and 66 %; TestHandledLogPagesStayUsedInEitherOrder).
const handledFill = 0.8

// appendFill is the page fill for buckets whose keys grow at the end of
// their range (update ids, times, a user's or a conversation's sequence):
// bbolt splits a full page at this fill, and the older half of a split
// gets no more keys, so bbolt's default (half-full pages) would stay half
// empty for good.
const appendFill = 0.9

// InboxAdd stores, in one transaction, the entries of batch whose ids are
// above the high-water mark and not repeated within the batch, advances the
// mark and returns the entries it stored, in batch order. The returned
// entries share their payloads with batch.
func (db *DB) InboxAdd(batch []InboxEntry) (added []InboxEntry, err error) {
	return db.InboxAddDone(batch, nil, time.Time{})
}

// InboxAddDone is InboxAdd and InboxDone(done, at) in one transaction: the
// poller's commit of a new batch takes along the ids handled since the last
// one, so a steady trickle of updates costs one disk sync each, not two. An
// id of done that is already handled is ignored here (InboxDone reports it).
func (db *DB) InboxAddDone(batch []InboxEntry, done []int, at time.Time) (added []InboxEntry, err error) {
	if len(batch) == 0 && len(done) == 0 {
		return nil, nil
	}
	// bbolt needs keys to stay valid until commit: one buffer for all of them.
	keys := make([]byte, 8*len(batch))
	buf := make([]byte, 32*len(done))
	err = db.update(func(tx *bbolt.Tx) error {
		var err error
		if added, err = db.addTx(tx, batch, keys); err != nil {
			return err
		}
		_, err = doneTx(tx, done, at, buf)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("inbox add: %w", err)
	}
	return added, nil
}

// addTx is InboxAdd's transaction; keys holds 8 bytes per entry of batch.
func (db *DB) addTx(tx *bbolt.Tx, batch []InboxEntry, keys []byte) ([]InboxEntry, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	mark, err := getUint64(tx, keyInboxHighWater)
	if err != nil {
		return nil, err
	}
	pending := tx.Bucket(bucketInboxPending)
	pending.FillPercent = appendFill
	added := make([]InboxEntry, 0, len(batch))
	top := mark
	for i, e := range batch {
		if e.ID <= 0 || uint64(e.ID) <= mark {
			continue
		}
		key := keys[8*i : 8*i+8 : 8*i+8]
		binary.BigEndian.PutUint64(key, uint64(e.ID))
		// Telegram sends ids in ascending order, so this lookup only
		// runs for a repeat (or out-of-order id) within the batch.
		if uint64(e.ID) <= top && hasKey(pending, key) {
			continue
		}
		v, err := db.sealInbox(e)
		if err != nil {
			return nil, fmt.Errorf("update %d: %w", e.ID, err)
		}
		if err := pending.Put(key, v); err != nil {
			return nil, fmt.Errorf("update %d: %w", e.ID, err)
		}
		added = append(added, e)
		top = max(top, uint64(e.ID))
	}
	if top == mark {
		return added, nil
	}
	return added, putUint64(tx, keyInboxHighWater, top)
}

// InboxHighWater returns the largest update id ever stored, 0 if none.
func (db *DB) InboxHighWater() (int, error) {
	var mark uint64
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		mark, err = getUint64(tx, keyInboxHighWater)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("load inbox high-water mark: %w", err)
	}
	return int(mark), nil
}

// InboxPendingCount is how many updates are stored but not yet handled,
// without opening them (a metric scraped while the bot runs: InboxPending
// would decrypt every one).
func (db *DB) InboxPendingCount() (int, error) {
	var n int
	err := db.view(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketInboxPending).Stats().KeyN
		return nil
	})
	return n, err
}

// InboxPending returns the stored but not yet handled entries in id order,
// for replay after a restart.
func (db *DB) InboxPending() ([]InboxEntry, error) {
	var out []InboxEntry
	var void [][]byte // updates of erased senders: nothing to replay
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInboxPending).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("bad inbox key %x", k)
			}
			e, err := db.openInbox(int(binary.BigEndian.Uint64(k)), v)
			if errors.Is(err, ErrNoKey) {
				void = append(void, bytes.Clone(k))
				return nil
			}
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err == nil && len(void) > 0 {
		err = db.update(func(tx *bbolt.Tx) error {
			for _, k := range void {
				if err := tx.Bucket(bucketInboxPending).Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("list pending updates: %w", err)
	}
	return out, nil
}

// InboxDone marks updates handled at `at`, in one transaction: it removes
// them from the pending set and records them in the handled log. An id that
// is already in the handled log keeps its first time and makes InboxDone
// return an error wrapping ErrAlreadyHandled; the other ids are still
// recorded.
func (db *DB) InboxDone(ids []int, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	// Keys and values must stay valid until commit: one buffer for all
	// (16 bytes of handled-log key and value, 16 of index key, per id).
	buf := make([]byte, 32*len(ids))
	var again []int
	err := db.update(func(tx *bbolt.Tx) error {
		var err error
		again, err = doneTx(tx, ids, at, buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("inbox done: %w", err)
	}
	if len(again) > 0 {
		return fmt.Errorf("inbox done: updates %v: %w", again, ErrAlreadyHandled)
	}
	return nil
}

// doneTx is InboxDone's transaction; buf holds 32 bytes per id. It returns
// the ids that were handled already.
func doneTx(tx *bbolt.Tx, ids []int, at time.Time, buf []byte) (again []int, err error) {
	if len(ids) == 0 {
		return nil, nil
	}
	nanos := uint64(unixNano(at))
	handled := tx.Bucket(bucketInboxHandled)
	handled.FillPercent = handledFill
	byTime := tx.Bucket(bucketInboxHandledByTime)
	byTime.FillPercent = appendFill
	// One cursor per bucket, reused for every id: Bucket.Get and
	// Bucket.Delete would each build a new cursor and allocate.
	pending := tx.Bucket(bucketInboxPending).Cursor()
	seen := handled.Cursor()
	for i, id := range ids {
		key := buf[32*i : 32*i+8 : 32*i+8]
		val := buf[32*i+8 : 32*i+16 : 32*i+16]
		binary.BigEndian.PutUint64(key, uint64(id))
		binary.BigEndian.PutUint64(val, nanos)
		if k, _ := pending.Seek(key); bytes.Equal(k, key) {
			if err := pending.Delete(); err != nil {
				return nil, fmt.Errorf("update %d: %w", id, err)
			}
		}
		if k, _ := seen.Seek(key); bytes.Equal(k, key) {
			again = append(again, id)
			continue
		}
		if err := handled.Put(key, val); err != nil {
			return nil, fmt.Errorf("update %d: %w", id, err)
		}
		if err := byTime.Put(handledTimeKey(buf[32*i+16:32*i+32:32*i+32], nanos, uint64(id)), nil); err != nil {
			return nil, fmt.Errorf("update %d: %w", id, err)
		}
	}
	return again, nil
}

// InboxHandled calls fn for every entry of the handled log in id order. fn
// runs inside a read transaction: it must not write to the store.
func (db *DB) InboxHandled(fn func(id int, at time.Time) error) error {
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketInboxHandled).ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 8 {
				return fmt.Errorf("bad handled-log entry %x", k)
			}
			return fn(int(binary.BigEndian.Uint64(k)), fromUnixNano(int64(binary.BigEndian.Uint64(v))))
		})
	})
	if err != nil {
		return fmt.Errorf("list handled updates: %w", err)
	}
	return nil
}

// inboxPruneBatch is how many handled-log entries one write transaction
// prunes: the poller's commits wait at most one batch, not the whole prune.
const inboxPruneBatch = 4096

// handledTimeKey is the handled-by-time index key: be(handledUnixNano)‖be(id).
func handledTimeKey(dst []byte, atNano uint64, id uint64) []byte {
	binary.BigEndian.PutUint64(dst[:8], atNano)
	binary.BigEndian.PutUint64(dst[8:16], id)
	return dst[:16]
}

// InboxPruneHandled drops handled-log entries handled before `before` and
// returns how many it dropped. It walks the handled-by-time index from the
// oldest entry and stops at the first that is not old enough, so a run costs
// what expired, not what is kept; it deletes in batches of inboxPruneBatch,
// one transaction each, so the poller's writes go on between batches.
func (db *DB) InboxPruneHandled(before time.Time) (int, error) {
	limit := uint64(unixNano(before))
	keys := make([]byte, 0, 16*inboxPruneBatch) // one batch's index keys, copied out of the cursor
	n := 0
	for {
		done := false
		err := db.update(func(tx *bbolt.Tx) error {
			keys = keys[:0]
			idx := tx.Bucket(bucketInboxHandledByTime).Cursor()
			for k, _ := idx.First(); k != nil && len(keys) < cap(keys); k, _ = idx.Next() {
				if len(k) != 16 {
					return fmt.Errorf("bad handled-time key %x", k)
				}
				if binary.BigEndian.Uint64(k) >= limit {
					break
				}
				keys = append(keys, k...)
			}
			done = len(keys) < cap(keys)
			// Deleting through reused cursors: Bucket.Delete would build a
			// new cursor per key.
			handled := tx.Bucket(bucketInboxHandled).Cursor()
			for i := 0; i < len(keys); i += 16 {
				key := keys[i : i+16 : i+16]
				if k, _ := idx.Seek(key); bytes.Equal(k, key) {
					if err := idx.Delete(); err != nil {
						return err
					}
				}
				if k, _ := handled.Seek(key[8:]); bytes.Equal(k, key[8:]) {
					if err := handled.Delete(); err != nil {
						return err
					}
				}
			}
			n += len(keys) / 16
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("prune handled updates before %s: %w", before.Format(time.RFC3339), err)
		}
		if done {
			return n, db.pruneTicketsByUpdate()
		}
		runtime.Gosched() // let a waiting writer (the poller) take the lock first
	}
}

// pruneTicketsByUpdate forgets which update opened a ticket, started a
// notice or paid for a call once the update can no longer come back: it is neither pending nor
// in the handled log (pruned). Update ids grow, so each walk stops at the
// first still known.
func (db *DB) pruneTicketsByUpdate() error {
	err := db.update(func(tx *bbolt.Tx) error {
		pending, handled := tx.Bucket(bucketInboxPending), tx.Bucket(bucketInboxHandled)
		for _, name := range [][]byte{bucketTicketsByUpdate, bucketNoticesByUpdate, bucketUsageByUpdate} {
			c := tx.Bucket(name).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.First() {
				if len(k) < 8 {
					return fmt.Errorf("bad by-update key %x", k)
				}
				if update := k[:8]; hasKey(pending, update) || hasKey(handled, update) {
					break
				}
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune the by-update indexes: %w", err)
	}
	return nil
}

// rebuildHandledTimeIndex builds the handled-by-time index from the handled
// log (files written before the index existed).
func rebuildHandledTimeIndex(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bucketInboxHandledByTime); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	idx, err := tx.CreateBucket(bucketInboxHandledByTime)
	if err != nil {
		return err
	}
	idx.FillPercent = appendFill
	return tx.Bucket(bucketInboxHandled).ForEach(func(k, v []byte) error {
		if len(k) != 8 || len(v) != 8 {
			return fmt.Errorf("bad handled-log entry %x", k)
		}
		key := handledTimeKey(make([]byte, 16), binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(k))
		return idx.Put(key, nil)
	})
}

// hasKey reports whether b holds key. Unlike Get it also works for empty
// values put earlier in the same transaction.
func hasKey(b *bbolt.Bucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return bytes.Equal(k, key)
}

// formatInboxSealed starts a pending update sealed at rest:
// formatInboxSealed | be(owner) | sealed payload. Raw JSON starts with '{'.
const formatInboxSealed byte = 3

// sealInbox seals a pending update's payload with its sender's key, or with
// the system key when the sender has none (a first /start). Without a key
// store (tests with a plain codec) the payload is stored as it came.
func (db *DB) sealInbox(e InboxEntry) ([]byte, error) {
	owner, ok := db.codec.(KeyOwner)
	if !ok {
		return e.Payload, nil
	}
	uid := e.UserID
	if uid != 0 && !owner.Has(uid) {
		uid = systemOwnerID
	}
	sealed, err := owner.Seal(uid, e.Payload)
	if err != nil {
		return nil, err
	}
	v := make([]byte, 0, 9+len(sealed))
	v = append(v, formatInboxSealed)
	v = binary.BigEndian.AppendUint64(v, uint64(uid))
	return append(v, sealed...), nil
}

// openInbox is sealInbox's inverse; the payload is a copy.
func (db *DB) openInbox(id int, v []byte) (InboxEntry, error) {
	if len(v) == 0 || v[0] != formatInboxSealed {
		return InboxEntry{ID: id, Payload: bytes.Clone(v)}, nil // v dies with the transaction
	}
	if len(v) < 9 {
		return InboxEntry{}, fmt.Errorf("update %d: truncated", id)
	}
	uid := int64(binary.BigEndian.Uint64(v[1:9]))
	plain, err := db.codec.Open(uid, v[9:])
	if err != nil {
		return InboxEntry{}, fmt.Errorf("update %d: %w", id, err)
	}
	return InboxEntry{ID: id, Payload: bytes.Clone(plain), UserID: uid}, nil
}
