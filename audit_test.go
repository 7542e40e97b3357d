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

// testKey is the audit key the domain tests MAC with.
var testKey = []byte("test-key")

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
		entries[i].Chain(testKey, prev)
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
		}, 2, "MAC does not match"},
		{"tampered time", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[1].At = e[1].At.Add(-time.Minute)
			return e
		}, 1, "MAC does not match"},
		{"tampered actor", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[3].Actor = 7
			return e
		}, 3, "MAC does not match"},
		{"tampered and resealed", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[1].Detail = "from=new,to=rejected"
			e[1].Seal(testKey, e[0].MAC)
			return e
		}, 2, "previous MAC"},
		{"rewritten with plain SHA-256", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[1].Detail = "from=new,to=rejected"
			e[1].MAC = e[1].LegacyHash()
			for i := 2; i < len(e); i++ {
				e[i].PrevMAC = e[i-1].MAC
				e[i].MAC = e[i].LegacyHash()
			}
			return e
		}, 1, "MAC does not match"},
		{"rewritten whole under another key", func(e []valex.AuditEntry) []valex.AuditEntry {
			for i := range e {
				var prev *valex.AuditEntry
				if i > 0 {
					prev = &e[i-1]
				}
				e[i].Chain([]byte("wrong-key"), prev)
			}
			return e
		}, 0, "MAC does not match"},
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
		}, 1, "previous MAC"},
		{"entry of another ticket", func(e []valex.AuditEntry) []valex.AuditEntry {
			e[3].TicketID = 6
			return e
		}, 3, "ticket 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := valex.VerifyChain(testKey, tt.mutate(trail(t)))
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

// TestAuditMACStable pins the canonical encodings: stored trails must still
// verify after an upgrade, so a change here needs a new version tag. The
// wanted values were computed independently (Python hmac/hashlib) from the
// documented encodings.
func TestAuditMACStable(t *testing.T) {
	e := valex.AuditEntry{TicketID: 5, Seq: 1, At: t0, Actor: 42, Action: "created", Detail: "kind=access"}
	if got, want := e.LegacyHash(), "d0b31f3e6df64638d9ac356c5c5baf81519e26be33a28f9e58513a1c935d8ccd"; hex.EncodeToString(got[:]) != want {
		t.Errorf("legacy hash = %x, want %s", got, want)
	}
	e.Seal(testKey, [32]byte{})
	if got, want := hex.EncodeToString(e.MAC[:]), "c76376651b26f0bff9febc82280c34ff467ae279a977acc951aab1502c06c281"; got != want {
		t.Errorf("MAC = %s, want %s", got, want)
	}
	if !e.ValidMAC(testKey) || e.ValidMAC([]byte("wrong-key")) || e.ValidMAC(nil) {
		t.Error("ValidMAC does not depend on the key")
	}
	a := valex.AuditAnchor{Seq: 1, TicketID: 5, EntrySeq: 1, EntryMAC: e.MAC}
	a.Seal(testKey, [32]byte{})
	if got, want := hex.EncodeToString(a.Root[:]), "fea0331089e8ed9d01110b8a324058c94c9bd16a004cadd37ce1d4efd17021bc"; got != want {
		t.Errorf("anchor root = %s, want %s", got, want)
	}
	if got, want := valex.AuditKeyID(testKey), "0a73f6fa7769ca4b"; got != want {
		t.Errorf("key id = %s, want %s", got, want)
	}
	// Moving bytes between Action and Detail must change the MAC.
	f := valex.AuditEntry{TicketID: 5, Seq: 1, At: t0, Actor: 42, Action: "createdk", Detail: "ind=access"}
	f.Seal(testKey, [32]byte{})
	if f.MAC == e.MAC {
		t.Error("length prefixes missing: shifted fields MAC the same")
	}
}

// An anchor verifies only after its own predecessor, under the key, with
// every field as sealed.
func TestAuditAnchor(t *testing.T) {
	var prev [32]byte
	var log []valex.AuditAnchor
	for i, e := range trail(t) {
		a := valex.AuditAnchor{Seq: uint64(i) + 1, TicketID: e.TicketID, EntrySeq: e.Seq, EntryMAC: e.MAC}
		a.Seal(testKey, prev)
		log = append(log, a)
		prev = a.Root
	}
	tests := []struct {
		name   string
		mutate func(a *valex.AuditAnchor, prev *[32]byte, key *[]byte)
		valid  bool
	}{
		{"intact", func(*valex.AuditAnchor, *[32]byte, *[]byte) {}, true},
		{"another key", func(_ *valex.AuditAnchor, _ *[32]byte, k *[]byte) { *k = []byte("wrong-key") }, false},
		{"renumbered", func(a *valex.AuditAnchor, _ *[32]byte, _ *[]byte) { a.Seq-- }, false},
		{"another trail", func(a *valex.AuditAnchor, _ *[32]byte, _ *[]byte) { a.TicketID++ }, false},
		{"another entry", func(a *valex.AuditAnchor, _ *[32]byte, _ *[]byte) { a.EntrySeq++ }, false},
		{"entry MAC changed", func(a *valex.AuditAnchor, _ *[32]byte, _ *[]byte) { a.EntryMAC[0] ^= 1 }, false},
		{"predecessor dropped", func(_ *valex.AuditAnchor, p *[32]byte, _ *[]byte) { *p = log[0].Root }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, prev, key := log[2], log[1].Root, testKey
			tt.mutate(&a, &prev, &key)
			if got := a.Valid(key, prev); got != tt.valid {
				t.Errorf("Valid = %v, want %v", got, tt.valid)
			}
		})
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

// Legacy (unkeyed) trails verify only as legacy, keyed ones only under
// their key: the migration tells them apart.
func TestVerifyLegacyChain(t *testing.T) {
	keyed := trail(t)
	legacy := trail(t)
	var prev [32]byte
	for i := range legacy {
		legacy[i].PrevMAC = prev
		legacy[i].MAC = legacy[i].LegacyHash()
		prev = legacy[i].MAC
	}
	if err := valex.VerifyLegacyChain(legacy); err != nil {
		t.Fatalf("legacy trail: %v", err)
	}
	if err := valex.VerifyChain(testKey, legacy); err == nil {
		t.Error("a legacy trail verified as keyed")
	}
	if err := valex.VerifyLegacyChain(keyed); err == nil {
		t.Error("a keyed trail verified as legacy")
	}
	legacy[2].Detail = "messages=0"
	var ce *valex.AuditChainError
	if err := valex.VerifyLegacyChain(legacy); !errors.As(err, &ce) || ce.Index != 2 {
		t.Errorf("edited legacy trail: %v, want broken at 2", err)
	}
}
