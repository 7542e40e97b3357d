package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// The audit log is append-only. Each trail (a ticket's, or
// valex.SystemTrail for notices and legal holds) is a chain of entries
// MACed with the audit key (valex.AuditEntry): audit holds
// be(trail)‖be(seq) → entry, and audit_heads be(trail) → be(seq)‖MAC of
// the trail's latest entry, which shows entries cut off the end. Every
// entry of every trail is also anchored, in the order appended, in one
// global log (audit_log be(globalSeq) → valex.AuditAnchor), whose running
// root is kept in meta: a trail deleted whole, with its head, still has its
// anchors there, and the log cannot be cut or edited without the key.
//
// The key lives in the key store, never in this file: without it nobody
// can rewrite a trail and recompute MACs that verify. Entries hold
// categories and counts, never personal values, and are kept when the
// ticket's text is erased: they are the proof that the erasure happened.

// DevAuditKey is the audit key of a store opened without Options.AuditKey:
// tests and tools that never had a key store. It is public, so trails keyed
// with it prove nothing; Main always passes the key store's audit key.
const DevAuditKey = "valex DEVELOPMENT audit key: public, proves nothing; Main passes the key store's key"

var bucketAuditLog = []byte("audit_log") // be(globalSeq) → be(trail)‖be(seq)‖entry MAC‖root

// Keys in bucketMeta.
var (
	keyAuditRoot  = []byte("audit_root")   // be(globalSeq)‖root of the global log's latest anchor
	keyAuditKeyID = []byte("audit_key_id") // valex.AuditKeyID of the key the trails are MACed with
)

// auditKeyer is a codec that also holds the audit key: the key store.
type auditKeyer interface{ AuditKey() []byte }

// auditKey returns the key entries are MACed with: Options.AuditKey, else
// the key store's when the codec is one, else DevAuditKey.
func (db *DB) auditKey() []byte {
	if len(db.opts.AuditKey) > 0 {
		return db.opts.AuditKey
	}
	if k, ok := db.opts.Codec.(auditKeyer); ok && len(k.AuditKey()) > 0 {
		return k.AuditKey()
	}
	return []byte(DevAuditKey)
}

// auditRecordV1 starts an entry:
//
//	version(1) | be(unix seconds)(8) | be(nanoseconds)(4) | be(actor)(8) |
//	be16(len(action)) action | be32(len(detail)) detail | prevMAC(32) | MAC(32)
//
// The layout did not change when trails became keyed; meta's audit_key_id
// says what the MACs are.
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
	v = append(v, e.PrevMAC[:]...)
	return append(v, e.MAC[:]...)
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
		return bad("truncated detail or MACs")
	}
	e.Detail = string(rest[4 : 4+m])
	copy(e.PrevMAC[:], rest[4+m:])
	copy(e.MAC[:], rest[4+m+32:])
	return e, nil
}

// anchorLen is an encoded anchor: be(trail) | be(seq) | entry MAC | root.
const anchorLen = 8 + 8 + 32 + 32

func encodeAnchor(a valex.AuditAnchor) []byte {
	v := make([]byte, 0, anchorLen)
	v = binary.BigEndian.AppendUint64(v, a.TicketID)
	v = binary.BigEndian.AppendUint64(v, a.EntrySeq)
	v = append(v, a.EntryMAC[:]...)
	return append(v, a.Root[:]...)
}

func decodeAnchor(k, v []byte) (valex.AuditAnchor, error) {
	if len(k) != 8 || len(v) != anchorLen {
		return valex.AuditAnchor{}, fmt.Errorf("audit log record %x: %d bytes, want %d", k, len(v), anchorLen)
	}
	a := valex.AuditAnchor{
		Seq:      binary.BigEndian.Uint64(k),
		TicketID: binary.BigEndian.Uint64(v),
		EntrySeq: binary.BigEndian.Uint64(v[8:]),
	}
	copy(a.EntryMAC[:], v[16:])
	copy(a.Root[:], v[48:])
	return a, nil
}

// auditRoot reads the global log's latest sequence and root; 0 and the zero
// root before the first entry.
func auditRoot(tx *bbolt.Tx) (uint64, [32]byte, error) {
	var root [32]byte
	v := tx.Bucket(bucketMeta).Get(keyAuditRoot)
	if v == nil {
		return 0, root, nil
	}
	if len(v) != 40 {
		return 0, root, fmt.Errorf("meta %s: %d bytes, want 40", keyAuditRoot, len(v))
	}
	copy(root[:], v[8:])
	return binary.BigEndian.Uint64(v), root, nil
}

