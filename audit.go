package valex

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Audit actions. Detail says what in categories and counts.
const (
	AuditCreated    = "created"     // ticket opened
	AuditStatus     = "status"      // status change, Detail "from=new,to=in_progress"
	AuditAssigned   = "assigned"    // Detail "assignee=<staff id>"; Actor is who assigned
	AuditExtended   = "extended"    // deadline moved once
	AuditReplied    = "replied"     // a message reached the user
	AuditMessage    = "message"     // the user added a message, Detail "messages=1"
	AuditExported   = "exported"    // access request answered with an export, Detail counts per category
	AuditErased     = "erased"      // account erased, Detail counts per category
	AuditReminded   = "reminded"    // staff reminded, Detail the reminder key
	AuditHoldPlaced = "hold_placed" // legal hold / dispute
	AuditHoldLifted = "hold_lifted"
	AuditPurged     = "purged"    // text erased at the end of its retention period, Detail counts only
	AuditCorrected  = "corrected" // staff corrected the requester's data, Detail "field=city" (never the value)
)

// SystemTrail is the trail of events that belong to no ticket: breach and
// other notices created, legal holds placed and lifted. Ticket ids start
// at 1, so 0 is free.
const SystemTrail uint64 = 0

// Actions on the system trail.
const (
	AuditNoticeCreated = "notice_created" // Detail "kind=breach,notice=3,recipients=2" or "...,audience=all"
	// AuditIncidentNotified: an authority was told about a breach
	// incident, Detail "notice=3,to=authority" (or to=regulator).
	AuditIncidentNotified = "incident_notified"
	// A hold on a whole account is AuditHoldPlaced/AuditHoldLifted with
	// Detail "scope=account"; the entry names the actor, never the user.
	AuditScopeAccount = "scope=account"
)

// AuditEntry is one link of a trail: a ticket's, or the SystemTrail.
// Entries are chained per trail: Seq runs 1, 2, 3... and each MAC is an
// HMAC-SHA256, under the audit key, of the entry and the previous entry's
// MAC, so editing, dropping or reordering any entry shows, and so does a
// trail rewritten from scratch by anyone without the key. Every entry is
// also anchored in one global log (AuditAnchor), so a trail deleted whole
// shows too.
//
// The trail outlives the personal data it describes (it proves an erasure
// happened), so Detail names categories and counts, never personal values:
// "messages=12,profile_fields=4", not what they said.
type AuditEntry struct {
	TicketID uint64 // SystemTrail for events outside tickets
	Seq      uint64 // 1 for a trail's first entry
	At       time.Time
	Actor    int64 // Telegram id of the staff member; 0 = system (jobs, automation)
	Action   string
	Detail   string
	PrevMAC  [32]byte // zero for the first entry
	MAC      [32]byte
}

// Seal links e after the entry whose MAC is prev (the zero MAC for a
// trail's first entry) and computes its MAC under key.
func (e *AuditEntry) Seal(key []byte, prev [32]byte) {
	e.PrevMAC = prev
	e.MAC = e.mac(key)
}

// Chain sets e's Seq and seals it after prev, the trail's latest entry, or
// as the first entry when prev is nil.
func (e *AuditEntry) Chain(key []byte, prev *AuditEntry) {
	if prev == nil {
		e.Seq = 1
		e.Seal(key, [32]byte{})
		return
	}
	e.Seq = prev.Seq + 1
	e.Seal(key, prev.MAC)
}

// ValidMAC reports whether e's MAC is the one key gives its contents and
// PrevMAC. It does not check the link to the previous entry.
func (e *AuditEntry) ValidMAC(key []byte) bool {
	want := e.mac(key)
	return hmac.Equal(want[:], e.MAC[:])
}

// LegacyHash is the unkeyed SHA-256 of the entry that files from before
// keyed trails stored in MAC; only the migration that re-keys them uses it.
func (e *AuditEntry) LegacyHash() [32]byte {
	return sha256.Sum256(e.encode("valex-audit-v1\x00"))
}

