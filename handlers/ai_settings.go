package handlers

// /new, /model, /mode and /voice: the user's AI settings.

import (
	"context"
	"slices"
	"strings"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// New starts a fresh conversation; in a topic of the private chat, for that
// topic only (topics.go).
func (a *AI) New(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) {
		startConversation(s, r)
	}); err != nil {
		return err
	}
	return a.h.reply(ctx, r, a.h.t(r, "ai.chat.new", nil), nil)
}

// Model shows the chat models: each with its description and price, those
// of the user's plan to pick, and those a subscription would unlock with
// that plan's name (picking one says so instead of switching).
func (a *AI) Model(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	s, err := a.store.AISettings(r.From.ID)
	if err != nil {
		return err
	}
	plan := a.opt.Plan(r.From.ID)
	cur, ok := a.modelFor(s.Model, ai.CapChat, plan)
	if !ok {
		return valex.Errorf("ai.error.no_model", nil)
	}
	var kb [][]bot.Button
	var lines []string
	seen := map[string]bool{}
	for _, m := range a.models.Models(ai.CapChat, plan) {
		seen[m.ID] = true
		label := m.ID
		if m.Can(ai.CapVision) {
			label += " 👁"
		}
		if m.ID == cur.ID {
			label = "✓ " + label
		}
		kb = append(kb, []bot.Button{{Text: label, Data: cbModel.Data(a.h.CB, shortKey(m.ID))}})
		lines = append(lines, a.modelLine(r, m, ""))
	}
	// Models a subscription would unlock: shown with their plan.
	if a.opt.Plans != nil {
		for _, sub := range a.opt.Plans.Subscriptions {
			for _, m := range a.models.Models(ai.CapChat, sub.ID) {
				if !seen[m.ID] {
					seen[m.ID] = true
					lines = append(lines, a.modelLine(r, m, sub.ID))
					kb = append(kb, []bot.Button{{Text: "🔒 " + m.ID, Data: cbModel.Data(a.h.CB, shortKey(m.ID))}})
				}
			}
		}
	}
	text := a.h.t(r, "ai.model.choose", map[string]any{"Model": tghtml.Escape(cur.ID)}) + "\n\n" + strings.Join(lines, "\n")
	return a.h.reply(ctx, r, text, kb)
}

// modelLine is a model in /model: its name and description, then its
// price; locked names the plan that unlocks it.
func (a *AI) modelLine(r *bot.Request, m ai.Model, locked string) string {
	line := "• <b>" + tghtml.Escape(m.ID) + "</b>"
	if d := m.DescriptionIn(r.Lang); d != "" {
		line += " — " + tghtml.Escape(d) // the operator's, from the configuration
	} else if key := "ai.model.about." + m.ID; a.h.Tr.Has(r.Lang, key) {
		line += " — " + a.h.t(r, key, nil) // the default catalogue's, from the locales
	}
	if locked != "" {
		line += " " + a.h.t(r, "ai.model.locked", map[string]any{"Plan": tghtml.Escape(locked)})
	}
	var prices []string
	if m.Price.InputPer1K > 0 || m.Price.OutputPer1K > 0 {
		prices = append(prices, a.h.t(r, "ai.model.price", map[string]any{
			"In": credits(r.Lang, m.Price.InputPer1K), "Out": credits(r.Lang, m.Price.OutputPer1K)}))
	}
	if m.Price.PerImage > 0 {
		prices = append(prices, a.h.t(r, "ai.model.price_image", map[string]any{"Image": credits(r.Lang, m.Price.PerImage)}))
	}
	if len(prices) == 0 {
		prices = append(prices, a.h.t(r, "ai.model.price_free", nil))
	}
	return line + "\n   " + strings.Join(prices, "; ")
}

