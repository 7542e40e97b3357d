package store

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// A retried answer replaces the conversation's last exchange: the question
// is not repeated, the old answer and its time index entries are gone, and
// the usage is recorded.
func TestReplaceExchange(t *testing.T) {
	db := openTest(t, testCodec{})
	mustAccount(t, db, 7)
	at := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	turn := func(role, text string, min int) valex.Turn {
		return valex.Turn{Role: role, Text: text, Tokens: 3, At: at.Add(time.Duration(min) * time.Minute)}
	}
	if _, ok, err := db.LastQuestion(7, 1); ok || err != nil {
		t.Fatalf("empty conversation: ok=%v err=%v", ok, err)
	}
	if err := db.SaveExchange(7, 1, []valex.Turn{turn(valex.TurnUser, "q1", 0), turn(valex.TurnAssistant, "a1", 0)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveExchange(7, 1, []valex.Turn{turn(valex.TurnUser, "q2", 1), turn(valex.TurnAssistant, "a2", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	q, ok, err := db.LastQuestion(7, 1)
	if err != nil || !ok || q.Text != "q2" {
		t.Fatalf("LastQuestion = %+v, %v, %v", q, ok, err)
	}
	u := valex.AIUsage{UserID: 7, Model: "m", Capability: "chat", Cost: 5, At: at}
	if err := db.ReplaceExchangeCharged(7, 1, []valex.Turn{turn(valex.TurnUser, "q2", 2), turn(valex.TurnAssistant, "a2 again", 2)}, []valex.AIUsage{u}, valex.Charge{}); err != nil {
		t.Fatal(err)
	}
	turns, _, err := db.RecentTurns(7, 1, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, t := range turns {
		got = append(got, t.Text)
	}
	if want := []string{"q1", "a1", "q2", "a2 again"}; !slices.Equal(got, want) {
		t.Errorf("conversation = %q, want %q", got, want)
	}
	if l, err := db.UsageSince(7, time.Time{}); err != nil || len(l) != 1 {
		t.Errorf("usage = %+v, %v", l, err)
	}
	// The time index holds exactly the turns that are left.
	n := 0
	if err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAITurnsByTime).ForEach(func(k, v []byte) error { n++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("time index has %d entries, want 4", n)
	}

	// A deleted conversation has nothing to replace: nothing is written.
	if _, err := db.DeleteConversation(7, 1); err != nil {
		t.Fatal(err)
	}
	err = db.ReplaceExchangeCharged(7, 1, []valex.Turn{turn(valex.TurnUser, "q2", 3)}, []valex.AIUsage{u}, valex.Charge{})
	if !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("replace in a deleted conversation: %v", err)
	}
	if turns, _, _ := db.RecentTurns(7, 1, 1000, 0); len(turns) != 0 {
		t.Errorf("the deleted conversation came back: %+v", turns)
	}
	if l, _ := db.UsageSince(7, time.Time{}); len(l) != 1 {
		t.Errorf("usage of a refused replace was recorded: %+v", l)
	}
}
