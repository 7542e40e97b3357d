package handlers

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// An AI request's update leaves the inbox's pending set only when its turn
// has ended, so a crash or a stop answers it after the restart (the crash
// itself is TestCrashLosesNoAITurn in cmd/valex).

// pendingIDs are the ids of the updates the inbox would replay.
func (x *aiHarness) pendingIDs() []int {
	x.t.Helper()
	entries, err := x.db.InboxPending()
	if err != nil {
		x.t.Fatal(err)
	}
	var ids []int
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	return ids
}

// waitPending polls until the pending update ids are want (handled ids are
// committed a few milliseconds late).
func (x *aiHarness) waitPending(want ...int) {
	x.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(x.pendingIDs(), want) {
		if time.Now().After(deadline) {
			x.t.Fatalf("pending updates %v, want %v", x.pendingIDs(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stillPending checks, well after a handler's update would have been
// committed as handled, that the pending ids are want.
func (x *aiHarness) stillPending(want ...int) {
	x.t.Helper()
	time.Sleep(50 * time.Millisecond) // the harness commits every 5 ms
	if got := x.pendingIDs(); !slices.Equal(got, want) {
		x.t.Fatalf("pending updates %v, want %v", got, want)
	}
}

func TestAnswerKeepsItsUpdatePendingUntilShown(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Text: strings.Repeat("slowly ", 30), TokenDelay: 20 * time.Millisecond})
	id := x.emu.SendText(bottest.PrivateChat(ann), ann, "tell me slowly")
	if _, err := x.emu.WaitFor(x.ctx(), func(e bottest.Event) bool {
		return e.Method == "sendMessageDraft" && e.ChatID == ann.ID && strings.HasPrefix(e.Text, "slow")
	}); err != nil {
		t.Fatal(err)
	}
	x.stillPending(id) // the handler has returned; the answer streams
	x.idle()
	x.waitPending()
	if got := x.lastText(ann.ID); !strings.HasPrefix(got, "slowly") || len(got) < 200 {
		t.Fatalf("answer %q", got)
	}
}

func TestHeldMessageIsPendingUntilItsTurnEnds(t *testing.T) {
	tests := []struct {
		name    string
		hold    time.Duration // counted from the message's date, whole seconds
		answers bool
		reply   string
	}{
		{"answered when the user agrees", time.Minute, true, "echo: what is a quasar"},
		{"dropped when the hold expires", 1500 * time.Millisecond, false, "Send me your request again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newAIHarness(t, func(hc *harnessConfig) { hc.opts.ConsentHold = tc.hold })
			x.register(bob, false)
			id := x.emu.SendText(bottest.PrivateChat(bob), bob, "what is a quasar")
			x.idle()
			x.stillPending(id) // asked for consent, held
			if !tc.answers {
				x.waitPending() // expired: dropped, handled
			}
			x.press(bob, bottest.PrivateChat(bob), "I agree")
			x.waitPending()
			if got := x.lastText(bob.ID); !strings.Contains(got, tc.reply) {
				t.Fatalf("after agreeing: %q, want %q", got, tc.reply)
			}
			if n := x.aisv.Count(); (n > 0) != tc.answers {
				t.Fatalf("%d provider requests", n)
			}
		})
	}
}

// A newer message takes the place of the one held: the older is dropped and
// its update handled; only the newer is answered.
func TestNewerMessageReplacesTheHeldOne(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(bob, false)
	first := x.emu.SendText(bottest.PrivateChat(bob), bob, "first question")
	x.idle()
	second := x.emu.SendText(bottest.PrivateChat(bob), bob, "second question")
	x.idle()
	if first == 0 || second == 0 {
		t.Fatal("messages not sent")
	}
	x.stillPending(second)
	x.press(bob, bottest.PrivateChat(bob), "I agree")
	x.waitPending()
	reqs := x.aisv.Requests()
	if len(reqs) != 1 || reqs[0].Messages[len(reqs[0].Messages)-1].Text != "second question" {
		t.Fatalf("provider requests: %+v", reqs)
	}
}
