package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// Desk tickets (valex.Request) are stored in three places, kept in step by
// every write in one transaction:
//
//   - tickets: be(id) → the record. A plain header (bookkeeping that indexes
//     and the desk's lists need) followed by the personal part sealed with the
//     requester's key: Text, Resolution, RejectReason, ExtendReason,
//     Messages[].Text and History[].Note.
//   - tickets_open: be(dueUnixNano)‖be(id) → a short summary, for open
//     tickets only. /requests pages it in due order and the reminder job
//     seeks "due before X", so both cost what they show, not what exists.
//     Closing a ticket removes its entry; extending it moves the entry.
//   - tickets_by_user: be(userID)‖be(id) → status, for the user's own
//     tickets, export and erasure.
//   - tickets_closed: be(closedAtUnixNano)‖be(id), for closed tickets, so
//     the communications purge (retention.go) seeks from the oldest and
//     stops at the first that has not expired.
//
// Reminder marks sit in ticket_reminders, be(id)‖key → be(sentUnixNano), so
// a reminder goes out once even across restarts. Every change appends to
// the ticket's audit trail (audit.go) in the same transaction.

// ticketRecordV1 starts a ticket record:
//
//	version(1) | be32(len(header)) | header JSON | sealed personal part
//
// An anonymized ticket (its requester erased) has no sealed part.
const ticketRecordV1 byte = 1

type ticketHeader struct {
	UserID     int64        `json:"u,omitempty"`
	Kind       string       `json:"k"`
	Status     string       `json:"s"`
	Received   int64        `json:"r"`
	Due        int64        `json:"d"`
	OrigDue    int64        `json:"od,omitempty"`
	Extended   bool         `json:"x,omitempty"`
	ExtendedAt int64        `json:"xa,omitempty"`
	ExtendedBy int64        `json:"xb,omitempty"`
	Assignee   int64        `json:"a,omitempty"`
	Closed     int64        `json:"c,omitempty"`
	Msgs       []msgHeader  `json:"m,omitempty"`
	Hist       []histHeader `json:"h,omitempty"`
}

type msgHeader struct {
	At     int64 `json:"t"`
	Staff  bool  `json:"s,omitempty"`
	Author int64 `json:"a,omitempty"`
}

type histHeader struct {
	At     int64  `json:"t"`
	By     int64  `json:"b,omitempty"`
	From   string `json:"f"`
	To     string `json:"o"`
	Action string `json:"a,omitempty"`
}

// ticketPersonal is the sealed part: everything that may quote the user.
type ticketPersonal struct {
	Text       string   `json:"t,omitempty"`
	Resolution string   `json:"r,omitempty"`
	Reject     string   `json:"j,omitempty"`
	Extend     string   `json:"x,omitempty"`
	Msgs       []string `json:"m,omitempty"`
	Notes      []string `json:"n,omitempty"`
}

func (db *DB) encodeTicket(r valex.Request) ([]byte, error) {
	h := ticketHeader{
		UserID: r.UserID, Kind: string(r.Kind), Status: string(r.Status),
		Received: unixNano(r.ReceivedAt), Due: unixNano(r.DueAt), OrigDue: unixNano(r.OriginalDueAt),
		Extended: r.Extended, ExtendedAt: unixNano(r.ExtendedAt), ExtendedBy: r.ExtendedBy,
		Assignee: r.AssigneeID, Closed: unixNano(r.ClosedAt),
	}
	p := ticketPersonal{Text: r.Text, Resolution: r.Resolution, Reject: r.RejectReason, Extend: r.ExtendReason}
	for _, m := range r.Messages {
		h.Msgs = append(h.Msgs, msgHeader{At: unixNano(m.At), Staff: m.FromStaff, Author: m.AuthorID})
		p.Msgs = append(p.Msgs, m.Text)
	}
	for _, c := range r.History {
		h.Hist = append(h.Hist, histHeader{At: unixNano(c.At), By: c.By, From: string(c.From), To: string(c.To), Action: c.Action})
		p.Notes = append(p.Notes, c.Note)
	}
	head, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	var sealed []byte
	if r.UserID != 0 {
		plain, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		if sealed, err = db.codec.Seal(r.UserID, plain); err != nil {
			return nil, fmt.Errorf("seal ticket text: %w", err)
		}
	}
	v := make([]byte, 0, 5+len(head)+len(sealed))
	v = append(v, ticketRecordV1)
	v = binary.BigEndian.AppendUint32(v, uint32(len(head)))
	v = append(v, head...)
	return append(v, sealed...), nil
}

