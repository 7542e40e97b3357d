package store

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

var convT0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func turn(role, text string, tokens int) valex.Turn {
	return valex.Turn{Role: role, Text: text, Tokens: tokens, At: convT0}
}

// aiValuesContaining counts, per bucket, the values that contain needle.
func aiValuesContaining(tb testing.TB, db *DB, needle []byte) map[string]int {
	tb.Helper()
	hits := map[string]int{}
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(_, v []byte) error {
				if bytes.Contains(v, needle) {
					hits[string(name)]++
				}
				return nil
			})
		})
	})
	if err != nil {
		tb.Fatalf("scan buckets: %v", err)
	}
	return hits
}

// keysWithPrefix counts the keys of a bucket that start with prefix.
func keysWithPrefix(tb testing.TB, db *DB, bucket, prefix []byte) int {
	tb.Helper()
	n := 0
	err := db.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func texts(ts []valex.Turn) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Role[:1] + ":" + t.Text
	}
	return out
}

func TestTurnsAreSealedAndReadBackInOrder(t *testing.T) {
	db := openTest(t, testCodec{})
	mustAccount(t, db, 7)
	const secret = "my diagnosis is confidential"
	err := db.SaveExchange(7, 1, []valex.Turn{
		turn(valex.TurnUser, secret, 10),
		turn(valex.TurnAssistant, "noted", 5),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if hits := aiValuesContaining(t, db, []byte(secret)); len(hits) != 0 {
		t.Errorf("plaintext on disk: %v", hits)
	}
	got, dropped, err := db.RecentTurns(7, 1, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"u:" + secret, "a:noted"}; strings.Join(texts(got), "|") != strings.Join(want, "|") || dropped {
		t.Fatalf("got %q dropped=%v, want %q", texts(got), dropped, want)
	}
	if got[0].Tokens != 10 || !got[0].At.Equal(convT0) {
		t.Errorf("turn header = %+v", got[0])
	}
}

func TestRecentTurnsStopsAtTheBudgetOrTheCount(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 1)
	var turns []valex.Turn
	for i := range 10 {
		turns = append(turns, turn(valex.TurnUser, fmt.Sprint(i), 10))
	}
	if err := db.SaveExchange(1, 1, turns, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		budget      int
		maxTurns    int
		want        string
		wantDropped bool
	}{
		{"all fit", 100, 0, "u:0|u:1|u:2|u:3|u:4|u:5|u:6|u:7|u:8|u:9", false},
		{"newest three", 35, 0, "u:7|u:8|u:9", true},
		{"exact", 30, 0, "u:7|u:8|u:9", true},
		{"none", 9, 0, "", true},
		{"zero", 0, 0, "", true},
		{"newest four by count", 100, 4, "u:6|u:7|u:8|u:9", true},
		{"count before budget", 35, 2, "u:8|u:9", true},
		{"budget before count", 35, 5, "u:7|u:8|u:9", true},
		{"count of all", 100, 10, "u:0|u:1|u:2|u:3|u:4|u:5|u:6|u:7|u:8|u:9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, dropped, err := db.RecentTurns(1, 1, tt.budget, tt.maxTurns)
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(texts(got), "|"); s != tt.want || dropped != tt.wantDropped {
				t.Errorf("got %q dropped=%v, want %q dropped=%v", s, dropped, tt.want, tt.wantDropped)
			}
		})
	}
}

