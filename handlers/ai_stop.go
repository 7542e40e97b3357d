package handlers

// The stop button of an answer streaming as a draft (sendMessageDraft with
// can_stop): its tap arrives as a bot.KindStop update naming the draft.

import (
	"context"
	"math"

	"github.com/valex-ai/valex/bot"
)

// Stopped handles a tap on a draft's stop button: the answer streaming as
// that draft stops like after /cancel — what was shown is kept (sent as a
// message: a draft vanishes) and charged as estimated, the rest is never
// generated. Only that answer stops: the user's messages waiting behind it
// are still answered. A stop for an answer that is no longer running (it
// finished as the user tapped) changes nothing and says nothing.
func (a *AI) Stopped(ctx context.Context, r *bot.Request) error {
	a.StopDraft(r.From.ID, r.DraftID)
	return nil
}

// StopDraft stops the user's job whose answer streams as draft draftID and
// reports whether there was one.
func (a *AI) StopDraft(userID, draftID int64) bool {
	if draftID == 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, j := range a.jobs[userID] {
		if j.draft == draftID {
			j.cancel(nil)
			return true
		}
	}
	return false
}

// streaming records that ctx's job streams its answer as draft id.
func (a *AI) streaming(ctx context.Context, id int64) {
	j, ok := ctx.Value(jobKey{}).(*aiJob)
	if !ok {
		return
	}
	a.mu.Lock()
	j.draft = id
	a.mu.Unlock()
}

// draftID is the draft id of the answer to r: its update's id, unique per
// answer and never zero (Telegram's ids start at 1); for the rare answer
// without one, a count down from the top of Telegram's 32-bit ids.
func (a *AI) draftID(r *bot.Request) int64 {
	if r.Update != nil && r.ID > 0 {
		return int64(r.ID)
	}
	return math.MaxInt32 - a.drafts.Add(1)
}
