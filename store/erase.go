package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// Erasure. A user is erased in this order (the service in package privacy
// drives it): their AI work is stopped, the erasure is written to the
// journal, their data key is deleted from the key store, and then every
// record keyed by them is deleted here. The key goes first because that is
// what makes every copy unreadable at once, backups included; the records
// go after so the file holds nothing of them either.
//
// A crash between the steps converges: on open, every user without a key
// is erased here (keyless records are unreadable anyway), and the service
// resumes journal entries whose key still exists.

var (
	bucketErasures = []byte("erasures") // be(userID) → be(ticketID)‖be(atUnixNano)
	keyKeysID      = []byte("keys_id")  // the id of the key store this file belongs to
)

// ErrNoAccount is returned by writes for a user who has no account: only
// account creation (/start) creates one, so a write racing an erasure fails
// instead of bringing the user back.
var ErrNoAccount = fmt.Errorf("%w: no account", valex.ErrNotFound)

// ErrKeysMismatch means valex.db and the key store do not belong together.
var ErrKeysMismatch = errors.New("this database belongs to another key store")

// requireAccount fails with ErrNoAccount unless the user has a record.
func requireAccount(tx *bbolt.Tx, userID int64) error {
	if userID == 0 || tx.Bucket(bucketUsers).Get(idKey(userID)) == nil {
		return ErrNoAccount
	}
	return nil
}

// KeysID returns the id of the key store the file at path belongs to, or ""
// when the file does not exist or has never been opened with a key store.
// It opens the file read-only, so it fails while a bot holds it.
func KeysID(path string, timeout time.Duration) (string, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return "", fmt.Errorf("read key store id of %s: %w", path, err)
	}
	defer db.Close()
	var id string
	err = db.View(func(tx *bbolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			id = string(m.Get(keyKeysID))
		}
		return nil
	})
	return id, err
}

// bindKeys ties the file to the key store on first use: an unbound file
// (new, or written before encryption) records the store's id and every
// existing user gets a data key, so their plain values keep reading and are
// sealed when next written. A file bound to another store is refused.
func (db *DB) bindKeys(owner KeyOwner) error {
	var bound string
	var users []int64
	err := db.view(func(tx *bbolt.Tx) error {
		bound = string(tx.Bucket(bucketMeta).Get(keyKeysID))
		if bound != "" {
			return nil
		}
		return tx.Bucket(bucketUsers).ForEach(func(k, _ []byte) error {
			users = append(users, int64(binary.BigEndian.Uint64(k)))
			return nil
		})
	})
	if err != nil {
		return err
	}
	if bound != "" {
		if bound != owner.ID() {
			return ErrKeysMismatch
		}
		return nil
	}
	for _, id := range users {
		if err := owner.Create(id); err != nil {
			return err
		}
	}
	return db.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyKeysID, []byte(owner.ID()))
	})
}

// sweepKeyless erases every user whose data key is gone: an erasure cut
// short after the key was deleted, or a backup restored from before an
// erasure. It returns how many were erased.
func (db *DB) sweepKeyless(owner KeyOwner, at time.Time) (int, error) {
	var gone []int64
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, _ []byte) error {
			if id := int64(binary.BigEndian.Uint64(k)); !owner.Has(id) {
				gone = append(gone, id)
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	db.consentsChanging()
	defer db.consentsChanging()
	for _, id := range gone {
		err := db.update(func(tx *bbolt.Tx) error {
			ticket, _ := journalEntry(tx, id)
			_, err := db.eraseUserTx(tx, id, ticket, at, nil)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("erase keyless user %d: %w", id, err)
		}
	}
	return len(gone), nil
}

// Swept returns how many keyless users Open erased.
func (db *DB) Swept() int { return db.swept }

// MarkErasure writes the erasure of a user to the journal before their key
// is deleted, so a crash half-way is finished on the next start.
func (db *DB) MarkErasure(userID int64, ticket uint64, at time.Time) error {
	v := binary.BigEndian.AppendUint64(nil, ticket)
	v = binary.BigEndian.AppendUint64(v, uint64(unixNano(at)))
	err := db.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketErasures).Put(idKey(userID), v)
	})
	if err != nil {
		return fmt.Errorf("journal erasure of user %d: %w", userID, err)
	}
	return nil
}

