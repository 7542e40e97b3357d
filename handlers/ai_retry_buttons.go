package handlers

// The presses of the buttons under an answer (ai_retry.go): "r" answer
// again, "m" open the choice of models, "u" use the model picked (it
// becomes the user's model, as in /model) and answer again, "b" back from
// the choice to the two buttons.

import (
	"context"
	"errors"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// RetryButton handles a press of a button under an answer.
func (a *AI) RetryButton(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) < 2 {
		return valex.Errorf("error.bad_callback", nil)
	}
	action := r.CallbackArgs[0]
	ref, rest, ok := parseRetryRef(r.CallbackArgs[1:])
	if !ok || (action == "u") != (len(rest) == 1) || (action != "u" && len(rest) != 0) {
		return valex.Errorf("error.bad_callback", nil)
	}
	if _, err := a.h.Users.User(r.From.ID); errors.Is(err, valex.ErrNotFound) {
		return valex.Errorf("ai.retry.erased", nil) // its answers went with the account
	} else if err != nil {
		return err
	}
	var asked askedQuestion
	if ref.group {
		q, ok := a.asked.get(r.ChatID, int(ref.n), a.h.Clock.Now())
		if !ok {
			return valex.Errorf("ai.retry.expired", nil)
		}
		if q.userID != r.From.ID {
			return valex.Errorf("ai.retry.not_yours", nil)
		}
		asked = q
	} else if _, err := a.retryQuestion(r, ref); err != nil {
		return err // told at once; the job checks again when its turn comes
	}

	switch action {
	case "m":
		return a.out.EditKeyboard(ctx, r.ChatID, r.MessageID, a.modelMenu(r, ref))
	case "b":
		return a.out.EditKeyboard(ctx, r.ChatID, r.MessageID, a.answerButtons(r, ref, a.opt.Plan(r.From.ID)))
	case "u":
		plan := a.opt.Plan(r.From.ID)
		var picked *ai.Model
		for _, m := range a.models.Models(ai.CapChat, plan) {
			if shortKey(m.ID) == rest[0] {
				picked = &m
				break
			}
		}
		if picked == nil {
			return valex.Errorf("ai.model.unavailable", nil)
		}
		if _, err := a.store.UpdateAISettings(r.From.ID, func(s *valex.AISettings) { s.Model = picked.ID }); err != nil {
			return err
		}
		if err := a.out.EditKeyboard(ctx, r.ChatID, r.MessageID, a.answerButtons(r, ref, plan)); err != nil {
			return err
		}
		r.Toast = tghtml.Strip(a.h.t(r, "ai.retry.again_with", map[string]any{"Model": tghtml.Escape(picked.ID)}))
	case "r":
		r.Toast = tghtml.Strip(a.h.t(r, "ai.retry.again", nil))
	default:
		return valex.Errorf("error.bad_callback", nil)
	}
	return a.retry(ctx, r, ref, asked)
}

// retry queues the question again as a new turn of the user who pressed
// the button: the same path as a message (consent, queue, wallet, Defer).
func (a *AI) retry(ctx context.Context, r *bot.Request, ref retryRef, asked askedQuestion) error {
	ad, err := a.ready(ctx, r)
	if !ad.ok || err != nil {
		return err // consent missing (asked) or restricted (told): nothing is queued
	}
	// The turn answers the question's message, not the button's.
	q := *r
	u := *r.Update
	q.Update = &u
	if ref.group {
		u.MessageID = int(ref.n)
		u.ReplyToBot, u.ReplyText = asked.context != "", asked.context
	}
	a.submit(r, ad.ticket, r.Defer(), func(ctx context.Context) {
		if err := a.retryTurn(ctx, &q, ref, asked); err != nil {
			a.report(ctx, &q, err)
		}
	})
	return nil
}

// retryTurn answers the question again, once its turn in the user's queue
// has come: a private question only if it is still the last one of the
// current conversation.
func (a *AI) retryTurn(ctx context.Context, r *bot.Request, ref retryRef, asked askedQuestion) error {
	if ref.group {
		return a.turn(ctx, r, turnInput{text: asked.text, stored: asked.text})
	}
	text, err := a.retryQuestion(r, ref)
	if err != nil {
		return err
	}
	return a.turn(ctx, r, turnInput{text: text, stored: text, retry: true})
}

// retryQuestion finds the question a private answer's button names: the
// last one of the conversation the button's chat or topic continues, when
// the button's tag matches it.
func (a *AI) retryQuestion(r *bot.Request, ref retryRef) (string, error) {
	userID := r.From.ID
	s, err := a.store.AISettings(userID)
	if err != nil {
		return "", err
	}
	if conversationOf(s, r) != ref.n {
		return "", valex.Errorf("ai.retry.other_conversation", nil)
	}
	q, ok, err := a.store.LastQuestion(userID, ref.n)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", valex.Errorf("ai.retry.gone", nil)
	case a.questionTag(userID, ref.n, q.Text) != ref.tag:
		return "", valex.Errorf("ai.retry.stale", nil)
	}
	return q.Text, nil
}

// modelMenu is the compact choice of the other chat models the user's plan
// allows, two a row, and the way back.
func (a *AI) modelMenu(r *bot.Request, ref retryRef) [][]bot.Button {
	plan := a.opt.Plan(r.From.ID)
	current := ""
	if s, err := a.store.AISettings(r.From.ID); err == nil {
		if m, ok := a.modelFor(s.Model, ai.CapChat, plan); ok {
			current = m.ID
		}
	}
	var kb [][]bot.Button
	var row []bot.Button
	for _, m := range a.models.Models(ai.CapChat, plan) {
		if m.ID == current {
			continue
		}
		row = append(row, bot.Button{Text: m.ID, Data: cbRetry.Data(a.h.CB, append(append([]string{"u"}, ref.args()...), shortKey(m.ID))...)})
		if len(row) == 2 {
			kb, row = append(kb, row), nil
		}
	}
	row = append(row, bot.Button{Text: a.h.t(r, "ai.retry.btn_back", nil), Data: cbRetry.Data(a.h.CB, append([]string{"b"}, ref.args()...)...)})
	return append(kb, row)
}
