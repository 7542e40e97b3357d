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
	// PlanCharge is the charge id of the subscription's latest payment (to
	// cancel it); Canceled: it will not renew.
	PlanCharge string
	Canceled   bool
	// Cap is a daily spending cap the user set on themselves (/limits),
	// micro-credits; 0: none. Spent is what Day's calls cost in all.
	Cap   int64
	Spent int64
}

// AllowanceLeft is what remains of a daily allowance on now's UTC date.
func (w Wallet) AllowanceLeft(allowance int64, now time.Time) int64 {
	used := w.Used
	if w.Day != now.UTC().Format("2006-01-02") {
		used = 0
	}
	return max(0, allowance-used)
}

// Available is what a new call may reserve now: the allowance left and the
// balance, minus what calls in flight hold, and never past the user's own
// daily cap.
func (w Wallet) Available(allowance int64, now time.Time) int64 {
	avail := w.AllowanceLeft(allowance, now) + w.Balance - w.Reserved
	if w.Cap > 0 {
		spent := w.Spent
		if w.Day != now.UTC().Format("2006-01-02") {
			spent = 0
		}
		avail = min(avail, w.Cap-spent-w.Reserved)
	}
	return max(0, avail)
}

// ErrNoCredits is the user error when a call would overdraw the wallet;
// ErrDailyCap when it would pass the cap the user set on themselves.
var (
	ErrNoCredits = Errorf("credits.exhausted", nil)
	ErrDailyCap  = Errorf("credits.cap_reached", nil)
)

// Charge is the cost of a call to take from a wallet with the usage that
// records it, in the same commit: the allowance pays first, then the
// balance; neither goes below zero.
type Charge struct {
	Reservation uint64 // the hold to end once committed; 0 = none
	Allowance   int64  // the user's daily allowance today, micro-credits
	Now         time.Time
	// Update is the Telegram update whose call this pays for (0: none). An
	// exchange is saved and charged once per update and capability: a
	// replay after a crash (the call made again) is not charged again.
	Update int64
	// EndsUpdate: this write is the last of Update's work (the answer was
	// shown in full), so the update's handled mark is written in the same
	// transaction — one commit instead of two, and a crash leaves both or
	// neither. Never set on a write the turn follows with more work (a voice
	// message's transcript).
	EndsUpdate bool
}

// Plans are what users can have and buy: the free tier's daily allowance,
// credit packs and monthly subscriptions, priced in Telegram Stars.
type Plans struct {
	FreeDaily     int64 // micro-credits a day on the free tier
	Packs         []Pack
	Subscriptions []Subscription
}

// Pack is credits bought once.
type Pack struct {
	ID      string
	Credits int64 // micro-credits
	Stars   int
	Kopecks int64 // the price in rubles through YooKassa (kopecks); 0: not sold there
}

// Subscription is a plan paid monthly: a daily allowance and the models
// that name it.
type Subscription struct {
	ID    string
	Daily int64 // micro-credits a day
	Stars int   // a month
}

// Subscription finds a subscription plan by id.
func (p Plans) Subscription(id string) (Subscription, bool) {
	for _, s := range p.Subscriptions {
		if s.ID == id {
			return s, true
		}
	}
	return Subscription{}, false
}

// PlanFree is the plan of everyone without a subscription.
const PlanFree = "free"

// Allowance is the daily allowance of a plan.
func (p Plans) Allowance(plan string) int64 {
	for _, s := range p.Subscriptions {
		if s.ID == plan {
			return s.Daily
		}
	}
	return p.FreeDaily
}

// Pack finds a pack by id.
func (p Plans) Pack(id string) (Pack, bool) {
	for _, k := range p.Packs {
		if k.ID == id {
			return k, true
		}
	}
	return Pack{}, false
}

// PlanOf is a wallet's plan now: its subscription while it runs, else free.
func (w Wallet) PlanOf(now time.Time) string {
	if w.Plan != "" && now.Before(w.PlanEnds) {
		return w.Plan
	}
	return PlanFree
}
