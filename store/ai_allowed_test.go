package store

import (
	"sync"
	"testing"
	"time"

	valex "github.com/valex-ai/valex"
)

// AIAllowed follows every change at once, cached or not: a grant, a
// withdrawal, a restriction and its lifting, and the erasure of the account.
func TestAIAllowedFollowsEveryChange(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 5, 6)
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	step := 0
	consent := func(granted bool) {
		t.Helper()
		step++
		if err := db.AddConsent(valex.ConsentEvent{UserID: 5, Kind: valex.ConsentAITransfer, Granted: granted, At: at.Add(time.Duration(step) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	restrict := func(active bool) {
		t.Helper()
		step++
		if err := db.AddRestriction(valex.RestrictionEvent{UserID: 5, Kind: valex.RestrictAI, Active: active, At: at.Add(time.Duration(step) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(allowed bool) {
		t.Helper()
		for range 2 { // the second answer comes from the cache
			got, err := db.AIAllowed(5)
			if err != nil {
				t.Fatal(err)
			}
			if got != allowed {
				t.Fatalf("step %d: AIAllowed = %v, want %v", step, got, allowed)
			}
			st, _ := db.ConsentState(5)
			if valex.CanUseAI(st) != got {
				t.Fatalf("step %d: AIAllowed = %v, ConsentState says %v", step, got, !got)
			}
		}
	}
	want(false)
	consent(true)
	want(true)
	restrict(true)
	want(false)
	restrict(false)
	want(true)
	consent(false)
	want(false)
	consent(true)
	want(true)
	// Another user's change does not make user 5's answer wrong either.
	if err := db.AddConsent(valex.ConsentEvent{UserID: 6, Kind: valex.ConsentAITransfer, Granted: true, At: at}); err != nil {
		t.Fatal(err)
	}
	want(true)
	if _, err := db.EraseUser(5, 0, at.Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	want(false)
}

// Readers racing a withdrawal never see "allowed" once it has returned.
func TestAIAllowedNeverStaleAfterAWithdrawal(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 5)
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range 20 {
		if err := db.AddConsent(valex.ConsentEvent{UserID: 5, Kind: valex.ConsentAITransfer, Granted: true, At: at.Add(time.Duration(2*i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var readers sync.WaitGroup
		for range 4 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				for {
					select {
					case <-stop:
						return
					default:
						_, _ = db.AIAllowed(5)
					}
				}
			}()
		}
		if err := db.AddConsent(valex.ConsentEvent{UserID: 5, Kind: valex.ConsentAITransfer, Granted: false, At: at.Add(time.Duration(2*i+1) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if ok, err := db.AIAllowed(5); err != nil || ok {
			t.Fatalf("round %d: allowed = %v (%v) right after the withdrawal returned", i, ok, err)
		}
		close(stop)
		readers.Wait()
	}
}
