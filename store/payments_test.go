package store

import (
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

// The same successful payment recorded twice credits once; erasing the
// payer keeps the record under a stand-in that is not their id.
func TestPaymentsOnceAndKeptAfterErasure(t *testing.T) {
	_, db := openKeyed(t, t.TempDir())
	mustAccount(t, db, 42)
	at := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	p := valex.Payment{ChargeID: "stxABC", UserID: 42, Method: valex.PaymentStars, Product: "credits_100",
		Credits: 100_000_000, Amount: 100, Currency: "XTR", Status: valex.PaymentPaid, At: at}
	for i, want := range []bool{true, false} {
		recorded, _, err := db.RecordPayment(p)
		if err != nil || recorded != want {
			t.Fatalf("record #%d: %v, %v; want %v", i+1, recorded, err, want)
		}
	}
	if w, _ := db.Wallet(42); w.Balance != 100_000_000 {
		t.Fatalf("balance = %d, want one pack", w.Balance)
	}
	if ps, _ := db.Payments(42); len(ps) != 1 || ps[0].Amount != 100 {
		t.Fatalf("payments = %+v", ps)
	}
	if _, err := db.EraseUser(42, 0, at, nil); err != nil {
		t.Fatal(err)
	}
	kept, err := db.Payment("stxABC")
	if err != nil {
		t.Fatalf("the payment record went with the account: %v", err)
	}
	if kept.UserID == 42 || kept.UserID >= 0 || kept.Amount != 100 || kept.Currency != "XTR" {
		t.Fatalf("kept record = %+v", kept)
	}
	if ps, _ := db.Payments(42); len(ps) != 0 {
		t.Fatalf("the erased user still has %d payments listed", len(ps))
	}
}
