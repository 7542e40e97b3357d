package valex

import "time"

// Payment is one purchase: what was paid, how, when and for what — never
// card details (Telegram and the processor keep those). Records are kept
// at least 5 years (the law on accounting records); when the account is
// erased, UserID becomes a random stand-in (not derived from the Telegram
// id) and the record stays.
type Payment struct {
	ChargeID         string // telegram_payment_charge_id: the record's key, so a repeated update records once
	ProviderChargeID string
	UserID           int64
	Method           string // PaymentStars
	Product          string // the pack or plan bought
	Credits          int64  // micro-credits added
	Amount           int    // in the currency's smallest unit (stars)
	Currency         string
	Status           string // PaymentPaid, PaymentRefunded
	At               time.Time
	// A subscription payment sets the user's plan until PlanEnds.
	Plan     string
	PlanEnds time.Time
	// SourceUpdate is the Telegram update that reported the payment (0:
	// none, e.g. a provider webhook): its replay gets the confirmation again.
	SourceUpdate int64
}

// Payment methods and statuses.
const (
	PaymentStars    = "telegram_stars"
	PaymentYooKassa = "yookassa"
	// PaymentTelegramProvider is Telegram Payments with a payment provider
	// (rubles, a provider token).
	PaymentTelegramProvider = "telegram_provider"
	PaymentPaid             = "paid"
	PaymentRefunded         = "refunded"
)
