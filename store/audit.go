package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// The audit log is append-only and hash-chained per ticket
// (valex.AuditEntry): audit holds be(ticketID)‖be(seq) → entry, and
// audit_heads be(ticketID) → be(seq)‖hash of the ticket's latest entry. The
// head is what lets VerifyAudit notice entries cut off the end of a trail,
// which the chain alone cannot show. Entries hold categories and counts,
// never personal values, and are kept when the ticket's text is erased:
// they are the proof that the erasure happened.

// auditRecordV1 starts an entry:
//
//	version(1) | be(unix seconds)(8) | be(nanoseconds)(4) | be(actor)(8) |
//	be16(len(action)) action | be32(len(detail)) detail | prevHash(32) | hash(32)
const auditRecordV1 byte = 1

func auditKey(ticketID, seq uint64) []byte { return pairKey(ticketID, seq) }

func encodeAudit(e valex.AuditEntry) []byte {
	v := make([]byte, 0, 1+8+4+8+2+len(e.Action)+4+len(e.Detail)+64)
	v = append(v, auditRecordV1)
	v = binary.BigEndian.AppendUint64(v, uint64(e.At.Unix()))
	v = binary.BigEndian.AppendUint32(v, uint32(e.At.Nanosecond()))
	v = binary.BigEndian.AppendUint64(v, uint64(e.Actor))
	v = binary.BigEndian.AppendUint16(v, uint16(len(e.Action)))
	v = append(v, e.Action...)
	v = binary.BigEndian.AppendUint32(v, uint32(len(e.Detail)))
	v = append(v, e.Detail...)
	v = append(v, e.PrevHash[:]...)
	return append(v, e.Hash[:]...)
}

func decodeAudit(k, v []byte) (valex.AuditEntry, error) {
	bad := func(what string) (valex.AuditEntry, error) {
		return valex.AuditEntry{}, fmt.Errorf("audit entry %x: %s", k, what)
	}
	if len(k) != 16 {
		return bad("bad key")
	}
	if len(v) < 1+8+4+8+2 || v[0] != auditRecordV1 {
		return bad("bad header")
	}
	e := valex.AuditEntry{
		TicketID: binary.BigEndian.Uint64(k),
		Seq:      binary.BigEndian.Uint64(k[8:]),
		At:       time.Unix(int64(binary.BigEndian.Uint64(v[1:])), int64(binary.BigEndian.Uint32(v[9:]))).UTC(),
		Actor:    int64(binary.BigEndian.Uint64(v[13:])),
	}
	rest := v[21:]
	n := int(binary.BigEndian.Uint16(rest))
	if len(rest) < 2+n+4 {
		return bad("truncated action")
	}
	e.Action = string(rest[2 : 2+n])
	rest = rest[2+n:]
	m := int(binary.BigEndian.Uint32(rest))
	if len(rest) != 4+m+64 {
		return bad("truncated detail or hashes")
	}
	e.Detail = string(rest[4 : 4+m])
	copy(e.PrevHash[:], rest[4+m:])
	copy(e.Hash[:], rest[4+m+32:])
	return e, nil
}

// appendAudit chains e after its ticket's latest entry and stores it.
// e.TicketID must be set; Seq and the hashes are filled in.
func appendAudit(tx *bbolt.Tx, e valex.AuditEntry) (valex.AuditEntry, error) {
	if e.TicketID == 0 || e.Action == "" {
		return e, fmt.Errorf("audit entry without ticket or action")
	}
	heads := tx.Bucket(bucketAuditHeads)
	hk := ticketKey(e.TicketID)
	e.At = e.At.UTC()
	if h := heads.Get(hk); h != nil {
		if len(h) != 40 {
			return e, fmt.Errorf("bad audit head of ticket %d", e.TicketID)
		}
		prev := valex.AuditEntry{Seq: binary.BigEndian.Uint64(h)}
		copy(prev.Hash[:], h[8:])
		e.Chain(&prev)
	} else {
		e.Chain(nil)
	}
	if err := tx.Bucket(bucketAudit).Put(auditKey(e.TicketID, e.Seq), encodeAudit(e)); err != nil {
		return e, err
	}
	head := binary.BigEndian.AppendUint64(make([]byte, 0, 40), e.Seq)
	if err := heads.Put(hk, append(head, e.Hash[:]...)); err != nil {
		return e, err
	}
	return e, nil
}

