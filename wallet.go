package valex

import "time"

// Credits: every AI call costs micro-credits (ai.MicroCredits in one
// credit). A user spends their plan's daily allowance first, then the
// balance they bought. Each call reserves its expected cost before it runs
// and settles the actual cost after, so a balance is never overdrawn and a
// failed call costs nothing.

// Wallet is what a user may spend.
type Wallet struct {
	UserID   int64
	Balance  int64     // bought credits left, micro-credits
	Reserved int64     // held by calls in flight
	Day      string    // the UTC date AllowanceUsed counts
	Used     int64     // allowance spent on Day
	Plan     string    // a subscription plan; "" = the free tier
	PlanEnds time.Time // zero for the free tier
}

// AllowanceLeft is what remains of a daily allowance on now's UTC date.
func (w Wallet) AllowanceLeft(allowance int64, now time.Time) int64 {
	used := w.Used
	if w.Day != now.UTC().Format("2006-01-02") {
		used = 0
	}
	return max(0, allowance-used)
}

// Available is what a new call may reserve now.
func (w Wallet) Available(allowance int64, now time.Time) int64 {
	return max(0, w.AllowanceLeft(allowance, now)+w.Balance-w.Reserved)
}

// ErrNoCredits is the user error when a call would overdraw the wallet.
var ErrNoCredits = Errorf("credits.exhausted", nil)