// mac is HMAC-SHA256 under key of the canonical encoding.
func (e *AuditEntry) mac(key []byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write(e.encode("valex-audit-v2\x00"))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// encode is the canonical encoding: a version tag, fixed-width big-endian
// numbers, length-prefixed strings, then PrevMAC. Time is seconds and
// nanoseconds since the Unix epoch, so zone and monotonic readings (which do
// not survive storage) do not change the MAC.
func (e *AuditEntry) encode(tag string) []byte {
	b := make([]byte, 0, 128+len(e.Action)+len(e.Detail))
	b = append(b, tag...)
	b = binary.BigEndian.AppendUint64(b, e.TicketID)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.At.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(e.At.Nanosecond()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Actor))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Action)))
	b = append(b, e.Action...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Detail)))
	b = append(b, e.Detail...)
	return append(b, e.PrevMAC[:]...)
}

// AuditAnchor is one record of the global audit log: every entry of every
// trail, in the order they were appended, each record MACed together with
// the one before (Root), so the log can be neither cut nor edited without
// the key. A trail deleted whole leaves its anchors behind.
type AuditAnchor struct {
	Seq      uint64 // global: 1, 2, 3... across all trails
	TicketID uint64 // the entry's trail
	EntrySeq uint64 // the entry's Seq in its trail
	EntryMAC [32]byte
	Root     [32]byte // HMAC over this record and the previous Root
}

// Seal computes a's Root after the previous anchor's Root (zero for the
// first).
func (a *AuditAnchor) Seal(key []byte, prevRoot [32]byte) { a.Root = a.root(key, prevRoot) }

// Valid reports whether a's Root follows from prevRoot under key.
func (a *AuditAnchor) Valid(key []byte, prevRoot [32]byte) bool {
	want := a.root(key, prevRoot)
	return hmac.Equal(want[:], a.Root[:])
}

func (a *AuditAnchor) root(key []byte, prevRoot [32]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	b := make([]byte, 0, 24+3*8+64)
	b = append(b, "valex-audit-root-v1\x00"...)
	b = binary.BigEndian.AppendUint64(b, a.Seq)
	b = binary.BigEndian.AppendUint64(b, a.TicketID)
	b = binary.BigEndian.AppendUint64(b, a.EntrySeq)
	b = append(b, a.EntryMAC[:]...)
	b = append(b, prevRoot[:]...)
	m.Write(b)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// AuditKeyID names an audit key without revealing it (HMAC of a constant,
// 16 hex digits), so a file can say which key its trails are MACed with.
func AuditKeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("valex-audit-key-id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// AuditChainError is the first broken link VerifyChain found.
type AuditChainError struct {
	Index  int // position in the slice given to VerifyChain
	Reason string
}

func (e *AuditChainError) Error() string {
	return fmt.Sprintf("audit chain broken at %d: %s", e.Index, e.Reason)
}

// VerifyChain checks one trail, in order from its first entry, under key,
// and returns an *AuditChainError for the first broken link.
func VerifyChain(key []byte, entries []AuditEntry) error {
	return verifyChain(entries, func(e *AuditEntry) bool { return e.ValidMAC(key) })
}

// VerifyLegacyChain checks a trail written before trails were keyed
// (LegacyHash in MAC). Only the migration that re-keys old files uses it.
func VerifyLegacyChain(entries []AuditEntry) error {
	return verifyChain(entries, func(e *AuditEntry) bool { return e.LegacyHash() == e.MAC })
}

func verifyChain(entries []AuditEntry, valid func(*AuditEntry) bool) error {
	var prev [32]byte
	for i := range entries {
		e := &entries[i]
		switch {
		case e.TicketID != entries[0].TicketID:
			return &AuditChainError{Index: i, Reason: fmt.Sprintf("ticket %d in the trail of ticket %d", e.TicketID, entries[0].TicketID)}
		case e.Seq != uint64(i)+1:
			return &AuditChainError{Index: i, Reason: fmt.Sprintf("sequence %d, want %d", e.Seq, i+1)}
		case e.PrevMAC != prev:
			return &AuditChainError{Index: i, Reason: "previous MAC does not match"}
		case !valid(e):
			return &AuditChainError{Index: i, Reason: "MAC does not match contents and key"}
		}
		prev = e.MAC
	}
	return nil
}

// AuditCounts formats category counts as a Detail, sorted by name, e.g.
// "messages=12,profile_fields=4". Taking only names and numbers keeps
// personal values out of the trail.
func AuditCounts(counts map[string]int) string {
	names := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s=%d", name, counts[name])
	}
	return strings.Join(parts, ",")
}