// splitTicket returns the header JSON and the sealed part of a record.
func splitTicket(v []byte) (head, sealed []byte, err error) {
	if len(v) < 5 || v[0] != ticketRecordV1 {
		return nil, nil, fmt.Errorf("decode ticket: bad header")
	}
	n := int(binary.BigEndian.Uint32(v[1:5]))
	if len(v) < 5+n {
		return nil, nil, fmt.Errorf("decode ticket: truncated header")
	}
	return v[5 : 5+n], v[5+n:], nil
}

// decodeTicket reads a whole ticket, opening the personal part with the
// codec.
func (db *DB) decodeTicket(id uint64, v []byte) (valex.Request, error) {
	r, sealed, err := decodeTicketHeader(id, v)
	if err != nil {
		return r, err
	}
	if len(sealed) == 0 {
		return r, nil // anonymized: the bookkeeping is all there is
	}
	plain, err := db.codec.Open(r.UserID, sealed)
	if err != nil {
		return valex.Request{}, fmt.Errorf("open ticket %d: %w", id, err)
	}
	var p ticketPersonal
	if err := json.Unmarshal(plain, &p); err != nil {
		return valex.Request{}, fmt.Errorf("decode ticket %d text: %w", id, err)
	}
	if len(p.Msgs) != len(r.Messages) || len(p.Notes) != len(r.History) {
		return valex.Request{}, fmt.Errorf("decode ticket %d: header and text disagree", id)
	}
	r.Text, r.Resolution, r.RejectReason, r.ExtendReason = p.Text, p.Resolution, p.Reject, p.Extend
	for i := range r.Messages {
		r.Messages[i].Text = p.Msgs[i]
	}
	for i := range r.History {
		r.History[i].Note = p.Notes[i]
	}
	return r, nil
}

// decodeTicketHeader reads the bookkeeping without the codec. Free-text
// fields stay empty; sealed aliases v.
func decodeTicketHeader(id uint64, v []byte) (valex.Request, []byte, error) {
	head, sealed, err := splitTicket(v)
	if err != nil {
		return valex.Request{}, nil, fmt.Errorf("ticket %d: %w", id, err)
	}
	var h ticketHeader
	if err := json.Unmarshal(head, &h); err != nil {
		return valex.Request{}, nil, fmt.Errorf("decode ticket %d: %w", id, err)
	}
	r := valex.Request{
		ID: id, UserID: h.UserID, Kind: valex.RequestKind(h.Kind), Status: valex.RequestStatus(h.Status),
		ReceivedAt: fromUnixNano(h.Received), DueAt: fromUnixNano(h.Due), OriginalDueAt: fromUnixNano(h.OrigDue),
		Extended: h.Extended, ExtendedAt: fromUnixNano(h.ExtendedAt), ExtendedBy: h.ExtendedBy,
		AssigneeID: h.Assignee, ClosedAt: fromUnixNano(h.Closed),
	}
	if len(h.Msgs) > 0 {
		r.Messages = make([]valex.RequestMessage, len(h.Msgs))
		for i, m := range h.Msgs {
			r.Messages[i] = valex.RequestMessage{At: fromUnixNano(m.At), FromStaff: m.Staff, AuthorID: m.Author}
		}
	}
	if len(h.Hist) > 0 {
		r.History = make([]valex.StatusChange, len(h.Hist))
		for i, c := range h.Hist {
			r.History[i] = valex.StatusChange{At: fromUnixNano(c.At), By: c.By,
				From: valex.RequestStatus(c.From), To: valex.RequestStatus(c.To), Action: c.Action}
		}
	}
	return r, sealed, nil
}

