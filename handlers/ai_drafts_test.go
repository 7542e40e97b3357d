package handlers

import (
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Streaming with sendMessageDraft in private chats, its stop button, and
// the fallback to edits, over both emulators.

// answerCalls are the calls that showed an answer in a chat after seq:
// drafts, messages, edits and deletions, failed ones included.
func (x *aiHarness) answerCalls(chatID int64, seq int) []bottest.Event {
	var out []bottest.Event
	for _, e := range x.emu.EventsFor(chatID) {
		switch e.Method {
		case "sendMessageDraft", "sendMessage", "editMessageText", "deleteMessage":
			if e.Seq > seq {
				out = append(out, e)
			}
		}
	}
	return out
}

func methods(evs []bottest.Event) map[string]int {
	n := map[string]int{}
	for _, e := range evs {
		if e.OK() {
			n[e.Method]++
		}
	}
	return n
}

// A private answer arrives as drafts under one id, "Thinking…" first, then
// as one message per part of the final rendering — never as edits.
func TestPrivateAnswerStreamsAsDrafts(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		parts int
	}{
		{"one message", words(120), 1},
		{"past 4096 characters", words(1100), 2}, // ~6,000 characters
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := newAIHarness(t, func(c *harnessConfig) { c.opts.DraftInterval = 20 * time.Millisecond })
			x.register(ann, true)
			// The model thinks a while first: "Thinking…" shows meanwhile.
			x.aisv.Script("chat-a-name", aitest.Step{Text: tt.text, ChunkSize: max(len(tt.text)/60, 4), TokenDelay: 10 * time.Millisecond, Delay: 100 * time.Millisecond})
			seq := x.lastSeq()
			x.say(ann, "stream please")

			calls := x.answerCalls(ann.ID, seq)
			var drafts, sends []bottest.Event
			for _, e := range calls {
				if !e.OK() {
					t.Errorf("failed call %s", e)
				}
				switch e.Method {
				case "sendMessageDraft":
					if len(sends) > 0 {
						t.Errorf("a draft after the answer was sent: %s", e)
					}
					drafts = append(drafts, e)
				case "sendMessage":
					sends = append(sends, e)
				default:
					t.Errorf("unexpected call %s", e)
				}
			}
			if len(drafts) < 3 {
				t.Fatalf("%d drafts: the answer was not streamed (%v)", len(drafts), calls)
			}
			if drafts[0].Text != "" {
				t.Errorf("the first draft shows %q, want the empty \"Thinking…\" one", drafts[0].Text)
			}
			id := drafts[0].DraftID
			for _, d := range drafts {
				if d.DraftID != id || id == 0 || !d.CanStop || d.ParseMode != "HTML" && d.Raw != "" {
					t.Errorf("draft %s: id %d (first %d), can_stop %v, parse mode %q", d, d.DraftID, id, d.CanStop, d.ParseMode)
				}
				if len([]rune(d.Text)) > tghtml.MaxMessageLen {
					t.Errorf("draft of %d characters", len([]rune(d.Text)))
				}
			}
			want := tghtml.Split(tghtml.MarkdownToHTML(tt.text), tghtml.MaxMessageLen)
			if len(sends) != tt.parts || len(want) != tt.parts {
				t.Fatalf("%d messages (%d parts rendered), want %d", len(sends), len(want), tt.parts)
			}
			for i, m := range sends {
				if m.Raw != want[i] {
					t.Errorf("message %d differs from the final rendering", i+1)
				}
			}
			// The last draft showed the part being written: the last message's beginning.
			last := drafts[len(drafts)-1].Text
			if last == "" || !strings.HasPrefix(sends[len(sends)-1].Text, strings.TrimSpace(last)) {
				t.Errorf("the last draft %q is not the beginning of the last message", last)
			}
			if h := x.history(ann); len(h) != 2 || h[1].Text != tt.text {
				t.Errorf("history = %+v", h)
			}
		})
	}
}

