package valex

import (
	"crypto/sha256"
	"encoding/binary"
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
	AuditPurged     = "purged" // text erased at the end of its retention period, Detail counts only
)

// AuditEntry is one link of a ticket's append-only audit trail. Entries are
// hash-chained per ticket: Seq runs 1, 2, 3... and each Hash covers the
// entry and the previous entry's Hash, so editing, dropping or reordering
// any entry shows.
//
// The trail outlives the personal data it describes (it proves an erasure
// happened), so Detail names categories and counts, never personal values:
// "messages=12,profile_fields=4", not what they said.
type AuditEntry struct {
	TicketID uint64
	Seq      uint64 // 1 for a ticket's first entry
	At       time.Time
	Actor    int64 // Telegram id of the staff member; 0 = system (jobs, automation)
	Action   string
	Detail   string
	PrevHash [32]byte // zero for the first entry
	Hash     [32]byte
}

// Seal links e after the entry whose hash is prev (the zero hash for a
// ticket's first entry) and computes its Hash.
func (e *AuditEntry) Seal(prev [32]byte) {
	e.PrevHash = prev
	e.Hash = e.sum()
}

// Chain sets e's Seq and seals it after prev, the ticket's latest entry, or
// as the first entry when prev is nil.
func (e *AuditEntry) Chain(prev *AuditEntry) {
	if prev == nil {
		e.Seq = 1
		e.Seal([32]byte{})
		return
	}
	e.Seq = prev.Seq + 1
	e.Seal(prev.Hash)
}

// sum hashes the canonical encoding: a version tag, fixed-width big-endian
// numbers, length-prefixed strings, then PrevHash. Time is seconds and
// nanoseconds since the Unix epoch, so zone and monotonic readings (which do
// not survive storage) do not change the hash.
func (e *AuditEntry) sum() [32]byte {
	b := make([]byte, 0, 128+len(e.Action)+len(e.Detail))
	b = append(b, "valex-audit-v1\x00"...)
	b = binary.BigEndian.AppendUint64(b, e.TicketID)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(e.At.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(e.At.Nanosecond()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Actor))
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Action)))
	b = append(b, e.Action...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Detail)))
	b = append(b, e.Detail...)
	b = append(b, e.PrevHash[:]...)
	return sha256.Sum256(b)
}

// AuditChainError is the first broken link VerifyChain found.
type AuditChainError struct {
	Index  int // position in the slice given to VerifyChain
	Reason string
}

func (e *AuditChainError) Error() string {
	return fmt.Sprintf("audit chain broken at %d: %s", e.Index, e.Reason)
}

// VerifyChain checks one ticket's complete trail, in order from its first
// entry, and returns an *AuditChainError for the first broken link.
func VerifyChain(entries []AuditEntry) error {
	var prev [32]byte
	for i := range entries {
		e := &entries[i]
		switch {
		case e.TicketID != entries[0].TicketID:
			return &AuditChainError{Index: i, Reason: fmt.Sprintf("ticket %d in the trail of ticket %d", e.TicketID, entries[0].TicketID)}
		case e.Seq != uint64(i)+1:
			return &AuditChainError{Index: i, Reason: fmt.Sprintf("sequence %d, want %d", e.Seq, i+1)}
		case e.PrevHash != prev:
			return &AuditChainError{Index: i, Reason: "previous hash does not match"}
		case e.Hash != e.sum():
			return &AuditChainError{Index: i, Reason: "hash does not match contents"}
		}
		prev = e.Hash
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
