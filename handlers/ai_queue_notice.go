package handlers

// The "queued" notice: a user whose next job has waited QueueNotice for a
// slot is told their place in the line, once; the notice is deleted when
// the job starts or is dropped. One goroutine sends them all, and only
// while someone waits.

import (
	"time"

	"github.com/valex-ai/valex/bot"
)

// noticeTick is how often the notice goroutine looks at the line while
// someone waits; it reads the injected clock, so a test's clock moves it.
const noticeTick = 250 * time.Millisecond

// noticeLocked starts the notice goroutine unless it runs or notices are off.
func (a *AI) noticeLocked() {
	if a.opt.QueueNotice <= 0 || a.noticing {
		return
	}
	a.noticing = true
	a.wg.Add(1)
	go a.noticeLoop()
}

// noticeLoop sends the notices that are due until nobody waits.
func (a *AI) noticeLoop() {
	defer a.wg.Done()
	tick := min(noticeTick, a.opt.QueueNotice/4)
	for {
		a.mu.Lock()
		if len(a.line) == 0 || a.root.Err() != nil {
			a.noticing = false
			a.mu.Unlock()
			return
		}
		now := a.h.Clock.Now()
		var due []*aiJob
		var pos []int
		for i, uid := range a.line { // oldest first: the line is in order of since
			j := a.jobs[uid][0]
			if j.noticed {
				continue
			}
			if now.Sub(j.since) < a.opt.QueueNotice {
				break
			}
			j.noticed = true
			due, pos = append(due, j), append(pos, i+1)
		}
		a.mu.Unlock()
		for i, j := range due {
			a.sendNotice(j, pos[i])
		}
		if len(due) == 0 {
			t := time.NewTimer(tick)
			select {
			case <-t.C:
			case <-a.root.Done():
			}
			t.Stop()
		}
	}
}

// sendNotice tells j's user their place in the line, unless j has started
// or was dropped meanwhile.
func (a *AI) sendNotice(j *aiJob, pos int) {
	a.mu.Lock()
	over := j.waited
	a.mu.Unlock()
	if over {
		return
	}
	id, err := a.out.Send(a.tg, bot.Message{ChatID: j.r.ChatID, ThreadID: j.r.ThreadID, Text: a.queuedText(j.r, pos)})
	if err != nil {
		a.h.Log.Warn().Str("error", a.h.IDs.Redact(err.Error(), j.r.ChatID)).Str("chat", a.h.IDs.Chat(j.r.ChatID)).Msg("queued notice not delivered")
		return
	}
	a.mu.Lock()
	over = j.waited
	if !over {
		j.notice = id
	}
	a.mu.Unlock()
	if over { // started or dropped while the notice was on its way
		a.deleteNotice(j, id)
	}
}

// unnotice ends j's wait: it started or was dropped. Its notice, if it got
// one, is deleted.
func (a *AI) unnotice(j *aiJob) {
	a.mu.Lock()
	j.waited = true
	id := j.notice
	j.notice = 0
	a.mu.Unlock()
	if id != 0 {
		a.deleteNotice(j, id)
	}
}

func (a *AI) deleteNotice(j *aiJob, id int) {
	if err := a.out.Delete(a.tg, j.r.ChatID, id); err != nil {
		a.h.Log.Warn().Str("error", a.h.IDs.Redact(err.Error(), j.r.ChatID)).Str("chat", a.h.IDs.Chat(j.r.ChatID)).Msg("queued notice not deleted")
	}
}