// appendAudit chains e after its trail's latest entry, stores it and
// anchors it in the global log. e.TicketID names the trail
// (valex.SystemTrail for events outside tickets); Seq and the MACs are
// filled in.
func (db *DB) appendAudit(tx *bbolt.Tx, e valex.AuditEntry) (valex.AuditEntry, error) {
	return appendAuditKeyed(tx, db.auditKey(), e)
}

func appendAuditKeyed(tx *bbolt.Tx, key []byte, e valex.AuditEntry) (valex.AuditEntry, error) {
	if e.Action == "" {
		return e, fmt.Errorf("audit entry without action")
	}
	heads := tx.Bucket(bucketAuditHeads)
	hk := ticketKey(e.TicketID)
	e.At = e.At.UTC()
	if h := heads.Get(hk); h != nil {
		if len(h) != 40 {
			return e, fmt.Errorf("bad audit head of trail %d", e.TicketID)
		}
		prev := valex.AuditEntry{Seq: binary.BigEndian.Uint64(h)}
		copy(prev.MAC[:], h[8:])
		e.Chain(key, &prev)
	} else {
		e.Chain(key, nil)
	}
	if err := tx.Bucket(bucketAudit).Put(auditKey(e.TicketID, e.Seq), encodeAudit(e)); err != nil {
		return e, err
	}
	if err := putAuditHead(tx, e); err != nil {
		return e, err
	}
	return e, anchorAudit(tx, key, e.TicketID, e.Seq, e.MAC)
}

func putAuditHead(tx *bbolt.Tx, last valex.AuditEntry) error {
	head := binary.BigEndian.AppendUint64(make([]byte, 0, 40), last.Seq)
	return tx.Bucket(bucketAuditHeads).Put(ticketKey(last.TicketID), append(head, last.MAC[:]...))
}

// anchorAudit appends one entry to the global log and moves the root.
func anchorAudit(tx *bbolt.Tx, key []byte, trail, seq uint64, mac [32]byte) error {
	n, root, err := auditRoot(tx)
	if err != nil {
		return err
	}
	a := valex.AuditAnchor{Seq: n + 1, TicketID: trail, EntrySeq: seq, EntryMAC: mac}
	a.Seal(key, root)
	if err := tx.Bucket(bucketAuditLog).Put(ticketKey(a.Seq), encodeAnchor(a)); err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 40), a.Seq)
	return tx.Bucket(bucketMeta).Put(keyAuditRoot, append(v, a.Root[:]...))
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
		out, err = db.appendAudit(tx, e)
		return err
	})
	if err != nil {
		return valex.AuditEntry{}, fmt.Errorf("append audit to ticket %d: %w", ticketID, err)
	}
	return out, nil
}

