package bot_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

// earlyCalls returns the calls to chatID made before the end of a
// retry_after that Telegram had given for that chat.
func earlyCalls(emu *bottest.Server, chatID int64) []string {
	var early []string
	var notBefore time.Time
	var givenBy bottest.Event
	for _, e := range emu.EventsFor(chatID) {
		if e.At.Before(notBefore) {
			early = append(early, fmt.Sprintf("%v came %s after %v", e, e.At.Sub(givenBy.At), givenBy))
		}
		if e.ErrorCode == 429 {
			if end := e.At.Add(time.Duration(e.RetryAfter) * time.Second); end.After(notBefore) {
				notBefore, givenBy = end, e
			}
		}
	}
	return early
}

// TestOutboxLosesNoReplyInA429Storm is the measured storm, shortened: every
// call refused for 1.5 s with retry_after 1–2 s, 20 replies to 4 chats,
// each reply a chat action, the message and an edit, all at once.
func TestOutboxLosesNoReplyInA429Storm(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	chats := []int64{11, 12, 13, 14}
	const perChat = 5
	emu.Flood("", 1500*time.Millisecond, 1, 2)

	var wg sync.WaitGroup
	errs := make(chan error, len(chats)*perChat)
	for _, chat := range chats {
		for i := range perChat {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				if err := out.Typing(ctx, chat, 0, "typing"); err != nil {
					errs <- fmt.Errorf("chat %d typing: %w", chat, err)
					return
				}
				text := fmt.Sprintf("reply %d", i)
				id, err := out.Send(ctx, bot.Message{ChatID: chat, Text: text})
				if err != nil {
					errs <- fmt.Errorf("chat %d %s: %w", chat, text, err)
					return
				}
				if err := out.Edit(ctx, chat, id, text+" edited", nil); err != nil {
					errs <- fmt.Errorf("chat %d edit %s: %w", chat, text, err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	var refused int
	for _, chat := range chats {
		var got []string
		for _, m := range emu.Messages(chat) {
			got = append(got, m.Text)
		}
		slices.Sort(got)
		want := []string{"reply 0 edited", "reply 1 edited", "reply 2 edited", "reply 3 edited", "reply 4 edited"}
		if !slices.Equal(got, want) {
			t.Errorf("chat %d shows %q, want %q", chat, got, want)
		}
		for _, e := range emu.EventsFor(chat) {
			if e.ErrorCode == 429 {
				refused++
			}
		}
		for _, early := range earlyCalls(emu, chat) {
			t.Errorf("chat %d: call before its retry_after: %s", chat, early)
		}
	}
	// Every chat's first call falls in the storm: without that the test
	// proves nothing.
	if refused < len(chats) {
		t.Fatalf("%d calls refused with 429, want at least one per chat (%d)", refused, len(chats))
	}
	if st := out.Stats(); st.Flood != int64(refused) || st.Permanent != 0 || st.GaveUp != 0 {
		t.Fatalf("stats = %+v, want Flood=%d and nothing dropped", st, refused)
	}
}

// TestOutboxHoldsEveryCallAfterA429WithoutChat: a 429 on a call that names
// no chat (setMyCommands here) holds the calls to every chat.
func TestOutboxHoldsEveryCallAfterA429WithoutChat(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	emu.FailNext("setMyCommands", 1, 429, 1)
	done := make(chan error, 1)
	go func() {
		done <- out.SetCommands(context.Background(), "", []bot.Command{{Name: "start", Description: "Start"}})
	}()
	// The outbox records the hold before it counts the 429.
	for wait := time.Now().Add(5 * time.Second); out.Stats().Flood == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("setMyCommands got no 429")
		}
	}
	if _, err := out.Send(context.Background(), bot.Message{ChatID: 21, Text: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := out.Typing(context.Background(), 22, 0, "typing"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var held time.Time
	for _, e := range emu.Events() {
		switch {
		case e.Method == "setMyCommands" && e.ErrorCode == 429:
			held = e.At.Add(time.Duration(e.RetryAfter) * time.Second)
		case e.Method == "sendMessage" || e.Method == "sendChatAction":
			if held.IsZero() || e.At.Before(held) {
				t.Errorf("%v came %s before the global retry_after ended", e, held.Sub(e.At))
			}
		}
	}
}

func TestOutboxEndsAReplyOnlyOnAPermanentError(t *testing.T) {
	const chat = 424242
	const text = "secret reply text"
	tests := []struct {
		name      string
		setup     func(emu *bottest.Server)
		text      string
		wantErr   func(error) bool
		calls     int // sendMessage calls made
		permanent int64
	}{
		{"blocked by the user", func(emu *bottest.Server) { emu.SetBlocked(chat, true) }, text, bot.IsBlocked, 1, 1},
		{"chat not found", func(emu *bottest.Server) { emu.SetChatMissing(chat, true) }, text, isCode(400), 1, 1},
		{"refused HTML is sent as plain text", func(*bottest.Server) {}, "<b>" + text + "<i></b></i>", nil, 2, 0},
		{"429 then delivered", func(emu *bottest.Server) { emu.FailNext("sendMessage", 1, 429, 1) }, text, nil, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := newEmulator(t)
			var logs bytes.Buffer
			ids := valex.NewPseudonymizer([]byte("log key"), nil)
			cfg := fastPace
			cfg.Pseudonyms = ids
			out := newOutboxLog(t, emu, cfg, zerolog.New(&logs))
			tt.setup(emu)

			_, err := out.Send(context.Background(), bot.Message{ChatID: chat, Text: tt.text})
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Send: %v", err)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Fatalf("Send error = %v", err)
			}
			if n := len(emu.EventsFor(chat)); n != tt.calls {
				t.Fatalf("%d calls to the chat, want %d: %v", n, tt.calls, emu.EventsFor(chat))
			}
			if st := out.Stats(); st.Permanent != tt.permanent || st.GaveUp != 0 {
				t.Fatalf("stats = %+v, want Permanent=%d GaveUp=0", st, tt.permanent)
			}
			logged := strings.Contains(logs.String(), "telegram refused the call for good")
			if logged != (tt.permanent > 0) {
				t.Fatalf("logged a permanent refusal: %v, want %v; log:\n%s", logged, tt.permanent > 0, logs.String())
			}
			if logged && !strings.Contains(logs.String(), ids.Chat(chat)) {
				t.Fatalf("the log does not name the chat by its pseudonym:\n%s", logs.String())
			}
			for _, secret := range []string{"424242", "secret", testToken} {
				if strings.Contains(logs.String(), secret) {
					t.Fatalf("the log contains %q:\n%s", secret, logs.String())
				}
			}
		})
	}
}

// TestOutboxGivesUpAtTheFloodDeadline: the deadline, not a count, ends the
// waiting; the chat stays held, so the error reply that follows does not
// come before the retry_after either.
func TestOutboxGivesUpAtTheFloodDeadline(t *testing.T) {
	emu := newEmulator(t)
	cfg := fastPace
	cfg.FloodDeadline = 1500 * time.Millisecond
	out := newOutbox(t, emu, cfg)
	emu.FailNext("sendMessage", 100, 429, 1)

	start := time.Now()
	_, err := out.Send(context.Background(), bot.Message{ChatID: 31, Text: "answer"})
	var ae *bot.APIError
	if !errors.Is(err, bot.ErrFloodDeadline) || !errors.As(err, &ae) || ae.Code != 429 {
		t.Fatalf("Send = %v, want ErrFloodDeadline wrapping the 429", err)
	}
	// Attempts at 0 s and 1 s; the hold to 2 s passes the deadline at 1.5 s.
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("gave up after %s, want as soon as the wait outlasts the deadline", took)
	}
	if n := len(emu.EventsFor(31)); n != 2 {
		t.Fatalf("%d attempts, want 2: %v", n, emu.EventsFor(31))
	}
	if st := out.Stats(); st.GaveUp != 1 || st.Permanent != 0 || st.Flood != 2 {
		t.Fatalf("stats = %+v, want GaveUp=1 Permanent=0 Flood=2", st)
	}

	emu.FailNext("sendMessage", 0, 0, 0)
	if _, err := out.Send(context.Background(), bot.Message{ChatID: 31, Text: "something went wrong"}); err != nil {
		t.Fatal(err)
	}
	if early := earlyCalls(emu, 31); len(early) > 0 {
		t.Fatalf("error reply before the retry_after: %v", early)
	}
}

func TestOutboxStopsWaitingWhenTheContextEnds(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	emu.FailNext("sendMessage", 1, 429, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2) // the call that got the 429, and one queued behind it
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = out.Send(ctx, bot.Message{ChatID: 41, Text: "x"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send %d = %v, want the context's error", i, err)
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("returned after %s, want at the context's end (300ms)", took)
	}
	if n := len(emu.EventsFor(41)); n != 1 {
		t.Fatalf("%d calls, want only the refused one: %v", n, emu.EventsFor(41))
	}
	if st := out.Stats(); st.GaveUp != 0 || st.Permanent != 0 || st.Backlog != 0 {
		t.Fatalf("stats = %+v: a cancelled call is neither dropped nor left in the backlog", st)
	}
}

func isCode(code int) func(error) bool {
	return func(err error) bool {
		var ae *bot.APIError
		return errors.As(err, &ae) && ae.Code == code
	}
}

func newOutboxLog(t *testing.T, emu *bottest.Server, cfg bot.OutboxConfig, log zerolog.Logger) *bot.Outbox {
	t.Helper()
	c, err := bot.NewClient(context.Background(), emu.URL(), emu.Token(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return bot.NewOutbox(c, cfg, log)
}
