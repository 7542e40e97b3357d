package main

import (
	"strings"
	"testing"
)

// A command nobody knows is echoed back exactly as typed, never as markup:
// Telegram marks "/x" as the command and the router takes the whole first
// word, so "&lt;b&gt;" must reach the user as those characters, not as "<b>".
func TestUnknownCommandIsEscaped(t *testing.T) {
	a := startApp(t, nil)
	a.say(alice, "/start")
	const typed = "/x&lt;/code&gt;&lt;b&gt;FAKE&lt;/b&gt;"
	a.say(alice, typed)
	msgs := a.emu.Messages(alice.ID)
	last := msgs[len(msgs)-1]
	shown := strings.ToLower(last.Text) // commands are matched in lower case
	if !strings.Contains(shown, strings.ToLower(typed)) || strings.Contains(shown, "<b>") {
		t.Fatalf("unknown command reply: text %q, sent as %q", last.Text, last.Raw)
	}
}