// ModelPicked handles a /model button: a model of the user's plan becomes
// theirs; a locked one is explained, with the plan that unlocks it.
func (a *AI) ModelPicked(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 1 {
		return valex.Errorf("error.bad_callback", nil)
	}
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	var picked *ai.Model
	for _, m := range a.models.Models(ai.CapChat, a.opt.Plan(r.From.ID)) {
		if shortKey(m.ID) == r.CallbackArgs[0] {
			picked = &m
			break
		}
	}
	if picked == nil {
		return a.lockedModel(ctx, r, r.CallbackArgs[0])
	}
	if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) { s.Model = picked.ID }); err != nil {
		return err
	}
	return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.model.set", map[string]any{"Model": tghtml.Escape(picked.ID)}), nil)
}

// lockedModel tells which plan unlocks the chat model named by key (the
// first subscription that allows it), with the button to /plans; a model
// no plan unlocks is unavailable.
func (a *AI) lockedModel(ctx context.Context, r *bot.Request, key string) error {
	if a.opt.Plans != nil {
		for _, sub := range a.opt.Plans.Subscriptions {
			for _, m := range a.models.Models(ai.CapChat, sub.ID) {
				if shortKey(m.ID) != key {
					continue
				}
				kb := [][]bot.Button{{{Text: a.h.t(r, "credits.btn_plans", nil), Data: cbPlans.Data(a.h.CB, "list")}}}
				return a.h.reply(ctx, r, a.h.t(r, "ai.model.locked_tap", map[string]any{
					"Model": tghtml.Escape(m.ID), "Plan": tghtml.Escape(sub.ID)}), kb)
			}
		}
	}
	return valex.Errorf("ai.model.unavailable", nil)
}

// modeTitle is a mode's name in the user's language.
func (a *AI) modeTitle(r *bot.Request, m Mode) string {
	key := "ai.mode." + m.ID
	if s := a.h.t(r, key, nil); s != key {
		return s
	}
	if m.Title != "" {
		return tghtml.Escape(m.Title)
	}
	return tghtml.Escape(m.ID)
}

// Mode shows the system-prompt presets.
func (a *AI) Mode(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	s, err := a.store.AISettings(r.From.ID)
	if err != nil {
		return err
	}
	cur := a.mode(s.Mode)
	var kb [][]bot.Button
	for _, m := range a.opt.Modes {
		label := tghtml.Strip(a.modeTitle(r, m))
		if m.ID == cur.ID {
			label = "✓ " + label
		}
		kb = append(kb, []bot.Button{{Text: label, Data: cbMode.Data(a.h.CB, m.ID)}})
	}
	return a.h.reply(ctx, r, a.h.t(r, "ai.mode.choose", map[string]any{"Mode": a.modeTitle(r, cur)}), kb)
}

// ModePicked handles a /mode button.
func (a *AI) ModePicked(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 1 {
		return valex.Errorf("error.bad_callback", nil)
	}
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	var picked *Mode
	for _, m := range a.opt.Modes {
		if m.ID == r.CallbackArgs[0] {
			picked = &m
			break
		}
	}
	if picked == nil {
		return valex.Errorf("ai.mode.unavailable", nil)
	}
	if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) { s.Mode = picked.ID }); err != nil {
		return err
	}
	return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.mode.set", map[string]any{"Mode": a.modeTitle(r, *picked)}), nil)
}

// Voice switches voice answers on or off: /voice on, /voice off.
func (a *AI) Voice(ctx context.Context, r *bot.Request) error {
	if _, err := a.h.registered(r); err != nil {
		return err
	}
	var on bool
	arg := strings.ToLower(strings.TrimSpace(r.Args))
	switch {
	case arg != "" && slices.Contains(a.h.words("input.on"), arg):
		on = true
	case arg != "" && slices.Contains(a.h.words("input.off"), arg):
	default:
		s, err := a.store.AISettings(r.From.ID)
		if err != nil {
			return err
		}
		key := "ai.voice.status_off"
		if s.Voice {
			key = "ai.voice.status_on"
		}
		return a.h.reply(ctx, r, a.h.t(r, key, nil), nil)
	}
	if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) { s.Voice = on }); err != nil {
		return err
	}
	key := "ai.voice.off"
	if on {
		key = "ai.voice.on"
	}
	return a.h.reply(ctx, r, a.h.t(r, key, nil), nil)
}