// ticketKey is the 8-byte big-endian key of a ticket id.
func ticketKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), id)
}

// openKey is the open-ticket index key: be(dueUnixNano)‖be(id).
func openKey(due time.Time, id uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(max(unixNano(due), 0)))
	binary.BigEndian.PutUint64(k[8:], id)
	return k
}

// userTicketKey is the per-user index key: be(userID)‖be(id).
func userTicketKey(userID int64, id uint64) []byte { return pairKey(uint64(userID), id) }

// pairKey is the 16-byte key be(hi)‖be(lo): a range per hi, in lo order.
func pairKey(hi, lo uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, hi)
	binary.BigEndian.PutUint64(k[8:], lo)
	return k
}

// The open-index summary is fixed-width numbers then two short strings, so
// a /requests page filters thousands of entries without decoding JSON:
//
//	version(1) | userID(8) | assignee(8) | received(8) | extended(1) | len(kind)(1) kind | len(status)(1) status
const openSummaryV1 byte = 1

// openSummaryFixed is the length of the fixed-width part, up to len(kind).
const openSummaryFixed = 26

func encodeOpenSummary(r valex.Request) []byte {
	v := make([]byte, openSummaryFixed, openSummaryFixed+2+len(r.Kind)+len(r.Status))
	v[0] = openSummaryV1
	binary.BigEndian.PutUint64(v[1:], uint64(r.UserID))
	binary.BigEndian.PutUint64(v[9:], uint64(r.AssigneeID))
	binary.BigEndian.PutUint64(v[17:], uint64(unixNano(r.ReceivedAt)))
	if r.Extended {
		v[25] = 1
	}
	v = append(v, byte(len(r.Kind)))
	v = append(v, r.Kind...)
	v = append(v, byte(len(r.Status)))
	return append(v, r.Status...)
}

// openSummaryFields returns the kind and status of a summary without
// allocating, for filtering.
func openSummaryFields(v []byte) (kind, status []byte, ok bool) {
	if len(v) < openSummaryFixed+2 || v[0] != openSummaryV1 {
		return nil, nil, false
	}
	n := int(v[openSummaryFixed])
	at := openSummaryFixed + 1
	if len(v) < at+n+1 {
		return nil, nil, false
	}
	kind = v[at : at+n]
	m := int(v[at+n])
	if len(v) != at+n+1+m {
		return nil, nil, false
	}
	return kind, v[at+n+1:], true
}

// decodeOpen turns an index entry back into a bookkeeping-only request.
func decodeOpen(k, v []byte) (valex.Request, error) {
	kind, status, ok := openSummaryFields(v)
	if len(k) != 16 || !ok {
		return valex.Request{}, fmt.Errorf("bad open-ticket index entry %x", k)
	}
	return valex.Request{
		ID:         binary.BigEndian.Uint64(k[8:]),
		UserID:     int64(binary.BigEndian.Uint64(v[1:])),
		AssigneeID: int64(binary.BigEndian.Uint64(v[9:])),
		ReceivedAt: fromUnixNano(int64(binary.BigEndian.Uint64(v[17:]))),
		Extended:   v[25] == 1,
		DueAt:      fromUnixNano(int64(binary.BigEndian.Uint64(k[:8]))),
		Kind:       valex.RequestKind(kind),
		Status:     valex.RequestStatus(status),
	}, nil
}

