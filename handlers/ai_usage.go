package handlers

// /usage: what the user used today and this month.

import (
	"context"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Usage shows what the user used today and this month, and what it cost.
func (a *AI) Usage(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	day, month, err := a.store.UsageTotals(r.From.ID, a.h.Clock.Now())
	if err != nil {
		return err
	}
	var b strings.Builder
	plan := a.opt.Plan(r.From.ID)
	planName := a.h.t(r, "ai.plan."+plan, nil)
	if planName == "ai.plan."+plan {
		planName = tghtml.Escape(plan)
	}
	b.WriteString(a.h.t(r, "ai.usage.title", map[string]any{"Plan": planName}))
	for _, p := range []struct {
		key    string
		totals []valex.UsageTotal
	}{{"ai.usage.today", day}, {"ai.usage.month", month}} {
		b.WriteString("\n\n" + a.h.t(r, p.key, nil))
		if len(p.totals) == 0 {
			b.WriteString("\n" + a.h.t(r, "ai.usage.nothing", nil))
			continue
		}
		var cost int64
		for _, t := range p.totals {
			b.WriteString("\n" + a.usageLine(r, t))
			cost += t.Cost
		}
		b.WriteString("\n" + a.h.t(r, "ai.usage.total", map[string]any{"Cost": credits(r.Lang, cost)}))
	}
	return a.h.reply(ctx, r, b.String(), nil)
}

func (a *AI) usageLine(r *bot.Request, t valex.UsageTotal) string {
	args := map[string]any{
		"Cost":    credits(r.Lang, t.Cost),
		"Tokens":  integer(r.Lang, int64(t.InputTokens+t.OutputTokens)),
		"Minutes": decimal(r.Lang, t.AudioSeconds/60, 1),
		"Chars":   integer(r.Lang, int64(t.Chars)),
	}
	switch ai.Capability(t.Capability) {
	case ai.CapChat, ai.CapVision, ai.CapImage, ai.CapTranscribe, ai.CapSpeech:
		n := t.Calls
		if t.Capability == string(ai.CapImage) {
			n = t.Images
		}
		return a.h.Tr.N(r.Lang, "ai.usage."+t.Capability, int(n), args)
	}
	return a.h.Tr.N(r.Lang, "ai.usage.other", int(t.Calls), args)
}