// Audit returns a trail, first entry first: a ticket's, or with
// valex.SystemTrail the notices and legal holds.
func (db *DB) Audit(ticketID uint64) ([]valex.AuditEntry, error) {
	var out []valex.AuditEntry
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		out, err = auditOf(tx, ticketID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load audit of trail %d: %w", ticketID, err)
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

// AuditProblemKind is what VerifyAudit found wrong.
type AuditProblemKind string

const (
	// AuditDeletedTrail: the global log anchors entries of a trail that has
	// none left (or a head without entries).
	AuditDeletedTrail AuditProblemKind = "deleted trail"
	// AuditRewritten: an entry (or log record) whose MAC does not match its
	// contents under the key, its link to the previous one, its anchor, or
	// the trail's head: edited, reordered or re-sealed without the key.
	AuditRewritten AuditProblemKind = "rewritten entry"
	// AuditGap: entries missing from the middle of a trail or of the
	// global log.
	AuditGap AuditProblemKind = "gap"
	// AuditCutOff: entries missing from the end of a trail (its head or
	// the global log says they existed) or of the global log (meta's root
	// says so).
	AuditCutOff AuditProblemKind = "cut-off tail"
	// AuditUnanchored: an entry the global log does not know.
	AuditUnanchored AuditProblemKind = "unanchored entry"
	// AuditNoTrail: a ticket with no trail and nothing anchored for it.
	AuditNoTrail AuditProblemKind = "ticket without trail"
	// AuditMalformed: a record that cannot be decoded.
	AuditMalformed AuditProblemKind = "malformed record"
	// AuditWrongKey: the trails are MACed with another key than the one
	// given; nothing else is checked.
	AuditWrongKey AuditProblemKind = "wrong audit key"
)

// AuditProblem is one thing wrong with one trail or with the global log.
type AuditProblem struct {
	Trail  uint64 // ticket id, or valex.SystemTrail; unused when Log
	Log    bool   // the global log, not a trail
	Kind   AuditProblemKind
	Seqs   []uint64 // where it shows: entry seqs in the trail, or global seqs when Log
	Detail string
}

func (p AuditProblem) String() string {
	var b strings.Builder
	switch {
	case p.Log:
		b.WriteString("global log")
	case p.Kind == AuditWrongKey:
		b.WriteString("all trails")
	case p.Trail == valex.SystemTrail:
		b.WriteString("system trail")
	default:
		fmt.Fprintf(&b, "ticket %d", p.Trail)
	}
	b.WriteString(": ")
	b.WriteString(string(p.Kind))
	if len(p.Seqs) > 0 {
		b.WriteString(" at ")
		b.WriteString(seqRanges(p.Seqs))
	}
	if p.Detail != "" {
		b.WriteString(" (" + p.Detail + ")")
	}
	return b.String()
}

// seqRanges formats sorted seqs as "2", "2-4" or "2, 5-7".
func seqRanges(seqs []uint64) string {
	var parts []string
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(seqs[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", seqs[i], seqs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	Tickets  int            // ticket trails checked
	Entries  int            // entries in ticket trails
	System   int            // entries in the system trail
	Anchors  uint64         // records in the global log
	Root     [32]byte       // the global log's root: note it down to detect a rollback of the whole file later
	Problems []AuditProblem // global log first, then by trail
}

// OK reports whether every trail and the global log verified.
func (r AuditReport) OK() bool { return len(r.Problems) == 0 }

// VerifyAudit checks every trail and the global log under the store's audit
// key: each entry's MAC and its link to the one before, each trail against
// its head and its anchors, the global log's sequence and running root.
// Together they name a trail deleted whole, an entry rewritten (even with
// MACs recomputed under another key), a gap and a cut-off tail. A problem
// is reported, not returned as an error; the error is for a store that
// cannot be read.
//
// What no check inside the file can show is the whole file replaced by an
// older copy of itself: compare Root and Anchors with a value noted down
// earlier for that.
func (db *DB) VerifyAudit() (AuditReport, error) {
	var rep AuditReport
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		rep, err = verifyAudit(tx, db.auditKey())
		return err
	})
	if err != nil {
		return rep, fmt.Errorf("verify audit: %w", err)
	}
	return rep, nil
}

// trailFindings collects one trail's problems by kind.
type trailFindings map[AuditProblemKind][]uint64

func (f trailFindings) add(kind AuditProblemKind, seqs ...uint64) {
	f[kind] = append(f[kind], seqs...)
}

// problems lists f's findings, one per kind, in a fixed order.
func (f trailFindings) problems(trail uint64, log bool) []AuditProblem {
	var out []AuditProblem
	for _, kind := range []AuditProblemKind{AuditDeletedTrail, AuditMalformed, AuditRewritten, AuditGap, AuditCutOff, AuditUnanchored} {
		seqs, ok := f[kind]
		if !ok {
			continue
		}
		slices.Sort(seqs)
		out = append(out, AuditProblem{Trail: trail, Log: log, Kind: kind, Seqs: slices.Compact(seqs)})
	}
	return out
}

func verifyAudit(tx *bbolt.Tx, key []byte) (AuditReport, error) {
	var rep AuditReport
	meta := tx.Bucket(bucketMeta)
	audit, logb := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditLog)
	if logb == nil {
		return rep, fmt.Errorf("no %s bucket: open the file read-write once to migrate it", bucketAuditLog)
	}
	if id := meta.Get(keyAuditKeyID); id == nil {
		if k, _ := audit.Cursor().First(); k != nil {
			rep.Problems = append(rep.Problems, AuditProblem{Kind: AuditWrongKey,
				Detail: "trails are not keyed yet: open the file read-write once with the key store to migrate it"})
			return rep, nil
		}
	} else if string(id) != valex.AuditKeyID(key) {
		rep.Problems = append(rep.Problems, AuditProblem{Kind: AuditWrongKey,
			Detail: fmt.Sprintf("trails are MACed with key %s, this is key %s", id, valex.AuditKeyID(key))})
		return rep, nil
	}

	// The global log: a gapless sequence, each root following from the one
	// before, the last one the root kept in meta.
	anchored := map[uint64]map[uint64]auditRef{} // trail → entry seq → its anchor
	logFind := trailFindings{}
	var last uint64
	var prevRoot [32]byte
	c := logb.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		a, err := decodeAnchor(k, v)
		if err != nil {
			if len(k) == 8 {
				logFind.add(AuditMalformed, binary.BigEndian.Uint64(k))
			}
			continue
		}
		switch {
		case a.Seq > last+1:
			// Resynchronise after the gap: the record after it cannot be
			// checked against a predecessor that is gone.
			for g := last + 1; g < a.Seq; g++ {
				logFind.add(AuditGap, g)
			}
		case !a.Valid(key, prevRoot):
			logFind.add(AuditRewritten, a.Seq)
		}
		last, prevRoot = a.Seq, a.Root
		rep.Anchors++
		m := anchored[a.TicketID]
		if m == nil {
			m = map[uint64]auditRef{}
			anchored[a.TicketID] = m
		}
		if _, dup := m[a.EntrySeq]; dup {
			logFind.add(AuditRewritten, a.Seq)
		}
		m[a.EntrySeq] = auditRef{global: a.Seq, mac: a.EntryMAC}
	}
	n, root, err := auditRoot(tx)
	if err != nil {
		return rep, err
	}
	switch {
	case last < n:
		for g := last + 1; g <= n; g++ {
			logFind.add(AuditCutOff, g)
		}
	case last > n || prevRoot != root:
		logFind.add(AuditRewritten, last)
	}
	rep.Root = root
	rep.Problems = append(rep.Problems, logFind.problems(0, true)...)

	// Every trail: its chain, its head and its anchors.
	heads := tx.Bucket(bucketAuditHeads)
	seen := map[uint64]bool{}
	var trail []valex.AuditEntry
	var cur uint64
	find := trailFindings{}
	flush := func() {
		if len(trail) == 0 && len(find) == 0 {
			return
		}
		seen[cur] = true
		if cur == valex.SystemTrail {
			rep.System += len(trail)
		} else {
			rep.Tickets++
			rep.Entries += len(trail)
		}
		checkTrail(key, heads.Get(ticketKey(cur)), trail, anchored[cur], find)
		rep.Problems = append(rep.Problems, find.problems(cur, false)...)
		delete(anchored, cur)
		trail, find = trail[:0], trailFindings{}
	}
	c = audit.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 16 {
			return rep, fmt.Errorf("bad audit key %x", k)
		}
		if id := binary.BigEndian.Uint64(k); id != cur {
			flush()
			cur = id
		}
		e, err := decodeAudit(k, v)
		if err != nil {
			find.add(AuditMalformed, binary.BigEndian.Uint64(k[8:]))
			continue
		}
		trail = append(trail, e)
	}
	flush()

	// Trails with anchors or a head but no entries left were deleted.
	deleted := map[uint64][]uint64{}
	globals := map[uint64][]uint64{}
	for id, refs := range anchored {
		for seq, r := range refs {
			deleted[id] = append(deleted[id], seq)
			globals[id] = append(globals[id], r.global)
		}
	}
	if err := heads.ForEach(func(k, _ []byte) error {
		if id := binary.BigEndian.Uint64(k); !seen[id] && deleted[id] == nil {
			deleted[id] = []uint64{}
		}
		return nil
	}); err != nil {
		return rep, err
	}
	for _, id := range slices.Sorted(maps.Keys(deleted)) {
		seqs := deleted[id]
		slices.Sort(seqs)
		detail := "its head is left, no entries"
		if len(seqs) > 0 {
			g := globals[id]
			slices.Sort(g)
			detail = fmt.Sprintf("the global log anchors %d entries at %s, none is left", len(seqs), seqRanges(g))
		}
		rep.Problems = append(rep.Problems, AuditProblem{Trail: id, Kind: AuditDeletedTrail, Seqs: seqs, Detail: detail})
		seen[id] = true
	}
	err = tx.Bucket(bucketTickets).ForEach(func(k, _ []byte) error {
		if id := binary.BigEndian.Uint64(k); !seen[id] {
			rep.Problems = append(rep.Problems, AuditProblem{Trail: id, Kind: AuditNoTrail})
		}
		return nil
	})
	slices.SortStableFunc(rep.Problems, func(a, b AuditProblem) int {
		if a.Log != b.Log {
			if a.Log {
				return -1
			}
			return 1
		}
		switch {
		case a.Trail < b.Trail:
			return -1
		case a.Trail > b.Trail:
			return 1
		}
		return 0
	})
	return rep, err
}