// CreateTicket stores a new ticket, gives it the next id and opens its
// audit trail with a "created" entry. r.ID must be zero.
//
// A ticket opened by a Telegram update (r.SourceUpdate > 0) is opened once
// per update: a replay of the update after a crash (the ticket committed,
// the reply not yet sent) returns the ticket it opened, with Replayed set.
func (db *DB) CreateTicket(r valex.Request) (valex.Request, error) {
	if r.ID != 0 || r.UserID == 0 || !r.Kind.Valid() || !slices.Contains(valex.RequestStatuses, r.Status) {
		return valex.Request{}, fmt.Errorf("create ticket: id %d, user %d, kind %q, status %q: not a new ticket", r.ID, r.UserID, r.Kind, r.Status)
	}
	var opened uint64 // the ticket this update opened before, if any
	err := db.update(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, r.UserID); err != nil {
			return err
		}
		byUpdate := tx.Bucket(bucketTicketsByUpdate)
		if r.SourceUpdate > 0 {
			if v := byUpdate.Get(idKey(r.SourceUpdate)); len(v) == 8 {
				opened = binary.BigEndian.Uint64(v)
				return nil
			}
		}
		id, err := tx.Bucket(bucketTickets).NextSequence()
		if err != nil {
			return err
		}
		r.ID = id
		if r.SourceUpdate > 0 {
			if err := byUpdate.Put(idKey(r.SourceUpdate), ticketKey(id)); err != nil {
				return err
			}
		}
		if err := db.putTicket(tx, nil, r); err != nil {
			return err
		}
		_, err = db.appendAudit(tx, valex.AuditEntry{TicketID: id, At: r.ReceivedAt, Action: valex.AuditCreated, Detail: "kind=" + string(r.Kind)})
		return err
	})
	if err != nil {
		return valex.Request{}, fmt.Errorf("create ticket for user %d: %w", r.UserID, err)
	}
	if opened != 0 {
		t, err := db.Ticket(opened)
		if err != nil {
			return valex.Request{}, fmt.Errorf("create ticket for user %d: the ticket update %d opened: %w", r.UserID, r.SourceUpdate, err)
		}
		t.SourceUpdate, t.Replayed = r.SourceUpdate, true
		return t, nil
	}
	return normalizeTicket(r), nil
}

// Ticket returns a ticket with its text, or an error wrapping
// valex.ErrNotFound.
func (db *DB) Ticket(id uint64) (valex.Request, error) {
	var r valex.Request
	err := db.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketTickets).Get(ticketKey(id))
		if v == nil {
			return valex.ErrNotFound
		}
		var err error
		r, err = db.decodeTicket(id, v)
		return err
	})
	if err != nil {
		return valex.Request{}, fmt.Errorf("load ticket %d: %w", id, err)
	}
	return r, nil
}

// UpdateTicket loads a ticket, lets fn change it and stores the result with
// its indexes, all in one transaction. The audit trail gets an entry for
// every change the store can see — status (and hold placed or lifted),
// assignee, extension, messages from staff (replied) or the user (message)
// — then the entries fn returns (their Action, Detail and Actor; TicketID,
// sequence and hashes are filled in). Derived entries name actor and at.
// If fn returns an error nothing is stored. fn must not change the id or
// the requester, nor edit or drop messages or history.
func (db *DB) UpdateTicket(id uint64, actor int64, at time.Time, fn func(*valex.Request) ([]valex.AuditEntry, error)) (valex.Request, error) {
	var out valex.Request
	err := db.update(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketTickets).Get(ticketKey(id))
		if v == nil {
			return valex.ErrNotFound
		}
		old, err := db.decodeTicket(id, v)
		if err != nil {
			return err
		}
		r := old // fn's own copy: no slices shared with old
		r.Messages, r.History = slices.Clone(old.Messages), slices.Clone(old.History)
		extra, err := fn(&r)
		if err != nil {
			return err
		}
		if r.ID != id || r.UserID != old.UserID || len(r.Messages) < len(old.Messages) || len(r.History) < len(old.History) {
			return fmt.Errorf("update changed the id, requester, messages or history")
		}
		if err := db.putTicket(tx, &old, r); err != nil {
			return err
		}
		for _, e := range append(ticketChanges(old, r, actor, at), extra...) {
			e.TicketID = id
			if e.At.IsZero() {
				e.At = at
			}
			if _, err := db.appendAudit(tx, e); err != nil {
				return err
			}
		}
		out = normalizeTicket(r)
		return nil
	})
	if err != nil {
		return valex.Request{}, fmt.Errorf("update ticket %d: %w", id, err)
	}
	return out, nil
}