// Conversations and users are separate key ranges, including at the edges
// where the end of a range carries into the next prefix.
func TestRecentTurnsStaysInsideItsConversation(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 1, 2, -1)
	put := func(user int64, conv uint64, text string) {
		t.Helper()
		if err := db.SaveExchange(user, conv, []valex.Turn{turn(valex.TurnUser, text, 1)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put(1, 1, "a")
	put(1, 2, "b")
	put(1, math.MaxUint64, "max")
	put(2, 0, "next user")
	put(-1, math.MaxUint64, "all ones") // the last possible range: no key after it
	put(2, 1, "c")
	tests := []struct {
		user int64
		conv uint64
		want string
	}{
		{1, 1, "u:a"},
		{1, 2, "u:b"},
		{1, 3, ""},
		{1, math.MaxUint64, "u:max"},
		{2, 1, "u:c"},
		{3, 1, ""},
		{-1, math.MaxUint64, "u:all ones"},
		{-1, math.MaxUint64 - 1, ""},
	}
	for _, tt := range tests {
		got, _, err := db.RecentTurns(tt.user, tt.conv, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.Join(texts(got), "|"); s != tt.want {
			t.Errorf("user %d conv %d: got %q, want %q", tt.user, tt.conv, s, tt.want)
		}
	}
}

func TestAISettings(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 5)
	s, err := db.AISettings(5)
	if err != nil || !reflect.DeepEqual(s, valex.AISettings{}) {
		t.Fatalf("fresh settings = %+v, %v", s, err)
	}
	s, err = db.UpdateAISettings(5, func(s *valex.AISettings) {
		s.Model, s.Voice, s.Conversation = "m", true, 3
		s.SetTopic(77, s.NewConversation())
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.AISettings(5)
	if err != nil || !reflect.DeepEqual(got, s) || got.Model != "m" || !got.Voice || got.Conversation != 3 || got.Topics[77] != 4 || got.LastConversation != 4 {
		t.Fatalf("settings = %+v, %v; want %+v", got, err, s)
	}
	if other, _ := db.AISettings(6); !reflect.DeepEqual(other, valex.AISettings{}) {
		t.Errorf("another user's settings = %+v", other)
	}
}

func TestExportAndEraseAI(t *testing.T) {
	db := openTest(t, testCodec{})
	mustAccount(t, db, 1, 2)
	for _, uid := range []int64{1, 2} {
		_, err := db.UpdateAISettings(uid, func(s *valex.AISettings) { s.Model = "m" })
		if err != nil {
			t.Fatal(err)
		}
		err = db.SaveExchange(uid, 1, []valex.Turn{turn(valex.TurnUser, "hi", 2), turn(valex.TurnAssistant, "hello", 2)},
			[]valex.AIUsage{{UserID: uid, Model: "m", Capability: "chat", InputTokens: 3, Cost: 10, At: convT0}})
		if err != nil {
			t.Fatal(err)
		}
	}
	data, counts, err := db.ExportAI(1)
	if err != nil {
		t.Fatal(err)
	}
	if counts[CategoryConversations] != 2 || counts[CategoryAIUsage] != 1 || counts[CategoryAISettings] != 1 {
		t.Errorf("export counts = %v", counts)
	}
	if turns := data[CategoryConversations].([]exportTurn); turns[0].Text != "hi" || turns[1].Role != valex.TurnAssistant {
		t.Errorf("exported turns = %+v", turns)
	}

	erased, err := db.EraseAI(1)
	if err != nil {
		t.Fatal(err)
	}
	if erased[CategoryConversations] != 2 || erased[CategoryAIUsage] != 1 || erased[CategoryAISettings] != 1 {
		t.Errorf("erased = %v", erased)
	}
	if again, err := db.EraseAI(1); err != nil || again[CategoryConversations] != 0 {
		t.Errorf("second erase = %v, %v", again, err)
	}
	_, counts, _ = db.ExportAI(1)
	day, month, _ := db.UsageTotals(1, convT0)
	if counts[CategoryConversations] != 0 || counts[CategoryAIUsage] != 0 || len(day)+len(month) != 0 {
		t.Errorf("after erasure: counts %v, sums %v %v", counts, day, month)
	}
	for _, b := range [][]byte{bucketAISettings, bucketAITurns, bucketAIUsage, bucketAIUsageSums} {
		if n := keysWithPrefix(t, db, b, idKey(1)); n != 0 {
			t.Errorf("%s: %d keys of the erased user left", b, n)
		}
	}
	if _, counts, _ := db.ExportAI(2); counts[CategoryConversations] != 2 || counts[CategoryAIUsage] != 1 {
		t.Errorf("the other user lost data: %v", counts)
	}
}

func fillConversation(tb testing.TB, db *DB, user int64, conv uint64, n int) {
	tb.Helper()
	text := strings.Repeat("lorem ipsum dolor sit amet ", 8) // about 50 tokens
	const batch = 500
	for i := 0; i < n; i += batch {
		var turns []valex.Turn
		for j := i; j < min(i+batch, n); j++ {
			turns = append(turns, turn(valex.TurnUser, text, 54))
		}
		if err := db.SaveExchange(user, conv, turns, nil); err != nil {
			tb.Fatal(err)
		}
	}
}

// Context assembly reads backwards from the newest turn and stops at the
// budget: its cost follows the budget, and 100 or 10,000 turns of history
// cost the same.
func BenchmarkRecentTurns(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		db := openTest(b, testCodec{})
		mustAccount(b, db, 1, 2)
		fillConversation(b, db, 1, 1, n)
		fillConversation(b, db, 2, 1, 100) // a neighbour's range after ours
		for _, budget := range []int{1000, 4000} {
			b.Run(fmt.Sprintf("turns=%d/budget=%d", n, budget), func(b *testing.B) {
				want := min(n, budget/54)
				for b.Loop() {
					turns, _, err := db.RecentTurns(1, 1, budget, 0)
					if err != nil || len(turns) != want {
						b.Fatalf("%d turns, want %d: %v", len(turns), want, err)
					}
				}
			})
		}
	}
}

// The cost of recording one chat turn: two turns and a ledger entry in one
// transaction (dominated by the disk sync).
func BenchmarkSaveExchange(b *testing.B) {
	db := openTest(b, testCodec{})
	mustAccount(b, db, 1)
	turns := []valex.Turn{turn(valex.TurnUser, "what is the capital of France?", 12), turn(valex.TurnAssistant, "Paris.", 6)}
	usage := []valex.AIUsage{{UserID: 1, Model: "gpt-4o-mini", Capability: "chat", InputTokens: 30, OutputTokens: 6, Cost: 900, At: convT0}}
	for b.Loop() {
		if err := db.SaveExchange(1, 1, turns, usage); err != nil {
			b.Fatal(err)
		}
	}
}

// Users' conversations grow side by side, each at the end of its own key
// range, and the time index at its end: the pages they leave behind stay
// mostly full (appendFill). With bbolt's default split they were about
// half full (53 % and 51 % in this test).
func TestConversationPagesStayDense(t *testing.T) {
	db := openTest(t, nil)
	const users, exchanges = 10, 30
	for u := int64(1); u <= users; u++ {
		mustAccount(t, db, u)
	}
	for i := range exchanges {
		for u := int64(1); u <= users; u++ {
			text := fmt.Sprintf("question %d of user %d, long enough to fill pages: %s", i, u, strings.Repeat("x", 80))
			q, a := turn(valex.TurnUser, text, 10), turn(valex.TurnAssistant, text, 10)
			q.At = convT0.Add(time.Duration(i*users+int(u)) * time.Second) // time goes on
			a.At = q.At
			if err := db.SaveExchange(u, 1, []valex.Turn{q, a}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	err := db.view(func(tx *bbolt.Tx) error {
		for _, c := range []struct {
			name []byte
			min  float64
		}{{bucketAITurns, 0.65}, {bucketAITurnsByTime, 0.8}} {
			s := tx.Bucket(c.name).Stats()
			fill := float64(s.LeafInuse) / float64(s.LeafAlloc)
			t.Logf("%s: %d leaf pages %.0f %% full", c.name, s.LeafPageN, 100*fill)
			if s.LeafPageN < 5 || fill < c.min {
				t.Errorf("%s: %d leaf pages %.0f %% full, want at least %.0f %%", c.name, s.LeafPageN, 100*fill, 100*c.min)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