// auditRef is what the global log holds about one entry.
type auditRef struct {
	global uint64
	mac    [32]byte
}

// checkTrail checks one trail's entries (in seq order, malformed ones
// already left out) under key, against its head and the anchors the global
// log holds for it.
func checkTrail(key, head []byte, trail []valex.AuditEntry, anchors map[uint64]auditRef, find trailFindings) {
	var prev *valex.AuditEntry
	var next uint64 = 1
	for i := range trail {
		e := &trail[i]
		for s := next; s < e.Seq; s++ {
			if !slices.Contains(find[AuditMalformed], s) {
				find.add(AuditGap, s)
			}
		}
		linked := prev != nil && prev.Seq+1 == e.Seq
		switch {
		case !e.ValidMAC(key),
			linked && e.PrevMAC != prev.MAC,
			e.Seq == 1 && e.PrevMAC != [32]byte{}:
			find.add(AuditRewritten, e.Seq)
		}
		if a, ok := anchors[e.Seq]; !ok {
			find.add(AuditUnanchored, e.Seq)
		} else if a.mac != e.MAC {
			find.add(AuditRewritten, e.Seq)
		}
		delete(anchors, e.Seq)
		prev, next = e, e.Seq+1
	}
	// Anchored but absent: in the middle a gap, past the end a cut-off tail.
	for seq := range anchors {
		if seq < next {
			find.add(AuditGap, seq)
		} else {
			find.add(AuditCutOff, seq)
		}
	}
	switch {
	case prev == nil:
	case head == nil: // the head was removed
		find.add(AuditRewritten, prev.Seq)
	case len(head) != 40:
		find.add(AuditMalformed, prev.Seq)
	case binary.BigEndian.Uint64(head) > prev.Seq:
		for s := prev.Seq + 1; s <= binary.BigEndian.Uint64(head); s++ {
			find.add(AuditCutOff, s)
		}
	case binary.BigEndian.Uint64(head) != prev.Seq || !bytes.Equal(head[8:], prev.MAC[:]):
		find.add(AuditRewritten, prev.Seq)
	}
}