// ticketChanges lists the audit entries for what changed from old to r:
// categories and counts only.
func ticketChanges(old, r valex.Request, actor int64, at time.Time) []valex.AuditEntry {
	var out []valex.AuditEntry
	add := func(action, detail string) {
		out = append(out, valex.AuditEntry{At: at, Actor: actor, Action: action, Detail: detail})
	}
	if r.Status != old.Status {
		add(valex.AuditStatus, "from="+string(old.Status)+",to="+string(r.Status))
		if r.Status == valex.StatusOnHold {
			add(valex.AuditHoldPlaced, "")
		}
		if old.Status == valex.StatusOnHold {
			add(valex.AuditHoldLifted, "")
		}
	}
	if r.AssigneeID != old.AssigneeID {
		add(valex.AuditAssigned, fmt.Sprintf("assignee=%d", r.AssigneeID))
	}
	if r.Extended && !old.Extended {
		add(valex.AuditExtended, fmt.Sprintf("days=%d", int(r.DueAt.Sub(old.DueAt).Hours()/24)))
	}
	var staff, user int
	for _, m := range r.Messages[len(old.Messages):] {
		if m.FromStaff {
			staff++
		} else {
			user++
		}
	}
	if staff > 0 {
		add(valex.AuditReplied, fmt.Sprintf("messages=%d", staff))
	}
	if user > 0 {
		add(valex.AuditMessage, fmt.Sprintf("messages=%d", user))
	}
	return out
}

// putTicket writes r and moves its index entries from where old had them
// (old is nil for a new ticket).
func (db *DB) putTicket(tx *bbolt.Tx, old *valex.Request, r valex.Request) error {
	v, err := db.encodeTicket(r)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketTickets).Put(ticketKey(r.ID), v); err != nil {
		return err
	}
	open := tx.Bucket(bucketTicketsOpen)
	if old != nil && old.Status.Open() {
		if err := open.Delete(openKey(old.DueAt, r.ID)); err != nil {
			return err
		}
	}
	if r.Status.Open() {
		if err := open.Put(openKey(r.DueAt, r.ID), encodeOpenSummary(r)); err != nil {
			return err
		}
	}
	if err := putClosedIndex(tx, old, r); err != nil {
		return err
	}
	if r.UserID == 0 {
		return nil
	}
	return tx.Bucket(bucketTicketsByUser).Put(userTicketKey(r.UserID, r.ID), []byte(r.Status))
}

// normalizeTicket returns r as it reads back: times in UTC without a
// monotonic reading.
func normalizeTicket(r valex.Request) valex.Request {
	n := func(t time.Time) time.Time { return fromUnixNano(unixNano(t)) }
	r.ReceivedAt, r.DueAt, r.OriginalDueAt = n(r.ReceivedAt), n(r.DueAt), n(r.OriginalDueAt)
	r.ExtendedAt, r.ClosedAt = n(r.ExtendedAt), n(r.ClosedAt)
	r.Messages = slices.Clone(r.Messages)
	for i := range r.Messages {
		r.Messages[i].At = n(r.Messages[i].At)
	}
	r.History = slices.Clone(r.History)
	for i := range r.History {
		r.History[i].At = n(r.History[i].At)
	}
	return r
}

