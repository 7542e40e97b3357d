package valex_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/valex-ai/valex"
)

func TestPseudonym(t *testing.T) {
	k1, k2 := []byte("log key one"), []byte("log key two")
	hexRe := regexp.MustCompile(`^[0-9a-f]{16}$`)
	a := valex.Pseudonym(k1, 1001)
	if !hexRe.MatchString(a) {
		t.Fatalf("pseudonym %q is not %d hex characters", a, valex.PseudonymLen)
	}
	tests := []struct {
		name string
		same bool
		x, y string
	}{
		{"stable for one user and key", true, a, valex.Pseudonym(k1, 1001)},
		{"differs per user", false, a, valex.Pseudonym(k1, 1002)},
		{"differs per key", false, a, valex.Pseudonym(k2, 1001)},
		{"pseudonymizer agrees with the function", true, a, valex.NewPseudonymizer(k1, nil).User(1001)},
		{"private chat is its user", true, a, valex.NewPseudonymizer(k1, nil).Chat(1001)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.x == tc.y) != tc.same {
				t.Fatalf("%q vs %q: same=%v, want %v", tc.x, tc.y, tc.x == tc.y, tc.same)
			}
		})
	}
	if strings.Contains(a, "1001") || strings.Contains(a, strconv.FormatInt(1001, 16)) {
		t.Fatalf("pseudonym %q shows the id", a)
	}
	p := valex.NewPseudonymizer(k1, nil)
	if got := p.Chat(-1001234); got != "-1001234" {
		t.Fatalf("group chat = %q, want the id", got)
	}
	if got := p.User(0); got != "" {
		t.Fatalf("no user = %q", got)
	}
	// The pseudonymizer keeps its own copy of the key.
	key := []byte("mutable")
	q := valex.NewPseudonymizer(key, nil)
	before := q.User(7)
	key[0] = 'X'
	if q.User(7) != before {
		t.Fatal("pseudonym changed when the caller's key slice changed")
	}
}

func TestPseudonymRedact(t *testing.T) {
	p := valex.NewPseudonymizer([]byte("k"), nil)
	u := p.User(1001)
	tests := []struct{ name, in, want string }{
		{"an id in an error", "load user 1001: not found", "load user " + u + ": not found"},
		{"every occurrence", "send to chat 1001 for 1001", "send to chat " + u + " for " + u},
		{"part of a longer number stays", "ticket 10012 and 21001", "ticket 10012 and 21001"},
		{"other numbers stay", "part 1/2 to chat 99: 429", "part 1/2 to chat 99: 429"},
		{"a negative (group chat) id stays", "chat -1001", "chat -1001"},
		{"no digits", "nothing here", "nothing here"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Redact(tc.in, 1001); got != tc.want {
				t.Fatalf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// With a per-user salt the pseudonym depends on it: once the salt (derived
// from the user's data key) is gone, the old pseudonym cannot be made again.
func TestPseudonymWithUserSalt(t *testing.T) {
	salts := map[int64][]byte{7: []byte("salt-of-7")}
	p := valex.NewPseudonymizer([]byte("log key"), func(id int64) []byte { return salts[id] })
	with := p.User(7)
	if with == valex.Pseudonym([]byte("log key"), 7) {
		t.Fatal("the salt changed nothing")
	}
	if p.User(7) != with {
		t.Fatal("not stable")
	}
	delete(salts, 7) // the key is erased
	if p.User(7) == with {
		t.Fatal("the erased user's pseudonym can still be recomputed")
	}
}