// auditNotice records a notice on the system trail: its kind, id and how
// many it is for, never who.
func (db *DB) auditNotice(tx *bbolt.Tx, n valex.Notice) error {
	detail := fmt.Sprintf("kind=%s,notice=%d,audience=all", n.Kind, n.ID)
	if len(n.UserIDs) > 0 {
		detail = fmt.Sprintf("kind=%s,notice=%d,recipients=%d", n.Kind, n.ID, len(n.UserIDs))
	}
	_, err := db.appendAudit(tx, valex.AuditEntry{TicketID: valex.SystemTrail, At: n.CreatedAt, Actor: n.CreatedBy,
		Action: valex.AuditNoticeCreated, Detail: detail})
	return err
}

// auditHold records an account's legal hold placed or lifted on the system
// trail: who did it and when, not whose account (the hold record itself
// says that, and goes with the account).
func (db *DB) auditHold(tx *bbolt.Tx, placed bool, by int64, at time.Time) error {
	action := valex.AuditHoldLifted
	if placed {
		action = valex.AuditHoldPlaced
	}
	_, err := db.appendAudit(tx, valex.AuditEntry{TicketID: valex.SystemTrail, At: at, Actor: by,
		Action: action, Detail: valex.AuditScopeAccount})
	return err
}

// createAuditLog is migration v4: the global log's bucket. Files written
// before it hold unkeyed SHA-256 trails, which settleAuditKey re-keys.
func createAuditLog(tx *bbolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketAuditLog)
	return err
}