// OpenTickets returns one page of open tickets in due order (overdue
// first), with the total number matching the filter. An empty kind or
// status matches all. The page holds bookkeeping only (id, requester, kind,
// status, received, due, assignee, extended), read from the open index
// without opening any record.
func (db *DB) OpenTickets(kind valex.RequestKind, status valex.RequestStatus, offset, limit int) (page []valex.Request, total int, err error) {
	wantKind, wantStatus := []byte(kind), []byte(status)
	err = db.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketTicketsOpen).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			kd, st, ok := openSummaryFields(v)
			if !ok {
				return fmt.Errorf("bad open-ticket index entry %x", k)
			}
			if (len(wantKind) > 0 && !bytes.Equal(kd, wantKind)) || (len(wantStatus) > 0 && !bytes.Equal(st, wantStatus)) {
				continue
			}
			if total >= offset && len(page) < limit {
				r, err := decodeOpen(k, v)
				if err != nil {
					return err
				}
				page = append(page, r)
			}
			total++
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list open tickets: %w", err)
	}
	return page, total, nil
}

// DueOpenTickets calls fn for every open ticket due before `before`, in due
// order, with the keys of the reminders already sent for it. It reads only
// the index entries that qualify and returns how many it visited. fn gets
// bookkeeping only (see OpenTickets) and runs after the read transaction
// has ended, so it may write to the store.
func (db *DB) DueOpenTickets(before time.Time, fn func(r valex.Request, sent map[string]bool) error) (visited int, err error) {
	limit := openKey(before, 0)[:8]
	type item struct {
		r    valex.Request
		sent map[string]bool
	}
	var items []item
	err = db.view(func(tx *bbolt.Tx) error {
		marks := tx.Bucket(bucketTicketReminders).Cursor()
		c := tx.Bucket(bucketTicketsOpen).Cursor()
		for k, v := c.First(); k != nil && bytes.Compare(k[:8], limit) < 0; k, v = c.Next() {
			r, err := decodeOpen(k, v)
			if err != nil {
				return err
			}
			it := item{r: r}
			prefix := ticketKey(r.ID)
			for mk, _ := marks.Seek(prefix); mk != nil && bytes.HasPrefix(mk, prefix); mk, _ = marks.Next() {
				if it.sent == nil {
					it.sent = map[string]bool{}
				}
				it.sent[string(mk[8:])] = true
			}
			items = append(items, it)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list tickets due before %s: %w", before.Format(time.RFC3339), err)
	}
	for _, it := range items {
		if err := fn(it.r, it.sent); err != nil {
			return len(items), err
		}
	}
	return len(items), nil
}

// ClaimReminder records that reminder key of a ticket is being sent. It
// returns false when it was claimed before: each reminder goes out once,
// across restarts and concurrent passes.
func (db *DB) ClaimReminder(id uint64, key string, at time.Time) (bool, error) {
	claimed := false
	err := db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTicketReminders)
		k := append(ticketKey(id), key...)
		if b.Get(k) != nil {
			return nil
		}
		claimed = true
		return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(unixNano(at))))
	})
	if err != nil {
		return false, fmt.Errorf("claim reminder %s of ticket %d: %w", key, id, err)
	}
	return claimed, nil
}

// ReleaseReminder forgets a claim whose reminder reached nobody, so the
// next pass tries again.
func (db *DB) ReleaseReminder(id uint64, key string) error {
	err := db.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTicketReminders).Delete(append(ticketKey(id), key...))
	})
	if err != nil {
		return fmt.Errorf("release reminder %s of ticket %d: %w", key, id, err)
	}
	return nil
}