// PendingErasures returns the journal's unfinished erasures.
func (db *DB) PendingErasures() ([]valex.PendingErasure, error) {
	var out []valex.PendingErasure
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketErasures).ForEach(func(k, v []byte) error {
			if len(k) != 8 || len(v) != 16 {
				return fmt.Errorf("bad erasure journal entry %x", k)
			}
			out = append(out, valex.PendingErasure{
				UserID: int64(binary.BigEndian.Uint64(k)),
				Ticket: binary.BigEndian.Uint64(v),
				At:     fromUnixNano(int64(binary.BigEndian.Uint64(v[8:]))),
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list pending erasures: %w", err)
	}
	return out, nil
}

func journalEntry(tx *bbolt.Tx, userID int64) (ticket uint64, ok bool) {
	v := tx.Bucket(bucketErasures).Get(idKey(userID))
	if len(v) != 16 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// EraseUser deletes every record keyed by a user, in one transaction, as
// the erasure request erasureTicket asks (0: no request, as when a keyless
// user is swept on open), and returns what went, by category:
//
//   - the user record, its last-active entry, dialog state, legal hold
//     record, inactivity notice and erasure journal entry;
//   - consent and restriction events, broadcast deliveries (each notice
//     keeps its totals) and the user's id in targeted notices' recipient
//     lists, the links from their chat's messages to tickets;
//   - AI conversations, settings and the usage ledger;
//   - every ticket of the user, the erasure request included, is
//     anonymized: its sealed text, messages, notes and reasons are dropped
//     and the requester's id with them, while kind, dates, statuses and the
//     audit trail stay as the record that the requests were answered. Open
//     tickets are closed as done by the system first; the erasure request
//     is completed with an "erased" audit entry naming the counts.
//
// It reads only plain headers, so it works after the user's key is gone.
// extra holds counts from erasures done elsewhere for the audit entry. A
// ticket on hold cannot be closed, so EraseUser fails on one: holds are
// checked by the caller, and the store refuses rather than erase around one.
// Erasing twice is not an error.
func (db *DB) EraseUser(userID int64, erasureTicket uint64, at time.Time, extra map[string]int) (map[string]int, error) {
	var counts map[string]int
	db.consentsChanging() // the user's consents go with the account
	defer db.consentsChanging()
	err := db.update(func(tx *bbolt.Tx) error {
		var err error
		counts, err = db.eraseUserTx(tx, userID, erasureTicket, at, extra)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("erase user %d: %w", userID, err)
	}
	return counts, nil
}

func (db *DB) eraseUserTx(tx *bbolt.Tx, userID int64, erasureTicket uint64, at time.Time, extra map[string]int) (map[string]int, error) {
	counts := map[string]int{}
	key := idKey(userID)
	if v := tx.Bucket(bucketUsers).Get(key); v != nil {
		rec, err := decodeUserRecord(v)
		if err != nil {
			return nil, err
		}
		counts[CategoryProfile] = 1
		if u, err := db.decodeUser(userID, v); err == nil {
			counts[CategoryProfile] = profileFields(u)
		}
		counts[CategorySettings] = 1
		if err := tx.Bucket(bucketUsersByActive).Delete(activeKey(rec.lastActiveAt, userID)); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketUsers).Delete(key); err != nil {
			return nil, err
		}
	}
	// Payment records stay (the law keeps them 5 years) under a random
	// stand-in: not counted as erased, because they are not.
	if _, err := anonymizePaymentsTx(tx, userID); err != nil {
		return nil, err
	}
	if err := dropUserPendingTx(tx, userID); err != nil {
		return nil, err
	}
	for _, b := range [][]byte{bucketStates, bucketHolds, bucketInactiveNotices, bucketErasures, bucketWallets, bucketAllowList} {
		if err := tx.Bucket(b).Delete(key); err != nil {
			return nil, err
		}
	}
	var err error
	if counts[CategoryConsents], err = deleteRange(tx.Bucket(bucketConsents), key); err != nil {
		return nil, err
	}
	if counts[CategoryRestrictions], err = deleteRange(tx.Bucket(bucketRestrictions), key); err != nil {
		return nil, err
	}
	if counts[CategoryNotices], err = eraseDeliveries(tx, userID); err != nil {
		return nil, err
	}
	if err := dropNoticeRecipient(tx, userID); err != nil {
		return nil, err
	}
	// Links from the user's private chat to tickets: the chat id is the
	// user id.
	if _, err := deleteRange(tx.Bucket(bucketTicketMessages), key); err != nil {
		return nil, err
	}
	ai, err := eraseAITx(tx, userID)
	if err != nil {
		return nil, err
	}
	for k, n := range ai {
		counts[k] += n
	}

	tickets, err := userTicketHeaders(tx, userID)
	if err != nil {
		return nil, err
	}
	found := erasureTicket == 0
	for _, r := range tickets {
		found = found || r.ID == erasureTicket
		counts[CategoryRequests]++
		counts[CategoryMessages] += len(r.Messages)
	}
	if !found {
		return nil, fmt.Errorf("erasure ticket %d is not the user's", erasureTicket)
	}
	for k, n := range extra {
		counts[k] += n
	}
	for _, r := range tickets {
		old := r
		var audit []valex.AuditEntry
		if r.ID == erasureTicket {
			audit = append(audit, valex.AuditEntry{At: at, Action: valex.AuditErased, Detail: valex.AuditCounts(counts)})
		}
		if r.Status == valex.StatusOnHold && erasureTicket == 0 {
			// Only a keyless sweep gets here (the erasure routine refuses
			// while a ticket is held): the data is unreadable already.
			if err := r.Transition(valex.StatusInProgress, 0, "", at); err != nil {
				return nil, fmt.Errorf("resume ticket %d: %w", r.ID, err)
			}
		}
		if r.Status.Open() {
			if err := r.Transition(valex.StatusDone, 0, "", at); err != nil {
				return nil, fmt.Errorf("close ticket %d: %w", r.ID, err)
			}
		}
		anonymize(&r)
		if err := db.putTicket(tx, &old, r); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketTicketsByUser).Delete(userTicketKey(userID, r.ID)); err != nil {
			return nil, err
		}
		for _, e := range append(audit, ticketChanges(old, r, 0, at)...) {
			e.TicketID = r.ID
			if _, err := db.appendAudit(tx, e); err != nil {
				return nil, err
			}
		}
	}
	return counts, nil
}

// userTicketHeaders returns a user's tickets without their sealed text.
func userTicketHeaders(tx *bbolt.Tx, userID int64) ([]valex.Request, error) {
	tickets := tx.Bucket(bucketTickets)
	prefix := idKey(userID)
	var out []valex.Request
	c := tx.Bucket(bucketTicketsByUser).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := binary.BigEndian.Uint64(k[8:])
		v := tickets.Get(k[8:])
		if v == nil {
			continue // a stale index entry: deleted below with the rest
		}
		r, _, err := decodeTicketHeader(id, v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// anonymize drops everything in a ticket that is the requester's: their id
// and every free-text field. With the requester's id gone the ticket is
// written without a sealed part at all.
func anonymize(r *valex.Request) {
	uid := r.UserID
	r.UserID = 0
	r.Text, r.Resolution, r.RejectReason, r.ExtendReason = "", "", "", ""
	for i := range r.Messages {
		r.Messages[i].Text = ""
		if r.Messages[i].AuthorID == uid {
			r.Messages[i].AuthorID = 0
		}
	}
	for i := range r.History {
		r.History[i].Note = ""
		if r.History[i].By == uid {
			r.History[i].By = 0
		}
	}
}

func eraseDeliveries(tx *bbolt.Tx, userID int64) (int, error) {
	byUser := tx.Bucket(bucketDeliveriesByUser)
	deliveries := tx.Bucket(bucketDeliveries)
	prefix := idKey(userID)
	var notices []uint64
	c := byUser.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		notices = append(notices, binary.BigEndian.Uint64(k[8:]))
	}
	for _, n := range notices {
		if err := deliveries.Delete(pairKey(n, uint64(userID))); err != nil {
			return 0, err
		}
	}
	return deleteRange(byUser, prefix)
}

// dropNoticeRecipient removes the user from the recipient list of every
// targeted notice (/breach ids=…). Notices are few: one scan is fine.
func dropNoticeRecipient(tx *bbolt.Tx, userID int64) error {
	b := tx.Bucket(bucketNotices)
	type change struct {
		key []byte
		rec noticeRecord
	}
	var changes []change
	err := b.ForEach(func(k, v []byte) error {
		var rec noticeRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode notice %x: %w", k, err)
		}
		kept := rec.UserIDs[:0:0]
		for _, id := range rec.UserIDs {
			if id != userID {
				kept = append(kept, id)
			}
		}
		if len(kept) != len(rec.UserIDs) {
			rec.UserIDs = kept
			if len(kept) == 0 {
				// Empty means "everyone" to a notice: keep it targeted.
				rec.UserIDs = []int64{0}
			}
			changes = append(changes, change{append([]byte(nil), k...), rec})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range changes {
		v, err := json.Marshal(c.rec)
		if err != nil {
			return err
		}
		if err := b.Put(c.key, v); err != nil {
			return err
		}
	}
	return nil
}
