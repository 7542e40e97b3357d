package handlers

// The slots of AI work: at most MaxConcurrent jobs run at once across all
// users, and users take turns for them. A user whose next job waits for a
// slot stands in one line, once, however many messages they sent; when
// their job ends, their following one goes to the back of the line. So a
// user with a hundred queued messages gets one slot in turn, and someone
// else's single message waits for at most one job of each user ahead.

import "github.com/valex-ai/valex/bot"

// DefaultMaxConcurrent is AIOptions.MaxConcurrent's default: enough for a
// small server's CPU and memory, and for a provider account's usual
// concurrency.
const DefaultMaxConcurrent = 16

// slotted is a job that got a slot, to be started once the lock is released.
type slotted struct {
	userID int64
	job    *aiJob
}

// waitLocked puts the user, whose next job is j, at the back of the line.
func (a *AI) waitLocked(userID int64, j *aiJob) {
	j.since = a.h.Clock.Now()
	a.line = append(a.line, userID)
	a.noticeLocked()
}

// unwaitLocked takes the user out of the line.
func (a *AI) unwaitLocked(userID int64) {
	for i, uid := range a.line {
		if uid == userID {
			a.line = append(a.line[:i:i], a.line[i+1:]...)
			return
		}
	}
}

// dispatchLocked gives the free slots to the users at the front of the
// line. Once Shutdown has cancelled the jobs, nothing more starts: the jobs
// still waiting are answered after the restart.
func (a *AI) dispatchLocked() []slotted {
	var start []slotted
	for a.running < a.opt.MaxConcurrent && len(a.line) > 0 && a.root.Err() == nil {
		uid := a.line[0]
		a.line = a.line[1:]
		j := a.jobs[uid][0]
		j.running = true
		a.running++
		start = append(start, slotted{uid, j})
	}
	return start
}

// start runs the jobs dispatchLocked picked, each on a worker that
// outlives it (bot.Workers, at most MaxConcurrent of them idle).
func (a *AI) start(jobs []slotted) {
	for _, s := range jobs {
		a.pool.Go(s)
	}
}

// Workers is how many job goroutines exist, running a job or waiting for one.
func (a *AI) Workers() int { return a.pool.Alive() }

// queuedText is the "queued" notice for a job at position pos in the line.
func (a *AI) queuedText(r *bot.Request, pos int) string {
	if pos <= 1 {
		return a.h.t(r, "ai.queue.next", nil)
	}
	return a.h.Tr.N(r.Lang, "ai.queue.ahead", pos-1, nil)
}

// Slots is the number of AI jobs holding a slot, and of users whose next
// job waits for one (their later jobs are not counted: they wait for their
// own earlier answer).
func (a *AI) Slots() (running, waiting int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running, len(a.line)
}
