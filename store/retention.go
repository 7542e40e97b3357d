package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/valex-ai/valex"
)

// Retention (policy section 8) is enforced by jobs; this file keeps what
// they need:
//
//   - tickets_closed: be(closedAtUnixNano)‖be(id) → empty, one entry per
//     closed ticket that still holds its requester's data, maintained by
//     putTicket. The communications purge seeks from the start and stops at
//     the first ticket that has not expired, so a run costs what expired,
//     not what exists.
//   - inactive_notices: be(userID) → be(sentUnixNano), when an inactive
//     user was told their account will be deleted.

// purgeBatch is how many tickets one write transaction purges, so a large
// backlog does not hold the write lock for long.
const purgeBatch = 256

// closedKey is the closed-tickets index key: be(closedAtUnixNano)‖be(id).
func closedKey(closedAt time.Time, id uint64) []byte { return openKey(closedAt, id) }

// closedIndexed reports whether r belongs in the closed-tickets index: closed
// and still naming its requester (an anonymized ticket has nothing left to
// purge).
func closedIndexed(r valex.Request) bool {
	return !r.Status.Open() && !r.ClosedAt.IsZero() && r.UserID != 0
}

// putClosedIndex moves r's closed-index entry from where old had it (old is
// nil for a new ticket).
func putClosedIndex(tx *bbolt.Tx, old *valex.Request, r valex.Request) error {
	b := tx.Bucket(bucketTicketsClosed)
	if old != nil && closedIndexed(*old) {
		if err := b.Delete(closedKey(old.ClosedAt, old.ID)); err != nil {
			return err
		}
	}
	if closedIndexed(r) {
		return b.Put(closedKey(r.ClosedAt, r.ID), nil)
	}
	return nil
}

// rebuildClosedIndex builds the closed-tickets index from the ticket
// records' plain headers, never the codec.
func rebuildClosedIndex(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bucketTicketsClosed); err != nil {
		return err
	}
	idx, err := tx.CreateBucket(bucketTicketsClosed)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketTickets).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return fmt.Errorf("bad ticket key %x", k)
		}
		r, _, err := decodeTicketHeader(binary.BigEndian.Uint64(k), v)
		if err != nil {
			return err
		}
		if !closedIndexed(r) {
			return nil
		}
		return idx.Put(closedKey(r.ClosedAt, r.ID), nil)
	})
}

// heldTx reports whether a legal hold stands on a user's data: one placed
// on the account, or one of their tickets on hold (a dispute) — the same
// rule the desk applies before an erasure.
func heldTx(tx *bbolt.Tx, userID int64) bool {
	if tx.Bucket(bucketHolds).Get(idKey(userID)) != nil {
		return true
	}
	prefix := idKey(userID)
	c := tx.Bucket(bucketTicketsByUser).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if valex.RequestStatus(v) == valex.StatusOnHold {
			return true
		}
	}
	return false
}

// PurgeClosedTickets erases the requester's data from every closed ticket
// for which expired(closedAt) holds, oldest first, and stops at the first
// that has not expired (expired must be monotone: true up to a cutoff). A
// purged ticket keeps only its bookkeeping — kind, dates, statuses, who on
// the staff acted — as EraseUser leaves it: its text, messages, notes and
// reasons go with the requester's id, its reminder marks and the links from
// the requester's chat; its audit trail stays whole and ends with a
// "purged" entry. Tickets of a user under a legal hold are kept and
// revisited on the next run. Reading the index needs no codec. It returns
// how many expired entries it read, how many tickets it purged and how many
// it kept for a hold.
func (db *DB) PurgeClosedTickets(at time.Time, expired func(closedAt time.Time) bool) (visited, purged, held int, err error) {
	var from []byte // the first key the next batch may read
	for {
		done := false
		err = db.update(func(tx *bbolt.Tx) error {
			keys, err := expiredKeys(tx.Bucket(bucketTicketsClosed), from, 16, purgeBatch, expired)
			if err != nil {
				return err
			}
			done = len(keys) < purgeBatch
			for _, k := range keys {
				visited++
				kept, err := db.purgeTicket(tx, k, at)
				if err != nil {
					return err
				}
				if kept {
					held++
				} else {
					purged++
				}
				// Past this key: a held entry stays in the index.
				from = append(slices.Clone(k), 0)
			}
			return nil
		})
		if err != nil {
			return visited, purged, held, fmt.Errorf("purge closed tickets: %w", err)
		}
		if done {
			return visited, purged, held, nil
		}
	}
}