// UserTickets returns every ticket of a user, with text, oldest first.
func (db *DB) UserTickets(userID int64) ([]valex.Request, error) {
	var out []valex.Request
	err := db.view(func(tx *bbolt.Tx) error {
		return db.eachUserTicket(tx, userID, func(r valex.Request) error {
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list tickets of user %d: %w", userID, err)
	}
	return out, nil
}

// UserTicketStatuses returns the status of each of a user's tickets by id,
// from the per-user index alone: cheap enough for every message the user
// sends.
func (db *DB) UserTicketStatuses(userID int64) (map[uint64]valex.RequestStatus, error) {
	out := map[uint64]valex.RequestStatus{}
	err := db.view(func(tx *bbolt.Tx) error {
		prefix := idKey(userID)
		c := tx.Bucket(bucketTicketsByUser).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			out[binary.BigEndian.Uint64(k[8:])] = valex.RequestStatus(v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list ticket statuses of user %d: %w", userID, err)
	}
	return out, nil
}

// holdRecord is a user-level legal hold (a dispute, a lawful request): while
// it stands, the account is not erased.
type holdRecord struct {
	At     int64  `json:"t"`
	By     int64  `json:"b"`
	Reason []byte `json:"r,omitempty"` // sealed with the user's key
}

// PlaceHold places a legal hold on a user's data with the admin's reason
// (sealed with the user's key, like everything that may quote them). It
// reports false, changing nothing, when a hold already stands; a user
// without an account is ErrNoAccount.
func (db *DB) PlaceHold(userID, by int64, at time.Time, reason string) (placed bool, err error) {
	err = db.update(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		b := tx.Bucket(bucketHolds)
		if b.Get(idKey(userID)) != nil {
			return nil
		}
		rec := holdRecord{At: unixNano(at), By: by}
		if reason != "" {
			sealed, err := db.codec.Seal(userID, []byte(reason))
			if err != nil {
				return err
			}
			rec.Reason = sealed
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if err := b.Put(idKey(userID), v); err != nil {
			return err
		}
		placed = true
		return db.auditHold(tx, true, by, at)
	})
	if err != nil {
		return false, fmt.Errorf("place hold on user %d: %w", userID, err)
	}
	return placed, nil
}

// SetHold places (held) or lifts a legal hold on a user's data.
func (db *DB) SetHold(userID int64, held bool, by int64, at time.Time) error {
	err := db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketHolds)
		if !held {
			if b.Get(idKey(userID)) == nil {
				return nil // nothing to lift, nothing to audit
			}
			if err := b.Delete(idKey(userID)); err != nil {
				return err
			}
			return db.auditHold(tx, false, by, at)
		}
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		v, err := json.Marshal(holdRecord{At: unixNano(at), By: by})
		if err != nil {
			return err
		}
		if err := b.Put(idKey(userID), v); err != nil {
			return err
		}
		return db.auditHold(tx, true, by, at)
	})
	if err != nil {
		return fmt.Errorf("set hold of user %d: %w", userID, err)
	}
	return nil
}

// Hold reports whether a legal hold stands on a user's data, and since when.
func (db *DB) Hold(userID int64) (held bool, since time.Time, err error) {
	err = db.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketHolds).Get(idKey(userID))
		if v == nil {
			return nil
		}
		var h holdRecord
		if err := json.Unmarshal(v, &h); err != nil {
			return err
		}
		held, since = true, fromUnixNano(h.At)
		return nil
	})
	if err != nil {
		return false, time.Time{}, fmt.Errorf("load hold of user %d: %w", userID, err)
	}
	return held, since, nil
}

// LinkMessage remembers that a message in a chat is about a ticket, so a
// Telegram reply to it can be added to that ticket and nothing else.
func (db *DB) LinkMessage(chatID int64, messageID int, ticketID uint64) error {
	err := db.update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTicketMessages).Put(pairKey(uint64(chatID), uint64(messageID)), ticketKey(ticketID))
	})
	if err != nil {
		return fmt.Errorf("link message %d of chat %d to ticket %d: %w", messageID, chatID, ticketID, err)
	}
	return nil
}

// LinkedTicket returns the ticket a message was linked to, or 0.
func (db *DB) LinkedTicket(chatID int64, messageID int) (uint64, error) {
	var id uint64
	err := db.view(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketTicketMessages).Get(pairKey(uint64(chatID), uint64(messageID))); len(v) == 8 {
			id = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("load ticket of message %d in chat %d: %w", messageID, chatID, err)
	}
	return id, nil
}
