package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/bot/tghtml"
)

func TestOutboxWaitsRetryAfterOn429(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	emu.FailNext("sendMessage", 2, 429, 1)
	if _, err := out.Send(context.Background(), bot.Message{ChatID: 42, Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	var attempts []bottest.Event
	for _, e := range emu.EventsFor(42) {
		if e.Method == "sendMessage" {
			attempts = append(attempts, e)
		}
	}
	if len(attempts) != 3 || attempts[0].ErrorCode != 429 || attempts[1].ErrorCode != 429 || !attempts[2].OK() {
		t.Fatalf("attempts = %v, want 429, 429, ok", attempts)
	}
	for i := 1; i < len(attempts); i++ {
		if gap := attempts[i].At.Sub(attempts[i-1].At); gap < time.Second {
			t.Fatalf("attempt %d came %s after a 429 with retry_after=1s", i+1, gap)
		}
	}
}

func TestOutboxDeliversEveryReplyUnderFloodLimits(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	emu.FailNext("sendMessage", 5, 429, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for c := int64(1); c <= 10; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := out.Send(context.Background(), bot.Message{ChatID: c, Text: "reply"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for c := int64(1); c <= 10; c++ {
		var ok int
		var lastFail time.Time
		for _, e := range emu.EventsFor(c) {
			switch {
			case e.Method != "sendMessage":
			case e.ErrorCode == 429:
				lastFail = e.At
			case e.OK():
				ok++
				if !lastFail.IsZero() && e.At.Sub(lastFail) < time.Second {
					t.Fatalf("chat %d: delivered %s after its 429", c, e.At.Sub(lastFail))
				}
			}
		}
		if ok != 1 {
			t.Fatalf("chat %d: %d replies delivered, want exactly 1", c, ok)
		}
	}
}

func TestOutboxRetries5xxAndNetworkErrors(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	emu.FailNext("sendMessage", 2, 502, 0)
	emu.FailNext("sendMessage", 1, 0, 0) // connection closed
	if _, err := out.Send(context.Background(), bot.Message{ChatID: 7, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	var ok, failed int
	for _, e := range emu.EventsFor(7) {
		if e.OK() {
			ok++
		} else {
			failed++
		}
	}
	if ok != 1 || failed != 3 {
		t.Fatalf("ok=%d failed=%d, want 1 and 3", ok, failed)
	}
}

func TestOutboxGivesUpWithAnErrorNotSilently(t *testing.T) {
	emu := newEmulator(t)
	cfg := fastPace
	cfg.MaxAttempts = 3
	out := newOutbox(t, emu, cfg)
	emu.FailNext("sendMessage", 10, 500, 0)
	_, err := out.Send(context.Background(), bot.Message{ChatID: 7, Text: "hi"})
	if err == nil {
		t.Fatal("Send succeeded although Telegram kept failing")
	}
	if strings.Contains(err.Error(), testToken) {
		t.Fatalf("error leaks the token: %v", err)
	}
}

func TestOutboxNetworkErrorHidesToken(t *testing.T) {
	emu := newEmulator(t)
	cfg := fastPace
	cfg.MaxAttempts = 1
	out := newOutbox(t, emu, cfg)
	emu.Close() // connection refused from now on
	_, err := out.Send(context.Background(), bot.Message{ChatID: 7, Text: "hi"})
	if err == nil {
		t.Fatal("Send to a closed server succeeded")
	}
	if strings.Contains(err.Error(), strings.Split(testToken, ":")[1]) {
		t.Fatalf("error leaks the token: %v", err)
	}
}

func TestOutboxSplitsLongText(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	var b strings.Builder
	for i := 0; b.Len() < 10000; i++ {
		b.WriteString(strings.Repeat("word & <b> ", 20))
		b.WriteString("\n\n")
	}
	text := tghtml.Escape(b.String())
	if _, err := out.Send(context.Background(), bot.Message{ChatID: 9, Text: text, Keyboard: [][]bot.Button{{{Text: "ok", Data: "x"}}}}); err != nil {
		t.Fatal(err)
	}
	msgs := emu.Messages(9)
	if len(msgs) < 3 {
		t.Fatalf("%d messages, want at least 3 for %d characters", len(msgs), len(b.String()))
	}
	var joined strings.Builder
	for i, m := range msgs {
		if n := len([]rune(m.Text)); n > 4096 {
			t.Fatalf("part %d has %d characters", i, n)
		}
		if (m.Keyboard != nil) != (i == len(msgs)-1) {
			t.Fatalf("part %d keyboard = %v: only the last part carries it", i, m.Keyboard)
		}
		joined.WriteString(m.Text + " ")
	}
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	if got, want := squash(joined.String()), squash(b.String()); got != want {
		t.Fatalf("the parts do not add up to the original text:\n got %d %q\nwant %d %q", len(got), got[len(got)-80:], len(want), want[len(want)-80:])
	}
}

func TestOutboxFallsBackToPlainTextWhenHTMLIsRefused(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	// Not valid Telegram HTML: the emulator refuses it like Telegram does.
	if _, err := out.Send(context.Background(), bot.Message{ChatID: 5, Text: "<b>bold <i>crossed</b></i>"}); err != nil {
		t.Fatal(err)
	}
	evs := emu.EventsFor(5)
	if len(evs) != 2 || evs[0].ErrorCode != 400 || !evs[1].OK() || evs[1].ParseMode != "" {
		t.Fatalf("events = %v, want a 400 then a plain-text success", evs)
	}
	if !strings.Contains(evs[1].Text, "crossed") {
		t.Fatalf("plain text %q lost the content", evs[1].Text)
	}
}

func TestOutboxPacesOneChat(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, bot.OutboxConfig{Pace: bot.DefaultPace()})
	for i := 0; i < 5; i++ {
		if _, err := out.Send(context.Background(), bot.Message{ChatID: 3, Text: "m"}); err != nil {
			t.Fatal(err)
		}
	}
	evs := emu.EventsFor(3)
	// Burst of 3, then one a second.
	if gap := evs[4].At.Sub(evs[2].At); gap < 1900*time.Millisecond {
		t.Fatalf("messages 3→5 took %s, want ≥ 2s at 1 message/s", gap)
	}
}

func TestOutboxUploadsFiles(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	data := []byte(`{"user":{"id":1}}`)
	if _, err := out.SendFile(context.Background(), bot.FileMessage{ChatID: 4, Kind: bot.FileDocument, Name: "export.json", Data: data, Caption: "<b>your data</b>"}); err != nil {
		t.Fatal(err)
	}
	e, err := emu.WaitFor(waitCtx(t), func(e bottest.Event) bool { return e.Method == "sendDocument" && e.OK() })
	if err != nil {
		t.Fatal(err)
	}
	if e.FileName != "export.json" || string(e.FileData) != string(data) || e.Text != "your data" {
		t.Fatalf("upload = %q %q caption %q", e.FileName, e.FileData, e.Text)
	}
}

func TestEditIgnoresNotModified(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	id, err := out.Send(context.Background(), bot.Message{ChatID: 8, Text: "same"})
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Edit(context.Background(), 8, id, "same", nil); err != nil {
		t.Fatalf("editing to the same text: %v", err)
	}
	if err := out.Edit(context.Background(), 8, id, "new <b>text</b>", nil); err != nil {
		t.Fatal(err)
	}
	if m := emu.Messages(8); len(m) != 1 || m[0].Text != "new text" {
		t.Fatalf("messages = %+v", m)
	}
}

func TestOutboxRetriesUploadsAfterFloodWait(t *testing.T) {
	emu := newEmulator(t)
	out := newOutbox(t, emu, fastPace)
	emu.FailNext("sendDocument", 1, 429, 1)
	if _, err := out.SendFile(context.Background(), bot.FileMessage{ChatID: 4, Kind: bot.FileDocument, Name: "a.json", Data: []byte("{}")}); err != nil {
		t.Fatalf("upload after a 429: %v", err)
	}
	var attempts []bottest.Event
	for _, e := range emu.EventsFor(4) {
		if e.Method == "sendDocument" {
			attempts = append(attempts, e)
		}
	}
	if len(attempts) != 2 || attempts[0].ErrorCode != 429 || !attempts[1].OK() || attempts[1].At.Sub(attempts[0].At) < time.Second {
		t.Fatalf("attempts = %v, want a 429 then a success at least 1s later", attempts)
	}
}
