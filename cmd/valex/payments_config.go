package main

import (
	"fmt"
	"math"
	"net/url"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
)

// PaymentsConfig is the [payments] section: the free tier, the credit packs
// sold for Telegram Stars, and where users turn about payments.
type PaymentsConfig struct {
	// FreeDailyCredits is the free tier's daily allowance; every AI call is
	// metered against it, then against the credits the user bought.
	FreeDailyCredits float64      `toml:"free_daily_credits"`
	Packs            []PackConfig `toml:"packs"`
	// Subscriptions are plans paid monthly in Stars: a daily allowance,
	// and the models whose plans list names them.
	Subscriptions []SubscriptionConfig `toml:"subscriptions"`
	// CheaperModel is where a chat turn goes when the wallet cannot pay for
	// the user's model but can for this cheaper one; "": the turn is refused.
	CheaperModel string `toml:"cheaper_model"`
	SupportURL   string `toml:"support_url"` // /paysupport
	TermsURL     string `toml:"terms_url"`   // /terms

	// YooKassa (the operator's processor): on when both credentials are in
	// the environment (VALEX_YOOKASSA_SHOP_ID, VALEX_YOOKASSA_SECRET_KEY);
	// then packs with a "rub" price are sold by card too.
	// ProviderToken turns on Telegram Payments with a provider for packs
	// with a ruble price (VALEX_PAYMENT_PROVIDER_TOKEN; environment only).
	ProviderToken     string `toml:"-"`
	YooKassaShopID    string `toml:"-"`
	YooKassaSecretKey string `toml:"-"`
	YooKassaAPIURL    string `toml:"yookassa_api_url"`    // default https://api.yookassa.ru/v3
	YooKassaReturnURL string `toml:"yookassa_return_url"` // where the payment page sends the user back (the bot's t.me link)
	YooKassaReceipts  bool   `toml:"yookassa_receipts"`   // send 54-FZ receipts to the user's email or phone
}

// PackConfig is one credit pack.
type PackConfig struct {
	ID      string  `toml:"id"`
	Credits float64 `toml:"credits"`
	Stars   int     `toml:"stars"`
	RUB     float64 `toml:"rub"` // the price by card through YooKassa; 0: Stars only
}

// YooKassaOn reports whether YooKassa is configured.
func (c PaymentsConfig) YooKassaOn() bool { return c.YooKassaShopID != "" && c.YooKassaSecretKey != "" }

// SubscriptionConfig is one monthly plan.
type SubscriptionConfig struct {
	ID           string  `toml:"id"`
	DailyCredits float64 `toml:"daily_credits"`
	Stars        int     `toml:"stars"`
}

// DefaultPaymentsConfig is a free tier of 20 credits a day and two packs.
func DefaultPaymentsConfig() PaymentsConfig {
	return PaymentsConfig{
		FreeDailyCredits: 20,
		Packs: []PackConfig{
			{ID: "credits_100", Credits: 100, Stars: 100, RUB: 199},
			{ID: "credits_500", Credits: 500, Stars: 450, RUB: 899},
		},
		Subscriptions: []SubscriptionConfig{{ID: "pro", DailyCredits: 200, Stars: 500}},
		SupportURL:    "https://t.me/supprtbots",
		TermsURL:      "https://valex-ai.io/terms",
		// YooKassa is off until its credentials are in the environment.
		YooKassaAPIURL:    "https://api.yookassa.ru/v3",
		YooKassaReturnURL: "https://t.me",
	}
}

func (c PaymentsConfig) validate() []error {
	var p []error
	if c.FreeDailyCredits < 0 {
		p = append(p, fmt.Errorf("payments free_daily_credits %v: must be 0 or more", c.FreeDailyCredits))
	}
	seen := map[string]bool{}
	for _, k := range c.Packs {
		switch {
		case k.ID == "" || seen[k.ID]:
			p = append(p, fmt.Errorf("payments pack %q: every pack needs an id of its own", k.ID))
		case k.Credits <= 0:
			p = append(p, fmt.Errorf("payments pack %s: credits must be more than 0", k.ID))
		case k.Stars < 1 || k.Stars > 10000:
			p = append(p, fmt.Errorf("payments pack %s: stars must be between 1 and 10000", k.ID))
		case k.RUB < 0 || (k.RUB > 0 && k.RUB < 1):
			p = append(p, fmt.Errorf("payments pack %s: rub must be 0 (not sold by card) or at least 1", k.ID))
		}
		seen[k.ID] = true
	}
	for _, sub := range c.Subscriptions {
		switch {
		case sub.ID == "" || sub.ID == valex.PlanFree || seen[sub.ID]:
			p = append(p, fmt.Errorf("payments subscription %q: needs an id of its own, not %q", sub.ID, valex.PlanFree))
		case sub.DailyCredits <= 0:
			p = append(p, fmt.Errorf("payments subscription %s: daily_credits must be more than 0", sub.ID))
		case sub.Stars < 1 || sub.Stars > 10000:
			p = append(p, fmt.Errorf("payments subscription %s: stars must be between 1 and 10000", sub.ID))
		}
		seen[sub.ID] = true
	}
	if (c.YooKassaShopID == "") != (c.YooKassaSecretKey == "") {
		p = append(p, fmt.Errorf("payments: YooKassa needs both VALEX_YOOKASSA_SHOP_ID and VALEX_YOOKASSA_SECRET_KEY"))
	}
	for key, v := range map[string]string{"support_url": c.SupportURL, "terms_url": c.TermsURL,
		"yookassa_api_url": c.YooKassaAPIURL, "yookassa_return_url": c.YooKassaReturnURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p = append(p, fmt.Errorf("payments %s %q: must be an http(s) URL", key, v))
		}
	}
	return p
}

// Plans is the section as the handlers use it.
func (c PaymentsConfig) Plans() valex.Plans {
	p := valex.Plans{FreeDaily: int64(c.FreeDailyCredits * ai.MicroCredits)}
	for _, k := range c.Packs {
		p.Packs = append(p.Packs, valex.Pack{ID: k.ID, Credits: int64(k.Credits * ai.MicroCredits), Stars: k.Stars,
			Kopecks: int64(math.Round(k.RUB * 100))})
	}
	for _, sub := range c.Subscriptions {
		p.Subscriptions = append(p.Subscriptions, valex.Subscription{ID: sub.ID, Daily: int64(sub.DailyCredits * ai.MicroCredits), Stars: sub.Stars})
	}
	return p
}
