package valex_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

// trail returns a sealed four-entry trail for ticket 5.
func trail(tb testing.TB) []valex.AuditEntry {
	tb.Helper()
	entries := []valex.AuditEntry{
		{TicketID: 5, At: t0, Actor: 0, Action: valex.AuditCreated, Detail: "kind=erasure"},
		{TicketID: 5, At: t0.Add(time.Hour), Actor: 42, Action: valex.AuditStatus, Detail: "from=new,to=in_progress"},
		{TicketID: 5, At: t0.Add(2 * time.Hour), Actor: 0, Action: valex.AuditErased, Detail: valex.AuditCounts(map[string]int{"profile_fields": 4, "messages": 12})},
		{TicketID: 5, At: t0.Add(3 * time.Hour), Actor: 0, Action: valex.AuditStatus, Detail: "from=in_progress,to=done"},
	}
	for i := range entries {
		var prev *valex.AuditEntry
		if i > 0 {
			prev = &entries[i-1]
		}
		entries[i].Chain(prev)
	}
	return entries
}

func TestVerifyChain(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func([]valex.AuditEntry) []valex.AuditEntry
		wantIndex int // -1: the chain verifies
		wantIn    string
	}{
		{"intact", func(e []valex.AuditEntry) []valex.AuditEntry { return e }, -1, ""},
		{"empty", func([]valex.AuditEntry) []valex.AuditEntry { return nil }, -1, ""},
		{"same instants in another zone", func(e []valex.AuditEntry) []valex.AuditEntry {
			for i := range e {
				e[i].At = e[i].At.In(time.FixedZone("UTC+3", 3*3600))
			}
			return e
		}, -1, ""},
		{"tampered detail", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[2].Detail = "messages=0,profile_fields=0"
			return e
		}, 2, "hash does not match"},
		{"tampered time", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[1].At = e[1].At.Add(-time.Minute)
			return e
		}, 1, "hash does not match"},
		{"tampered actor", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[3].Actor = 7
			return e
		}, 3, "hash does not match"},
		{"tampered and resealed", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[1].Detail = "from=new,to=rejected"
			e[1].Seal(e[0].Hash)
			return e
		}, 2, "previous hash"},
		{"reordered", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[1], e[2] = e[2], e[1]
			return e
		}, 1, "sequence 3, want 2"},
		{"missing entry", func(e []valex.AuditEntry) []valex.AuditEntry {
			return append(e[:1:1], e[2:]...)
		}, 1, "sequence 3, want 2"},
		{"missing first entry", func(e []valex.AuditEntry) []valex.AuditEntry { return e[1:] }, 0, "sequence 2, want 1"},
		{"missing entry, renumbered", func(e []valex.AuditEntry) []valex.AuditEntry {
			e = append(e[:1:1], e[2:]...)
			e[1].Seq, e[2].Seq = 2, 3
			return e
		}, 1, "previous hash"},
		{"entry of another ticket", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[3].TicketID = 6
			return e
		}, 3, "ticket 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := valex.VerifyChain(tt.mutate(trail(t)))
			if tt.wantIndex < 0 {
				if err != nil {
					t.Fatalf("VerifyChain: %v", err)
				}
				return
			}
			var ce *valex.AuditChainError
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v, want *AuditChainError", err)
			}
			if ce.Index != tt.wantIndex || !strings.Contains(ce.Reason, tt.wantIn) {
				t.Errorf("broken at %d (%s), want %d (%s)", ce.Index, ce.Reason, tt.wantIndex, tt.wantIn)
			}
			if want := fmt.Sprintf("audit chain broken at %d: ", tt.wantIndex); !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
		})
	}
}

// TestAuditHashStable pins the canonical encoding: stored trails must still
// verify after an upgrade, so a change here needs a new version tag.
func TestAuditHashStable(t *testing.T) {
	e := valex.AuditEntry{TicketID: 5, Seq: 1, At: t0, Actor: 42, Action: "created", Detail: "kind=access"}
	e.Seal([32]byte{})
	const want = "d0b31f3e6df64638d9ac356c5c5baf81519e26be33a28f9e58513a1c935d8ccd" // computed independently from the documented encoding
	if got := hex.EncodeToString(e.Hash[:]); got != want {
		t.Errorf("hash = %s, want %s", got, want)
	}
	// Moving bytes between Action and Detail must change the hash.
	f := valex.AuditEntry{TicketID: 5, Seq: 1, At: t0, Actor: 42, Action: "createdk", Detail: "ind=access"}
	f.Seal([32]byte{})
	if f.Hash == e.Hash {
		t.Error("length prefixes missing: shifted fields hash the same")
	}
}

func TestAuditCounts(t *testing.T) {
	tests := []struct {
		name   string
		counts map[string]int
		want   string
	}{
		{"none", nil, ""},
		{"sorted", map[string]int{"profile_fields": 4, "messages": 12, "consents": 0}, "consents=0,messages=12,profile_fields=4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := valex.AuditCounts(tt.counts); got != tt.want {
				t.Errorf("AuditCounts = %q, want %q", got, tt.want)
			}
		})
	}
}
