package handlers

// /consent: consents, restrictions and objections, one tap each.

import (
	"context"
	"strings"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Consent shows each consent and restriction with a one-tap toggle:
// /consent.
func (d *Desk) Consent(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	return d.consentScreen(ctx, r)
}

func (d *Desk) consentScreen(ctx context.Context, r *bot.Request) error {
	text, kb, err := d.consentView(r)
	if err != nil {
		return err
	}
	return d.reply(ctx, r, text, kb)
}

func (d *Desk) consentView(r *bot.Request) (string, [][]bot.Button, error) {
	st, err := d.Store.ConsentState(r.From.ID)
	if err != nil {
		return "", nil, err
	}
	version, err := d.policyVersion()
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	var kb [][]bot.Button
	b.WriteString(d.t(r, "consent.title", map[string]any{"Version": tghtml.Escape(version)}))
	for _, k := range valex.ConsentKinds {
		e, ok := st.Consents[k]
		state := d.t(r, "consent.not_given", nil)
		if ok && e.Granted {
			state = d.t(r, "consent.given", map[string]any{"Date": valex.FormatDate(e.At), "Version": tghtml.Escape(e.PolicyVersion)})
		} else if ok {
			state = d.t(r, "consent.withdrawn", map[string]any{"Date": valex.FormatDate(e.At)})
		}
		b.WriteString("\n" + d.t(r, "consent.c."+string(k), map[string]any{"State": state}))
		on := !st.Granted(k)
		key := "consent.btn_withdraw." + string(k)
		if on {
			key = "consent.btn_give." + string(k)
		}
		kb = append(kb, []bot.Button{{Text: d.t(r, key, nil), Data: cbConsent.Data(d.CB, "c", string(k), boolArg(on))}})
	}
	b.WriteString("\n\n" + d.t(r, "consent.restrictions", nil))
	for _, k := range valex.RestrictionKinds {
		e, ok := st.Restrictions[k]
		state := d.t(r, "consent.not_restricted", nil)
		if ok && e.Active {
			state = d.t(r, "consent.restricted", map[string]any{"Date": valex.FormatDate(e.At)})
		}
		b.WriteString("\n" + d.t(r, "consent.r."+string(k), map[string]any{"State": state}))
		on := !st.Restricted(k)
		key := "consent.btn_lift." + string(k)
		if on {
			key = "consent.btn_restrict." + string(k)
		}
		kb = append(kb, []bot.Button{{Text: d.t(r, key, nil), Data: cbConsent.Data(d.CB, "r", string(k), boolArg(on))}})
	}
	return b.String(), kb, nil
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// WorkStopper stops a user's AI work in flight, keeping nothing of it, and
// returns how many jobs it stopped (AI.StopUser).
type WorkStopper interface {
	StopUser(ctx context.Context, userID int64) (stopped int)
}

// stopAIWait bounds how long a consent change waits for a stopped AI job to
// return (it writes nothing after StopUser either way).
const stopAIWait = 5 * time.Second

// ConsentButton records a consent or restriction change, at once and with
// the policy version, and shows the new state. Withdrawing a consent and
// restricting or objecting to processing are rights requests: each is also
// a ticket, completed on the spot. Withdrawing the AI consent or
// restricting AI processing also stops the AI work in flight, and the user
// is told what was stopped.
func (d *Desk) ConsentButton(ctx context.Context, r *bot.Request) error {
	args := r.CallbackArgs
	if len(args) != 3 || (args[2] != "0" && args[2] != "1") {
		return valex.Errorf("error.bad_callback", nil)
	}
	if err := privateOnly(r); err != nil {
		return err
	}
	if _, err := d.registered(r); err != nil {
		return err
	}
	on := args[2] == "1"
	uid, now := r.From.ID, d.Clock.Now()
	st, err := d.Store.ConsentState(uid)
	if err != nil {
		return err
	}
	version, err := d.policyVersion()
	if err != nil {
		return err
	}
	var ticket valex.RequestKind
	var resolution string
	stopAI := false
	switch args[0] {
	case "c":
		k := valex.ConsentKind(args[1])
		if !k.Valid() {
			return valex.Errorf("error.bad_callback", nil)
		}
		// A replay of this update (a crash after the event's commit) finds
		// its own event: nothing is recorded again, the rest is finished.
		replayed := st.Consents[k].Update == int64(r.ID) && r.ID != 0
		if st.Granted(k) == on && !replayed {
			break // a second tap on an old button: nothing changes
		}
		if !replayed {
			if err := d.Store.AddConsent(valex.ConsentEvent{UserID: uid, Kind: k, Granted: on, At: now, PolicyVersion: version, Source: "consent_menu", Update: int64(r.ID)}); err != nil {
				return err
			}
		}
		if !on {
			ticket, resolution = valex.KindConsentWithdrawal, "consent_withdrawn: "+string(k)
			stopAI = k == valex.ConsentAITransfer
		}
	case "r":
		k := valex.RestrictionKind(args[1])
		if !k.Valid() {
			return valex.Errorf("error.bad_callback", nil)
		}
		replayed := st.Restrictions[k].Update == int64(r.ID) && r.ID != 0
		if st.Restricted(k) == on && !replayed {
			break
		}
		if !replayed {
			if err := d.Store.AddRestriction(valex.RestrictionEvent{UserID: uid, Kind: k, Active: on, At: now, PolicyVersion: version, Source: "consent_menu", Update: int64(r.ID)}); err != nil {
				return err
			}
		}
		if on {
			ticket, resolution = valex.KindRestriction, "restriction_applied: "+string(k)
			if k == valex.RestrictAnalytics {
				ticket = valex.KindObjection
			}
			stopAI = k == valex.RestrictAI
		}
	default:
		return valex.Errorf("error.bad_callback", nil)
	}
	if stopAI && d.AIWork != nil {
		// After the change is recorded: what is admitted later sees it.
		sctx, cancel := context.WithTimeout(ctx, stopAIWait)
		n := d.AIWork.StopUser(sctx, uid)
		cancel()
		if n > 0 {
			if err := d.reply(ctx, r, d.Tr.N(r.Lang, "consent.ai_stopped", n, nil), nil); err != nil {
				return err
			}
		}
	}
	text, kb, err := d.consentView(r)
	if err != nil {
		return err
	}
	r.Toast = d.t(r, "desk.toast_saved", nil)
	if err := d.Out.Edit(ctx, r.ChatID, r.MessageID, text, kb); err != nil {
		return err
	}
	if ticket != "" {
		return d.autoComplete(ctx, r, ticket, resolution)
	}
	return nil
}