// settleAuditKey runs at every read-write open, after the migrations: it
// makes sure the trails are MACed with this store's audit key. A file
// without a key id has unkeyed trails from before (or none): they are
// re-keyed and anchored, and the key id recorded. A file keyed with
// another key is refused, before anything is appended under the wrong one:
// its trails would stop verifying.
func (db *DB) settleAuditKey() error {
	key := db.auditKey()
	id := valex.AuditKeyID(key)
	var done bool
	err := db.view(func(tx *bbolt.Tx) error {
		// A test's own migration list may lack the log: nothing to settle.
		done = tx.Bucket(bucketAuditLog) == nil || string(tx.Bucket(bucketMeta).Get(keyAuditKeyID)) == id
		return nil
	})
	if err != nil || done {
		return err
	}
	return db.update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		switch stored := meta.Get(keyAuditKeyID); {
		case string(stored) == id:
			return nil
		case stored == nil:
			if err := rekeyLegacyAudit(tx, key); err != nil {
				return fmt.Errorf("key the audit trails: %w", err)
			}
		case auditEmpty(tx):
			// Nothing was MACed yet: adopt this key.
		default:
			return fmt.Errorf("the audit trails are MACed with another audit key (id %s, this one is %s): open the file with the key store that wrote it", stored, id)
		}
		return meta.Put(keyAuditKeyID, []byte(id))
	})
}

func auditEmpty(tx *bbolt.Tx) bool {
	k, _ := tx.Bucket(bucketAudit).Cursor().First()
	l, _ := tx.Bucket(bucketAuditLog).Cursor().First()
	return k == nil && l == nil
}

// rekeyLegacyAudit MACs the unkeyed SHA-256 trails of an older file with
// key and anchors every entry in the global log, trail by trail. Only what
// still verifies as it was written is re-sealed: from a trail's first
// broken link on, entries keep their old bytes (and are anchored as they
// are), and the head of a trail that did not match stays, so VerifyAudit
// goes on reporting what was already broken instead of the migration
// laundering it.
func rekeyLegacyAudit(tx *bbolt.Tx, key []byte) error {
	if k, _ := tx.Bucket(bucketAuditLog).Cursor().First(); k != nil {
		return fmt.Errorf("the global audit log has records but the file names no audit key")
	}
	audit, heads := tx.Bucket(bucketAudit), tx.Bucket(bucketAuditHeads)
	// Trail ids first: the bucket is rewritten below, not under a cursor.
	var ids []uint64
	c := audit.Cursor()
	for k, _ := c.First(); k != nil; {
		if len(k) != 16 {
			return fmt.Errorf("bad audit key %x", k)
		}
		id := binary.BigEndian.Uint64(k)
		ids = append(ids, id)
		if id == ^uint64(0) {
			break
		}
		k, _ = c.Seek(ticketKey(id + 1))
	}
	for _, id := range ids {
		type raw struct {
			seq uint64
			e   valex.AuditEntry
			ok  bool
		}
		var entries []raw
		prefix := ticketKey(id)
		c := audit.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			e, err := decodeAudit(k, v)
			entries = append(entries, raw{seq: binary.BigEndian.Uint64(k[8:]), e: e, ok: err == nil})
		}
		// The prefix that verifies as written.
		var decoded []valex.AuditEntry
		for _, r := range entries {
			if !r.ok {
				break
			}
			decoded = append(decoded, r.e)
		}
		intact := len(decoded)
		var broken *valex.AuditChainError
		if errors.As(valex.VerifyLegacyChain(decoded), &broken) {
			intact = broken.Index
		}
		h := heads.Get(prefix)
		headOK := intact == len(entries) && intact > 0 && len(h) == 40 &&
			binary.BigEndian.Uint64(h) == entries[intact-1].e.Seq && bytes.Equal(h[8:], entries[intact-1].e.MAC[:])
		var prev *valex.AuditEntry
		for i, r := range entries {
			if i < intact {
				e := r.e
				e.Chain(key, prev)
				if err := audit.Put(auditKey(id, e.Seq), encodeAudit(e)); err != nil {
					return err
				}
				if err := anchorAudit(tx, key, id, e.Seq, e.MAC); err != nil {
					return err
				}
				prev = &e
				continue
			}
			if r.ok {
				if err := anchorAudit(tx, key, id, r.seq, r.e.MAC); err != nil {
					return err
				}
			}
		}
		if headOK {
			if err := putAuditHead(tx, *prev); err != nil {
				return err
			}
		}
	}
	return nil
}