// purgeTicket purges the ticket of one closed-index entry, unless its
// requester is held.
func (db *DB) purgeTicket(tx *bbolt.Tx, k []byte, at time.Time) (held bool, err error) {
	id := binary.BigEndian.Uint64(k[8:])
	closed := tx.Bucket(bucketTicketsClosed)
	v := tx.Bucket(bucketTickets).Get(ticketKey(id))
	if v == nil {
		return false, closed.Delete(k) // a stale entry: nothing left to purge
	}
	old, _, err := decodeTicketHeader(id, v)
	if err != nil {
		return false, err
	}
	uid := old.UserID
	if uid != 0 && heldTx(tx, uid) {
		return true, nil
	}
	r := old
	r.Messages, r.History = slices.Clone(old.Messages), slices.Clone(old.History)
	anonymize(&r)
	if err := db.putTicket(tx, &old, r); err != nil {
		return false, err
	}
	if err := closed.Delete(k); err != nil {
		return false, err
	}
	if uid == 0 {
		return false, nil
	}
	if err := tx.Bucket(bucketTicketsByUser).Delete(userTicketKey(uid, id)); err != nil {
		return false, err
	}
	if _, err := deleteRange(tx.Bucket(bucketTicketReminders), ticketKey(id)); err != nil {
		return false, err
	}
	if err := unlinkChat(tx, uid, id); err != nil {
		return false, err
	}
	_, err = db.appendAudit(tx, valex.AuditEntry{TicketID: id, At: at, Action: valex.AuditPurged,
		Detail: fmt.Sprintf("messages=%d", len(old.Messages))})
	return false, err
}

// unlinkChat drops the links from a user's private chat (its id is the
// user id) to one ticket.
func unlinkChat(tx *bbolt.Tx, chatID int64, ticketID uint64) error {
	b := tx.Bucket(bucketTicketMessages)
	want := ticketKey(ticketID)
	prefix := idKey(chatID)
	var drop [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if bytes.Equal(v, want) {
			drop = append(drop, slices.Clone(k))
		}
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// InactiveStatus returns what the inactivity job decides on, without
// opening the codec: the user's last activity and language, when they were
// last told their account will be deleted (zero if never) and whether a
// legal hold stands. A missing user is an error wrapping valex.ErrNotFound.
func (db *DB) InactiveStatus(userID int64) (lastActive, noticeAt time.Time, lang string, held bool, err error) {
	err = db.view(func(tx *bbolt.Tx) error {
		rec, err := userRecordTx(tx, userID)
		if err != nil {
			return err
		}
		lastActive, lang = fromUnixNano(rec.lastActiveAt), rec.language
		if n := tx.Bucket(bucketInactiveNotices).Get(idKey(userID)); len(n) == 8 {
			noticeAt = fromUnixNano(int64(binary.BigEndian.Uint64(n)))
		}
		held = heldTx(tx, userID)
		return nil
	})
	if err != nil {
		return time.Time{}, time.Time{}, "", false, fmt.Errorf("load inactivity of user %d: %w", userID, err)
	}
	return lastActive, noticeAt, lang, held, nil
}

// SetInactiveNotice records when a user was told their inactive account
// will be deleted.
func (db *DB) SetInactiveNotice(userID int64, at time.Time) error {
	err := db.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketUsers).Get(idKey(userID)) == nil {
			return valex.ErrNotFound
		}
		return tx.Bucket(bucketInactiveNotices).Put(idKey(userID), binary.BigEndian.AppendUint64(nil, uint64(unixNano(at))))
	})
	if err != nil {
		return fmt.Errorf("record inactivity notice of user %d: %w", userID, err)
	}
	return nil
}

