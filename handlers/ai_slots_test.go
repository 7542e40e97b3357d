package handlers

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

// The slots of AI work (ai_slots.go) over both emulators: at most
// MaxConcurrent provider calls at once, users taking turns for them, a
// "queued" notice for whoever waits, and waiting jobs that cost no
// goroutine.

// slotHarness is an AI harness with n slots and the given queued-notice
// delay (negative: no notices).
func slotHarness(t *testing.T, n int, notice time.Duration) *aiHarness {
	t.Helper()
	return newAIHarness(t, func(c *harnessConfig) {
		c.opts.MaxConcurrent = n
		c.opts.QueueNotice = notice
	})
}

// waitFor polls cond until it holds, or fails the test after 30s.
func (x *aiHarness) waitFor(what string, cond func() bool) {
	x.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			x.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// asked is the questions the provider received, in the order they came.
func (x *aiHarness) asked() []string {
	var out []string
	for _, r := range x.aisv.Requests() {
		if n := len(r.Messages); n > 0 {
			out = append(out, r.Messages[n-1].Text)
		}
	}
	return out
}

func (x *aiHarness) inFlight() int {
	now, _ := x.aisv.InFlight()
	return now
}

// One user's twenty queued messages do not starve another user's single
// one: with one slot, B's question reaches the provider before A's third.
func TestSlotsAreSharedFairly(t *testing.T) {
	x := slotHarness(t, 1, -1)
	x.register(ann, true)
	x.register(bob, true)
	release := x.aisv.Hold()
	defer release()

	for i := 1; i <= 20; i++ {
		x.emu.SendText(bottest.PrivateChat(ann), ann, fmt.Sprintf("a%d", i))
	}
	x.waitFor("A's twenty jobs", func() bool { return x.ai.Busy() == 20 && x.inFlight() == 1 })
	x.emu.SendText(bottest.PrivateChat(bob), bob, "b1")
	x.waitFor("B's job", func() bool { return x.ai.Busy() == 21 })
	release()
	x.idle()

	asked := x.asked()
	if len(asked) != 21 {
		t.Fatalf("provider got %d questions, want 21: %v", len(asked), asked)
	}
	b, a3 := slices.Index(asked, "b1"), slices.Index(asked, "a3")
	if b < 0 || a3 < 0 || b > a3 {
		t.Errorf("B's question came at %d, A's third at %d: %v", b, a3, asked)
	}
	// A's own messages still run one at a time, in order.
	var mine []string
	for _, q := range asked {
		if strings.HasPrefix(q, "a") {
			mine = append(mine, q)
		}
	}
	for i, q := range mine {
		if q != fmt.Sprintf("a%d", i+1) {
			t.Fatalf("A's questions out of order: %v", mine)
		}
	}
	if got := x.lastText(bob.ID); got != "echo: b1" {
		t.Errorf("B's answer: %q", got)
	}
	if _, most := x.aisv.InFlight(); most != 1 {
		t.Errorf("%d provider calls at once with one slot", most)
	}
}

// No more than MaxConcurrent calls reach the providers, however many users
// ask at once; the others wait in line and are all answered.
func TestSlotsBoundProviderCalls(t *testing.T) {
	const slots, users = 3, 10
	x := slotHarness(t, slots, -1)
	var us []bottest.User
	for i := range users {
		u := bottest.User{ID: int64(9100 + i), FirstName: "u", LanguageCode: "en"}
		x.register(u, true)
		us = append(us, u)
	}
	release := x.aisv.Hold()
	defer release()
	for _, u := range us {
		x.emu.SendText(bottest.PrivateChat(u), u, fmt.Sprintf("q%d", u.ID))
	}
	x.waitFor("every job queued", func() bool { return x.ai.Busy() == users && x.inFlight() == slots })
	time.Sleep(200 * time.Millisecond) // room for a call past the limit to show up, were it let through
	if now := x.inFlight(); now != slots {
		t.Errorf("%d calls in flight, limit %d", now, slots)
	}
	if running, waiting := x.ai.Slots(); running != slots || waiting != users-slots {
		t.Errorf("Slots() = %d running, %d waiting; want %d, %d", running, waiting, slots, users-slots)
	}
	release()
	x.idle()
	if _, most := x.aisv.InFlight(); most > slots {
		t.Errorf("%d provider calls at once, limit %d", most, slots)
	}
	for _, u := range us {
		if got, want := x.lastText(u.ID), fmt.Sprintf("echo: q%d", u.ID); got != want {
			t.Errorf("user %d: %q, want %q", u.ID, got, want)
		}
	}
}

// A user who waits for a slot is told their place in the line, in their
// language; the notice goes when their answer starts.
func TestQueuedNoticeShowsPlaceAndGoes(t *testing.T) {
	x := slotHarness(t, 1, 100*time.Millisecond)
	for _, u := range []bottest.User{ann, bob, vera} {
		x.register(u, true)
	}
	release := x.aisv.Hold()
	defer release()
	x.emu.SendText(bottest.PrivateChat(ann), ann, "first")
	x.waitFor("A's call", func() bool { return x.inFlight() == 1 })
	x.emu.SendText(bottest.PrivateChat(bob), bob, "second")
	x.waitFor("B in line", func() bool { _, w := x.ai.Slots(); return w == 1 })
	x.emu.SendText(bottest.PrivateChat(vera), vera, "третий")
	notice := func(u bottest.User, want string) bottest.Message {
		var found bottest.Message
		x.waitFor("the notice to "+u.FirstName, func() bool {
			for _, m := range x.emu.Messages(u.ID) {
				if strings.Contains(m.Text, want) {
					found = m
					return true
				}
			}
			return false
		})
		return found
	}
	nb := notice(bob, "your request is next in line")
	nv := notice(vera, "перед вашим в очереди 1 запрос.")
	if got := x.texts(ann.ID); len(got) != 0 {
		t.Errorf("A, who never waited, was sent %q", got)
	}
	release()
	x.idle()
	for _, c := range []struct {
		u  bottest.User
		id int
		a  string
	}{{bob, nb.ID, "echo: second"}, {vera, nv.ID, "echo: третий"}} {
		var deleted bool
		for _, m := range x.emu.Messages(c.u.ID) {
			if m.ID == c.id {
				deleted = m.Deleted
			}
		}
		if !deleted {
			t.Errorf("%s: the queued notice is still there", c.u.FirstName)
		}
		if got := x.texts(c.u.ID); len(got) != 1 || got[0] != c.a {
			t.Errorf("%s sees %q, want only the answer %q", c.u.FirstName, got, c.a)
		}
	}
}

// /cancel drops a job that waits for a slot: it never reaches the provider,
// its notice goes, and its update counts as handled. A privacy stop drops a
// waiting job the same way.
func TestCancelAndStopDropWaitingJobs(t *testing.T) {
	x := slotHarness(t, 1, 50*time.Millisecond)
	for _, u := range []bottest.User{ann, bob, vera} {
		x.register(u, true)
	}
	release := x.aisv.Hold()
	defer release()
	x.emu.SendText(bottest.PrivateChat(ann), ann, "running")
	x.waitFor("A's call", func() bool { return x.inFlight() == 1 })
	x.emu.SendText(bottest.PrivateChat(bob), bob, "bob waits")
	x.emu.SendText(bottest.PrivateChat(vera), vera, "vera waits")
	x.waitFor("B's notice", func() bool {
		return len(x.texts(bob.ID)) == 1 && strings.Contains(x.texts(bob.ID)[0], "in line")
	})

	x.emu.SendText(bottest.PrivateChat(bob), bob, "/cancel")
	x.waitFor("B's job dropped", func() bool { return x.ai.Busy() == 2 })
	if n := x.ai.StopUser(x.ctx(), vera.ID); n != 1 {
		t.Errorf("StopUser stopped %d jobs of V, want 1 (waiting)", n)
	}
	if x.ai.Busy() != 1 {
		t.Errorf("%d jobs after /cancel and StopUser, want A's only", x.ai.Busy())
	}
	release()
	x.idle()
	for _, q := range x.asked() {
		if q != "running" {
			t.Errorf("a dropped job reached the provider: %q", q)
		}
	}
	for _, m := range x.emu.Messages(bob.ID) {
		if strings.Contains(m.Text, "in line") && !m.Deleted {
			t.Error("B's queued notice was not deleted")
		}
	}
	if p := x.pendingIDs(); len(p) != 0 {
		t.Errorf("updates still pending: %v", p)
	}
}

// A job waiting for a slot is a queue entry, not a goroutine: 2,000 jobs
// queued behind a blocked provider add the running ones' goroutines only.
func TestWaitingJobsCostNoGoroutines(t *testing.T) {
	const slots, jobs, users = 4, 2000, 500
	x := slotHarness(t, slots, -1)
	release := x.aisv.Hold()
	defer release()
	x.idle()
	before := runtime.NumGoroutine()

	for i := range jobs {
		uid := int64(20000 + i%users)
		r := &bot.Request{Update: &bot.Update{ChatID: uid, From: bot.From{ID: uid}}, Lang: "en"}
		x.ai.submit(r, x.ai.admit(), func(bool) {}, func(ctx context.Context) {
			req := ai.ChatRequest{Model: "chat-b", Messages: []ai.Message{{Role: "user", Text: "hold"}}}
			_, _ = x.ai.models.ChatStream(ctx, req, func(string) {})
		})
	}
	x.waitFor("the slots' calls", func() bool { return x.inFlight() == slots })
	// Per running job: its goroutine, and the HTTP connection's (client and
	// emulator side); then a margin for the runtime's own.
	const perJob, margin = 6, 20
	if grew := runtime.NumGoroutine() - before; grew > slots*perJob+margin {
		t.Errorf("%d goroutines more with %d jobs queued (%d slots): want at most %d", grew, jobs, slots, slots*perJob+margin)
	}
	if running, waiting := x.ai.Slots(); running != slots || waiting != users-slots {
		t.Errorf("Slots() = %d, %d; want %d running, %d users waiting", running, waiting, slots, users-slots)
	}
	release()
	x.waitFor("every job", func() bool { return x.ai.Busy() == 0 })
	if x.aisv.Count() != jobs {
		t.Errorf("provider got %d calls, want %d", x.aisv.Count(), jobs)
	}
}

// Jobs run on workers that outlive them (a fresh goroutine regrows its
// stack on every answer): after many jobs at most MaxConcurrent workers
// stay, one takes the next job, and Shutdown lets them all go.
func TestWorkersAreReusedAndBounded(t *testing.T) {
	const slots, users, each = 3, 8, 5
	x := slotHarness(t, slots, -1)
	var us []bottest.User
	for i := range users {
		u := bottest.User{ID: int64(9300 + i), FirstName: "u", LanguageCode: "en"}
		x.register(u, true)
		us = append(us, u)
	}
	for i := range each {
		for _, u := range us {
			x.emu.SendText(bottest.PrivateChat(u), u, fmt.Sprintf("q%d-%d", u.ID, i))
		}
	}
	x.waitFor("every answer", func() bool { return x.aisv.Count() == users*each && x.ai.Busy() == 0 })
	x.idle()
	if n := x.ai.Workers(); n < 1 || n > slots {
		t.Fatalf("%d workers after %d jobs with %d slots: want 1 to %d kept", n, users*each, slots, slots)
	}
	kept := x.ai.Workers()
	x.emu.SendText(bottest.PrivateChat(us[0]), us[0], "one more")
	x.waitFor("the next answer", func() bool { return x.lastText(us[0].ID) == "echo: one more" })
	x.idle()
	if n := x.ai.Workers(); n != kept {
		t.Errorf("%d workers after one more job, %d before: an idle one should have taken it", n, kept)
	}
	x.ai.Shutdown(time.Second)
	x.waitFor("the workers to go", func() bool { return x.ai.Workers() == 0 })
}