// The stop button stops the generation like /cancel: what the draft showed
// is kept as the answer's message and in the history, and only that is
// charged. A stop for an answer no longer running changes nothing.
func TestStopButtonKeepsWhatWasShownAndChargesIt(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) { c.opts.DraftInterval = 20 * time.Millisecond })
	x.register(ann, true)
	full := words(400)
	x.aisv.Script("chat-a-name", aitest.Step{Text: full, TokenDelay: 20 * time.Millisecond})
	ctx := x.ctx()
	seq := x.lastSeq()
	x.emu.SendText(bottest.PrivateChat(ann), ann, "tell me a long story")
	drafts, err := x.emu.WaitCount(ctx, 3, func(e bottest.Event) bool {
		return e.Seq > seq && e.ChatID == ann.ID && e.Method == "sendMessageDraft" && e.Text != "" && e.OK()
	})
	if err != nil {
		t.Fatal(err)
	}
	id := drafts[0].DraftID
	if x.emu.StopDraft(ann, id) == 0 {
		t.Fatal("the stop button was not shown")
	}
	sent, err := x.emu.WaitFor(ctx, func(e bottest.Event) bool {
		return e.Seq > seq && e.ChatID == ann.ID && e.Method == "sendMessage"
	})
	if err != nil {
		t.Fatal(err)
	}
	x.idle()

	var lastDraft bottest.Event
	for _, e := range x.answerCalls(ann.ID, seq) {
		switch {
		case e.Method == "sendMessageDraft" && e.Seq < sent.Seq && e.OK():
			lastDraft = e
		case e.Seq > sent.Seq:
			t.Errorf("shown after the stop: %s", e)
		}
	}
	if sent.Text == "" || sent.Text == full || !strings.HasPrefix(full, sent.Text) {
		t.Fatalf("kept after the stop: %q", sent.Text)
	}
	if sent.Text != lastDraft.Text {
		t.Errorf("kept %q, the draft showed %q", sent.Text, lastDraft.Text)
	}
	for _, text := range x.texts(ann.ID) {
		if text == "Stopped." {
			t.Error("told \"Stopped.\": the stop button needs no answer")
		}
	}
	h := x.history(ann)
	if len(h) != 2 || strings.TrimSpace(h[1].Text) != sent.Text {
		t.Fatalf("history = %+v", h)
	}
	l := x.usage(ann)
	if shown := ai.EstimateTokens(h[1].Text); len(l) != 1 || l[0].Model != "chat-a" || l[0].OutputTokens != shown || shown >= ai.EstimateTokens(full) {
		t.Errorf("ledger = %+v, want the %d output tokens shown", l, shown)
	}

	// The same stop again, the answer over: nothing happens, nothing is said.
	seq = x.lastSeq()
	if x.emu.StopDraft(ann, id) == 0 {
		t.Fatal("stop not sent")
	}
	x.idle()
	for _, e := range x.emu.EventsFor(ann.ID) {
		if e.Seq > seq {
			t.Errorf("a stale stop caused %s", e)
		}
	}
	x.say(ann, "still there?")
	if got := x.lastText(ann.ID); got != "echo: still there?" {
		t.Errorf("after the stop: %q", got)
	}
}

// The stop button stops only its answer: a message waiting behind it is
// still answered.
func TestStopButtonSparesTheNextMessage(t *testing.T) {
	x := newAIHarness(t, func(c *harnessConfig) { c.opts.DraftInterval = 20 * time.Millisecond })
	x.register(ann, true)
	x.aisv.Script("chat-a-name", aitest.Step{Text: words(400), TokenDelay: 20 * time.Millisecond})
	chat := bottest.PrivateChat(ann)
	ctx := x.ctx()
	x.emu.SendText(chat, ann, "long one")
	x.emu.SendText(chat, ann, "short one")
	d, err := x.emu.WaitFor(ctx, func(e bottest.Event) bool {
		return e.ChatID == ann.ID && e.Method == "sendMessageDraft" && e.Text != "" && e.OK()
	})
	if err != nil {
		t.Fatal(err)
	}
	x.emu.StopDraft(ann, d.DraftID)
	x.idle()
	if got := x.lastText(ann.ID); got != "echo: short one" {
		t.Errorf("the message behind the stopped answer: %q", got)
	}
}