// AppendAudit adds an entry to a ticket's trail, for what happens outside a
// ticket change (a reminder sent). Only Action, Detail, Actor and At are
// taken from e, and At must be set: the store has no clock.
func (db *DB) AppendAudit(ticketID uint64, e valex.AuditEntry) (valex.AuditEntry, error) {
	if e.At.IsZero() {
		return e, fmt.Errorf("append audit to ticket %d: no time", ticketID)
	}
	e.TicketID = ticketID
	var out valex.AuditEntry
	err := db.update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketTickets).Get(ticketKey(ticketID)) == nil {
			return valex.ErrNotFound
		}
		var err error
		out, err = appendAudit(tx, e)
		return err
	})
	if err != nil {
		return valex.AuditEntry{}, fmt.Errorf("append audit to ticket %d: %w", ticketID, err)
	}
	return out, nil
}

// Audit returns a ticket's trail, first entry first.
func (db *DB) Audit(ticketID uint64) ([]valex.AuditEntry, error) {
	var out []valex.AuditEntry
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		out, err = auditOf(tx, ticketID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load audit of ticket %d: %w", ticketID, err)
	}
	return out, nil
}

func auditOf(tx *bbolt.Tx, ticketID uint64) ([]valex.AuditEntry, error) {
	var out []valex.AuditEntry
	prefix := ticketKey(ticketID)
	c := tx.Bucket(bucketAudit).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		e, err := decodeAudit(k, v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	Tickets int           // trails checked
	Entries int           // entries checked
	Broken  []AuditBroken // trails that failed, in ticket order
}

// AuditBroken is one trail that failed verification.
type AuditBroken struct {
	TicketID uint64
	Err      error // a *valex.AuditChainError, or what else is wrong
}

// OK reports whether every trail verified.
func (r AuditReport) OK() bool { return len(r.Broken) == 0 }

// VerifyAudit checks every ticket's trail: each chain with
// valex.VerifyChain, and its last entry against the recorded head, so
// entries edited, dropped, reordered or cut off the end all show. It also
// reports a head without entries and a ticket without a trail. A broken
// trail is reported, not returned as an error; the error is for a store
// that cannot be read.
func (db *DB) VerifyAudit() (AuditReport, error) {
	var rep AuditReport
	err := db.view(func(tx *bbolt.Tx) error {
		heads := tx.Bucket(bucketAuditHeads)
		seen := map[uint64]bool{}
		var trail []valex.AuditEntry
		var cur uint64
		var malformed error
		flush := func() {
			if len(trail) == 0 && malformed == nil {
				return
			}
			rep.Tickets++
			rep.Entries += len(trail)
			seen[cur] = true
			if err := verifyTrail(heads, cur, trail, malformed); err != nil {
				rep.Broken = append(rep.Broken, AuditBroken{TicketID: cur, Err: err})
			}
			trail, malformed = trail[:0], nil
		}
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 16 {
				return fmt.Errorf("bad audit key %x", k)
			}
			if id := binary.BigEndian.Uint64(k); id != cur {
				flush()
				cur = id
			}
			e, err := decodeAudit(k, v)
			if err != nil {
				if malformed == nil {
					malformed = err
				}
				continue
			}
			trail = append(trail, e)
		}
		flush()
		if err := heads.ForEach(func(k, _ []byte) error {
			if id := binary.BigEndian.Uint64(k); !seen[id] {
				rep.Tickets++
				rep.Broken = append(rep.Broken, AuditBroken{TicketID: id, Err: errors.New("trail has a head but no entries")})
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketTickets).ForEach(func(k, _ []byte) error {
			if id := binary.BigEndian.Uint64(k); !seen[id] && heads.Get(k) == nil {
				rep.Tickets++
				rep.Broken = append(rep.Broken, AuditBroken{TicketID: id, Err: errors.New("ticket has no audit trail")})
			}
			return nil
		})
	})
	if err != nil {
		return rep, fmt.Errorf("verify audit: %w", err)
	}
	return rep, nil
}

func verifyTrail(heads *bbolt.Bucket, id uint64, trail []valex.AuditEntry, malformed error) error {
	if malformed != nil {
		return malformed
	}
	if err := valex.VerifyChain(trail); err != nil {
		return err
	}
	h := heads.Get(ticketKey(id))
	last := trail[len(trail)-1]
	switch {
	case h == nil:
		return errors.New("trail has no head")
	case len(h) != 40:
		return errors.New("bad head")
	case binary.BigEndian.Uint64(h) != last.Seq || !bytes.Equal(h[8:], last.Hash[:]):
		return fmt.Errorf("head is at entry %d, the trail ends at %d: entries are missing or changed", binary.BigEndian.Uint64(h), last.Seq)
	}
	return nil
}
