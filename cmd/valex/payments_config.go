package main

import (
	"fmt"
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
	SupportURL       string       `toml:"support_url"` // /paysupport
	TermsURL         string       `toml:"terms_url"`   // /terms
}

// PackConfig is one credit pack.
type PackConfig struct {
	ID      string  `toml:"id"`
	Credits float64 `toml:"credits"`
	Stars   int     `toml:"stars"`
}

// DefaultPaymentsConfig is a free tier of 20 credits a day and two packs.
func DefaultPaymentsConfig() PaymentsConfig {
	return PaymentsConfig{
		FreeDailyCredits: 20,
		Packs: []PackConfig{
			{ID: "credits_100", Credits: 100, Stars: 100},
			{ID: "credits_500", Credits: 500, Stars: 450},
		},
		SupportURL: "https://t.me/supprtbots",
		TermsURL:   "https://valex-ai.io/terms",
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
		}
		seen[k.ID] = true
	}
	for key, v := range map[string]string{"support_url": c.SupportURL, "terms_url": c.TermsURL} {
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
		p.Packs = append(p.Packs, valex.Pack{ID: k.ID, Credits: int64(k.Credits * ai.MicroCredits), Stars: k.Stars})
	}
	return p
}