// In a group the answer is a message edited as it grows: drafts are for
// private chats only.
func TestGroupAnswerUsesEdits(t *testing.T) {
	x := newAIHarness(t, nil)
	x.register(ann, true)
	group := bottest.Chat{ID: -100123, Type: "group", Title: "friends"}
	text := words(120)
	x.aisv.Script("chat-a-name", aitest.Step{Text: text, ChunkSize: 8, TokenDelay: 10 * time.Millisecond})
	x.emu.SendText(group, ann, "@valex_bot tell me")
	x.idle()
	n := methods(x.answerCalls(group.ID, 0))
	if n["sendMessageDraft"] != 0 || x.emu.Count("sendMessageDraft") != 0 {
		t.Errorf("drafts in a group: %v", n)
	}
	if n["sendMessage"] != 1 || n["editMessageText"] < 1 {
		t.Errorf("calls %v, want one message and its edits", n)
	}
	if got := x.emu.Messages(group.ID); len(got) != 1 || got[0].Text != text {
		t.Errorf("group messages = %+v", got)
	}
}

// A 429 on a draft is honoured: nothing goes to the chat before
// retry_after has passed, then drafts resume and the answer is complete.
func TestDraftFloodWaitIsHonoured(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a one-second flood wait")
	}
	x := newAIHarness(t, func(c *harnessConfig) { c.opts.DraftInterval = 20 * time.Millisecond })
	x.register(ann, true)
	text := words(200)
	x.aisv.Script("chat-a-name", aitest.Step{Text: text, ChunkSize: 12, TokenDelay: 20 * time.Millisecond}) // ~1.8s
	x.emu.FailNext("sendMessageDraft", 1, 429, 1)
	seq := x.lastSeq()
	x.say(ann, "go")

	var flood *bottest.Event
	drafted := false
	for _, e := range x.emu.EventsFor(ann.ID) {
		if e.Seq <= seq || e.Method == "getUpdates" {
			continue
		}
		if flood == nil {
			if e.Method == "sendMessageDraft" && e.ErrorCode == 429 {
				flood = &e
			}
			continue
		}
		if wait := time.Duration(flood.RetryAfter) * time.Second; e.At.Before(flood.At.Add(wait)) {
			t.Errorf("%s came %v after the 429, before retry_after %v", e, e.At.Sub(flood.At), wait)
		}
		if e.Method == "sendMessageDraft" && e.OK() && e.Text != "" {
			drafted = true
		}
	}
	if flood == nil {
		t.Fatal("no draft was refused")
	}
	if !drafted {
		t.Error("no draft after the flood wait")
	}
	if got := x.lastText(ann.ID); got != text {
		t.Errorf("answer %q", got)
	}
}