// PruneInactiveNotices drops the notice records that no longer matter: of
// users who are gone (erased, by the job or by /forget) and of users who
// came back after the notice. It reads only the notice records, which exist
// for inactive users alone, and returns how many went.
func (db *DB) PruneInactiveNotices() (int, error) {
	n := 0
	err := db.update(func(tx *bbolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		b := tx.Bucket(bucketInactiveNotices)
		var drop [][]byte
		err := b.ForEach(func(k, v []byte) error {
			u := users.Get(k)
			if u == nil {
				drop = append(drop, slices.Clone(k))
				return nil
			}
			rec, err := decodeUserRecord(u)
			if err != nil {
				return err
			}
			if len(v) != 8 || rec.lastActiveAt > int64(binary.BigEndian.Uint64(v)) {
				drop = append(drop, slices.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(drop)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune inactivity notices: %w", err)
	}
	return n, nil
}

// The turn-time index, for the conversations retention rule:
//
//   - ai_turns_by_time: be(atUnixNano)‖turn key → empty, one entry per
//     stored conversation turn (voice transcripts are turns too),
//     maintained by SaveExchange and every deletion of turns. The
//     conversations purge seeks from the start and stops at the first turn
//     that has not expired: a run costs what expired, not what exists.
//
// The bucket is created by the migration that backfills it (migrate.go), so
// it exists in every file this build has opened.
var bucketAITurnsByTime = []byte("ai_turns_by_time")

// turnKeyLen is the length of a turn key: be(userID)‖be(conv)‖be(seq).
const turnKeyLen = 24

// turnPurgeBatch is how many turns one write transaction purges: deleting a
// turn touches two small keys, so batches are larger than for tickets.
const turnPurgeBatch = 4096

// turnTimeKey is the index key of the turn with key k written at at (the
// record header's time, in unix nanoseconds).
func turnTimeKey(atNano int64, k []byte) []byte {
	out := make([]byte, 8, 8+len(k))
	binary.BigEndian.PutUint64(out, uint64(atNano))
	return append(out, k...)
}

// turnAtNano reads the write time from a turn record's plain header, never
// the codec.
func turnAtNano(v []byte) (int64, bool) {
	if len(v) < turnHeaderLen {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(v[6:])), true
}

// indexTurn adds the index entry of a turn just stored under key k with
// record v.
func indexTurn(tx *bbolt.Tx, k, v []byte) error {
	at, ok := turnAtNano(v)
	if !ok {
		return fmt.Errorf("turn %x: bad header", k)
	}
	idx, err := aiBucket(tx, bucketAITurnsByTime)
	if err != nil {
		return err
	}
	idx.FillPercent = appendFill // keyed by time first: appended
	return idx.Put(turnTimeKey(at, k), nil)
}

// deleteTurns deletes every turn whose key starts with prefix (a user, or a
// user's conversation) with its index entries, and returns how many turns
// went and in how many conversations.
func deleteTurns(tx *bbolt.Tx, prefix []byte) (turns, convs int, err error) {
	b, err := aiBucket(tx, bucketAITurns)
	if err != nil {
		return 0, 0, err
	}
	idx, err := aiBucket(tx, bucketAITurnsByTime)
	if err != nil {
		return 0, 0, err
	}
	var keys, times [][]byte
	var lastConv []byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) == turnKeyLen {
			if at, ok := turnAtNano(v); ok {
				times = append(times, turnTimeKey(at, k))
			}
			if !bytes.Equal(k[:16], lastConv) {
				lastConv = slices.Clone(k[:16])
				convs++
			}
		}
		keys = append(keys, slices.Clone(k))
	}
	for _, k := range times {
		if err := idx.Delete(k); err != nil {
			return 0, 0, err
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, 0, err
		}
	}
	return len(keys), convs, nil
}

// rebuildTurnTimeIndex builds the turn-time index from the turn records'
// plain headers, never the codec.
func rebuildTurnTimeIndex(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bucketAITurnsByTime); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	idx, err := tx.CreateBucket(bucketAITurnsByTime)
	if err != nil {
		return err
	}
	turns, err := aiBucket(tx, bucketAITurns)
	if err != nil {
		return err
	}
	return turns.ForEach(func(k, v []byte) error {
		if len(k) != turnKeyLen {
			return fmt.Errorf("bad turn key %x", k)
		}
		at, ok := turnAtNano(v)
		if !ok {
			return fmt.Errorf("turn %x: bad header", k)
		}
		return idx.Put(turnTimeKey(at, k), nil)
	})
}

// PurgeTurns deletes, oldest first, every conversation turn for which
// expired(writtenAt) holds, and stops at the first that has not expired
// (expired must be monotone: true up to a cutoff). It reads only the
// turn-time index entries that expired, plus the first that has not, and
// never the codec. It returns how many index entries it visited and how
// many turns it deleted (an entry whose turn went already counts as
// visited only).
func (db *DB) PurgeTurns(expired func(writtenAt time.Time) bool) (visited, purged int, err error) {
	for {
		done := false
		err = db.update(func(tx *bbolt.Tx) error {
			idx, err := aiBucket(tx, bucketAITurnsByTime)
			if err != nil {
				return err
			}
			turns, err := aiBucket(tx, bucketAITurns)
			if err != nil {
				return err
			}
			keys, err := expiredKeys(idx, nil, 8+turnKeyLen, turnPurgeBatch, expired)
			if err != nil {
				return err
			}
			done = len(keys) < turnPurgeBatch
			for _, k := range keys {
				visited++
				if turns.Get(k[8:]) != nil {
					if err := turns.Delete(k[8:]); err != nil {
						return err
					}
					purged++
				}
				if err := idx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return visited, purged, fmt.Errorf("purge conversation turns: %w", err)
		}
		if done {
			return visited, purged, nil
		}
	}
}

// expiredKeys reads up to limit keys of a time index (keys begin with
// be(unixNano) and are keyLen long) from `from` (nil: the start), stopping
// at the first that has not expired. The keys are copies, so the caller may
// delete while it walks them.
func expiredKeys(idx *bbolt.Bucket, from []byte, keyLen, limit int, expired func(time.Time) bool) ([][]byte, error) {
	var keys [][]byte
	c := idx.Cursor()
	k, _ := c.First()
	if from != nil {
		k, _ = c.Seek(from)
	}
	for ; k != nil && len(keys) < limit; k, _ = c.Next() {
		if len(k) != keyLen {
			return nil, fmt.Errorf("bad time index key %x", k)
		}
		if !expired(fromUnixNano(int64(binary.BigEndian.Uint64(k)))) {
			break
		}
		keys = append(keys, slices.Clone(k))
	}
	return keys, nil
}
