package store

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// withUsers stores accounts for ids: turns are only written for users who
// have one.
func withUsers(tb testing.TB, db *DB, ids ...int64) {
	tb.Helper()
	for _, id := range ids {
		if err := db.PutUser(valex.User{ID: id, Language: "en", CreatedAt: convT0, LastActiveAt: convT0}); err != nil {
			tb.Fatal(err)
		}
	}
}

// saveAt stores a user turn and an answer in a conversation, both written
// at `at`.
func saveAt(tb testing.TB, db *DB, userID int64, conv uint64, text string, at time.Time) {
	tb.Helper()
	err := db.SaveExchange(userID, conv, []valex.Turn{
		{Role: valex.TurnUser, Text: text, Tokens: 3, At: at},
		{Role: valex.TurnAssistant, Text: "re: " + text, Tokens: 3, At: at},
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
}

// turnTimes lists the turn-time index as "user/conv@unix", in key order.
func turnTimes(tb testing.TB, db *DB) []string {
	tb.Helper()
	var out []string
	err := db.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAITurnsByTime)
		if b == nil {
			return fmt.Errorf("no turn-time index")
		}
		return b.ForEach(func(k, _ []byte) error {
			out = append(out, fmt.Sprintf("%d/%d@%d", binary.BigEndian.Uint64(k[8:]), binary.BigEndian.Uint64(k[16:]),
				int64(binary.BigEndian.Uint64(k))/int64(time.Second)))
			return nil
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func TestTurnTimeIndexFollowsTurnsAndIsBackfilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	db := openAt(t, path, testCodec{})
	withUsers(t, db, 1, 2)
	t1, t2 := convT0, convT0.Add(time.Hour)
	saveAt(t, db, 1, 1, "first", t2)
	saveAt(t, db, 2, 1, "other", t1)
	saveAt(t, db, 1, 2, "second", t1)
	s1, s2 := t1.Unix(), t2.Unix()
	want := []string{ // time order, then user, conversation, sequence
		fmt.Sprintf("1/2@%d", s1), fmt.Sprintf("1/2@%d", s1),
		fmt.Sprintf("2/1@%d", s1), fmt.Sprintf("2/1@%d", s1),
		fmt.Sprintf("1/1@%d", s2), fmt.Sprintf("1/1@%d", s2),
	}
	if got := turnTimes(t, db); !slices.Equal(got, want) {
		t.Fatalf("index = %v, want %v", got, want)
	}

	// A file written before the index existed: version 2, no index.
	err := db.update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketAITurnsByTime); err != nil {
			return err
		}
		return putUint64(tx, keySchemaVersion, 2)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, testCodec{})
	if got := turnTimes(t, db); !slices.Equal(got, want) {
		t.Fatalf("backfilled index = %v, want %v", got, want)
	}

	// Deleting a conversation, then erasing a user, takes their entries.
	if n, err := db.DeleteConversation(1, 2); err != nil || n != 2 {
		t.Fatalf("delete conversation: %d, %v", n, err)
	}
	if got := turnTimes(t, db); !slices.Equal(got, []string{want[2], want[3], want[4], want[5]}) {
		t.Fatalf("index after deleting 1/2 = %v", got)
	}
	if _, err := db.EraseAI(2); err != nil {
		t.Fatal(err)
	}
	if got := turnTimes(t, db); !slices.Equal(got, []string{want[4], want[5]}) {
		t.Fatalf("index after erasing user 2 = %v", got)
	}
}

func TestConversationsListNewestFirstAndDeleteForReal(t *testing.T) {
	db := openTest(t, testCodec{})
	withUsers(t, db, 1, 2)
	saveAt(t, db, 1, 1, "how do I bake sourdough bread at home with a cold oven", convT0)
	saveAt(t, db, 1, 1, "and rye?", convT0.Add(time.Hour))
	saveAt(t, db, 1, 3, "translate hello", convT0.Add(2*time.Hour))
	saveAt(t, db, 2, 1, "someone else", convT0)

	list, err := db.Conversations(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != 3 || list[1].ID != 1 {
		t.Fatalf("conversations = %+v, want 3 then 1", list)
	}
	if list[1].Title != "how do I bake sourdough bread at home…" || list[0].Title != "translate hello" {
		t.Fatalf("titles = %q, %q", list[1].Title, list[0].Title)
	}
	if !list[1].StartedAt.Equal(convT0) || !list[1].LastAt.Equal(convT0.Add(time.Hour)) {
		t.Fatalf("conversation 1 dates: %+v", list[1])
	}

	if n, err := db.DeleteConversation(1, 1); err != nil || n != 4 {
		t.Fatalf("delete conversation 1: %d, %v", n, err)
	}
	if hits := aiValuesContaining(t, db, []byte("sourdough")); len(hits) != 0 {
		t.Fatalf("deleted text still stored: %v", hits)
	}
	if n, err := db.DeleteConversation(1, 1); err != nil || n != 0 {
		t.Fatalf("deleting again: %d, %v", n, err)
	}
	if list, _ = db.Conversations(1); len(list) != 1 || list[0].ID != 3 {
		t.Fatalf("after deleting one: %+v", list)
	}
	convs, turns, err := db.DeleteConversations(1)
	if err != nil || convs != 1 || turns != 2 {
		t.Fatalf("delete all: %d conversations, %d turns, %v", convs, turns, err)
	}
	if list, _ = db.Conversations(1); len(list) != 0 {
		t.Fatalf("after deleting all: %+v", list)
	}
	if got := turnTimes(t, db); len(got) != 2 {
		t.Fatalf("index after deleting user 1's conversations: %v, want user 2's two turns", got)
	}
	// The other user keeps theirs.
	if list, _ = db.Conversations(2); len(list) != 1 || list[0].Title != "someone else" {
		t.Fatalf("user 2: %+v", list)
	}
}

func TestPurgeTurnsStopsAtTheCutoffAndSpansBatches(t *testing.T) {
	db := openTest(t, testCodec{})
	withUsers(t, db, 1, 2)
	n := turnPurgeBatch/2 + 10 // exchanges of 2 turns, so more than one batch expires
	var turns [2][]valex.Turn
	for i := 0; i < n; i++ {
		at := convT0.Add(time.Duration(i) * time.Minute)
		turns[i%2] = append(turns[i%2], valex.Turn{Role: valex.TurnUser, Text: fmt.Sprintf("turn %d", i), At: at},
			valex.Turn{Role: valex.TurnAssistant, Text: "re", At: at})
	}
	for u, ts := range turns {
		if err := db.SaveExchange(int64(u+1), 1, ts, nil); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := convT0.Add(time.Duration(n-5) * time.Minute) // the last 5 exchanges stay
	asked := 0
	visited, purged, err := db.PurgeTurns(func(at time.Time) bool { asked++; return at.Before(cutoff) })
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * (n - 5); visited != want || purged != want {
		t.Fatalf("visited %d, purged %d, want %d", visited, purged, want)
	}
	if asked != visited+1 {
		t.Fatalf("asked about %d turns, want the expired ones and the first that is not (%d)", asked, visited+1)
	}
	if got := bucketLen(t, db, bucketAITurns); got != 10 {
		t.Fatalf("%d turns left, want 10", got)
	}
	if got := len(turnTimes(t, db)); got != 10 {
		t.Fatalf("%d index entries left, want 10", got)
	}
	// Idempotent: the next run reads one entry and deletes nothing.
	asked = 0
	if visited, purged, err = db.PurgeTurns(func(at time.Time) bool { asked++; return at.Before(cutoff) }); err != nil || visited != 0 || purged != 0 || asked != 1 {
		t.Fatalf("second run: visited %d purged %d asked %d, %v", visited, purged, asked, err)
	}
}

// BenchmarkPurgeTurns purges 1,000 expired turns out of 1,000,000: the
// walk must visit what expired, not what exists. The million records are
// built once per benchmark run (NoSync, large batches); between iterations
// the 1,000 expired turns are written again, off the clock. The timed part
// is the real PurgeTurns with its disk syncs.
func BenchmarkPurgeTurns(b *testing.B) {
	const total, expired, users = 1_000_000, 1_000, 10_000
	const perUser = total / users
	db := openTest(b, PlainCodec{})
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// Turn j of user u is written at second j*users+u: the oldest turns are
	// spread over many users, as they are in a real file.
	at := func(u, j int) time.Time { return t0.Add(time.Duration(j*users+u) * time.Second) }
	cutoff := t0.Add(expired * time.Second)
	record := func(u, j int) []byte {
		v, err := encodeTurn(db, int64(u+1), valex.Turn{Role: valex.TurnUser, Text: "a question of average length", Tokens: 9, At: at(u, j)})
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	key := func(u int, seq uint64) []byte { return binary.BigEndian.AppendUint64(turnPrefix(int64(u+1), 1), seq) }
	// batched runs fn(tx, i) for i in [0, n) in transactions of 100,000.
	batched := func(n int, fn func(tx *bbolt.Tx, i int) error) {
		for lo := 0; lo < n; lo += 100_000 {
			err := db.update(func(tx *bbolt.Tx) error {
				for i := lo; i < min(lo+100_000, n); i++ {
					if err := fn(tx, i); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	// The million, built in key order for speed: the turns user by user,
	// then the index in time order; then the sequence is set past them.
	db.bolt.NoSync = true
	batched(total, func(tx *bbolt.Tx, i int) error {
		u, j := i/perUser, i%perUser
		return tx.Bucket(bucketAITurns).Put(key(u, uint64(i+1)), record(u, j))
	})
	batched(total, func(tx *bbolt.Tx, t int) error {
		u, j := t%users, t/users
		return tx.Bucket(bucketAITurnsByTime).Put(turnTimeKey(at(u, j).UnixNano(), key(u, uint64(u*perUser+j+1))), nil)
	})
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(db.update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketAITurns).SetSequence(total) }))
	db.bolt.NoSync = false
	must(db.bolt.Sync())
	// refill writes the expired turns again (new keys, the same times), as
	// SaveExchange does.
	refill := func() {
		batched(expired, func(tx *bbolt.Tx, t int) error {
			u, j := t%users, t/users
			bk := tx.Bucket(bucketAITurns)
			seq, err := bk.NextSequence()
			if err != nil {
				return err
			}
			k, v := key(u, seq), record(u, j)
			if err := bk.Put(k, v); err != nil {
				return err
			}
			return indexTurn(tx, k, v)
		})
	}
	isExpired := func(at time.Time) bool { return at.Before(cutoff) }

	b.Run("1M_records_1k_expired", func(b *testing.B) {
		var visited int
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			v, purged, err := db.PurgeTurns(isExpired)
			if err != nil || purged != expired {
				b.Fatalf("purged %d, want %d: %v", purged, expired, err)
			}
			visited = v
			b.StopTimer()
			refill()
			b.StartTimer()
		}
		b.ReportMetric(float64(visited), "visited/op")
	})
	if got := bucketLen(b, db, bucketAITurns); got != total {
		b.Fatalf("%d turns after the runs, want %d", got, total)
	}
	if got := bucketLen(b, db, bucketAITurnsByTime); got != total {
		b.Fatalf("%d index entries after the runs, want %d", got, total)
	}
}