// A draft Telegram refuses (an old Bot API, a chat that cannot take them)
// hands the rest of the answer to the edit loop. A 400 is retried with the
// next answer; a 404 (the method is unknown) ends drafts for good.
func TestRefusedDraftFallsBackToEdits(t *testing.T) {
	tests := []struct {
		name        string
		noDrafts    bool // the server answers 404
		draftsLater bool // the second answer streams as drafts
	}{
		{"400 for one answer", false, true},
		{"404: no drafts on this server", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := newAIHarness(t, func(c *harnessConfig) {
				c.noDrafts = tt.noDrafts
				c.opts.DraftInterval = 20 * time.Millisecond
			})
			if !tt.noDrafts {
				x.emu.FailNext("sendMessageDraft", 1, 400, 0)
			}
			x.register(ann, true)
			text := words(120)
			x.aisv.Script("chat-a-name", aitest.Step{Text: text, ChunkSize: 8, TokenDelay: 10 * time.Millisecond},
				aitest.Step{Delay: 100 * time.Millisecond}) // the second answer thinks first: a draft is due
			x.say(ann, "first")
			calls := x.answerCalls(ann.ID, 0)
			if len(calls) == 0 || calls[0].Method != "sendMessageDraft" || calls[0].OK() {
				t.Fatalf("calls %v, want a refused draft first", calls)
			}
			n := methods(calls)
			if n["sendMessageDraft"] != 0 || n["sendMessage"] != 1 || n["editMessageText"] < 1 {
				t.Errorf("after the refused draft: %v, want one message and its edits", n)
			}
			if got := x.lastText(ann.ID); got != text {
				t.Errorf("answer %q", got)
			}

			seq := x.lastSeq()
			x.say(ann, "second")
			n = methods(x.answerCalls(ann.ID, seq))
			if (n["sendMessageDraft"] > 0) != tt.draftsLater {
				t.Errorf("second answer: %v, drafts wanted: %v", n, tt.draftsLater)
			}
			if tt.noDrafts && x.emu.Count("sendMessageDraft") != 1 {
				t.Errorf("%d draft calls to a server without them, want 1", x.emu.Count("sendMessageDraft"))
			}
			if got := x.lastText(ann.ID); got != "echo: second" {
				t.Errorf("second answer %q", got)
			}
		})
	}
}

// A complete answer is final at once, however long the interval between
// drafts or edits, and the next message waiting is answered right after.
// (The intervals are an hour: the old wait would never end in this test.)
func TestFinishedAnswerIsFinalAtOnce(t *testing.T) {
	tests := []struct {
		name  string
		chat  bottest.Chat
		text  string // what the user writes
		final string // the call that shows the whole answer
	}{
		{"drafts", bottest.PrivateChat(ann), "q", "sendMessage"},
		{"edits", bottest.Chat{ID: -100777, Type: "group", Title: "g"}, "@valex_bot q", "editMessageText"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := newAIHarness(t, func(c *harnessConfig) {
				c.opts.DraftInterval, c.opts.EditInterval, c.opts.GroupEditInterval = time.Hour, time.Hour, time.Hour
			})
			x.register(ann, true)
			a1, a2 := words(60), words(50)
			x.aisv.Script("chat-a-name",
				aitest.Step{Text: a1, ChunkSize: 8, TokenDelay: 5 * time.Millisecond},
				aitest.Step{Text: a2, ChunkSize: 8, TokenDelay: 5 * time.Millisecond})
			x.emu.SendText(tt.chat, ann, tt.text+"1")
			x.emu.SendText(tt.chat, ann, tt.text+"2")
			x.idle()

			var finals []bottest.Event
			for _, e := range x.answerCalls(tt.chat.ID, 0) {
				if e.Method == tt.final && (e.Text == a1 || e.Text == a2) {
					finals = append(finals, e)
				}
			}
			if len(finals) != 2 || finals[0].Text != a1 || finals[1].Text != a2 {
				t.Fatalf("final calls %v, want the first answer then the second", finals)
			}
			// Nothing waited for the hour between calls. A private answer
			// complete before its first draft is due is just its message.
			n := methods(x.answerCalls(tt.chat.ID, 0))
			if tt.name == "drafts" && (n["sendMessage"] != 2 || n["sendMessageDraft"] != 0) {
				t.Errorf("calls %v, want per answer one message and no draft", n)
			}
			if tt.name == "edits" && (n["sendMessage"] != 2 || n["editMessageText"] != 2) {
				t.Errorf("calls %v, want per answer one message and one edit", n)
			}
		})
	}
}
