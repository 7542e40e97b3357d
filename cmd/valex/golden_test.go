package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// update rewrites the golden files: go test ./cmd/valex -run TestGoldenScreens -update
var update = flag.Bool("update", false, "rewrite the golden files of every screen")

// goldenAt is the fixed moment every golden screen is rendered at.
var goldenAt = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// Every screen a user, a support agent and an admin see, in English and in
// Russian, as the bot sends it (text and buttons), against the files in
// testdata/golden/<lang>. A changed text shows as a failing diff; review it
// and refresh the files with -update.
func TestGoldenScreens(t *testing.T) {
	for _, lang := range []string{"en", "ru"} {
		t.Run(lang, func(t *testing.T) { goldenScreens(t, lang) })
	}
}

func goldenScreens(t *testing.T, lang string) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startAppAt(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) }, atClock{goldenAt})
	user := bottest.User{ID: 5101, FirstName: "Lena", LanguageCode: lang}
	staff := bottest.User{ID: support.ID, FirstName: "Sam", LanguageCode: lang}
	boss := bottest.User{ID: admin.ID, FirstName: "Ada", LanguageCode: lang}
	group := bottest.Chat{ID: -5100, Type: "group", Title: "friends"}
	botName := a.m.Outbox.Client().Self().Username

	dir := filepath.Join("testdata", "golden", lang)
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	// screen runs act and compares what the bot sent chat meanwhile.
	screen := func(name string, chat int64, act func()) {
		t.Helper()
		n++
		seq := a.lastSeq()
		act()
		a.idle()
		var b strings.Builder
		for _, e := range a.emu.Events() {
			if e.Seq <= seq || !e.OK() || e.ChatID != chat || (e.Method != "sendMessage" && e.Method != "editMessageText") {
				continue
			}
			fmt.Fprintf(&b, "--- %s\n%s\n", e.Method, e.Text)
			for _, row := range e.Keyboard {
				var labels []string
				for _, btn := range row {
					labels = append(labels, "["+btn.Text+"]")
				}
				fmt.Fprintf(&b, "%s\n", strings.Join(labels, " "))
			}
		}
		got := b.String()
		if got == "" {
			t.Errorf("screen %s: the bot sent nothing", name)
		}
		path := filepath.Join(dir, fmt.Sprintf("%02d-%s.txt", n, name))
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("screen %s: %v (run with -update to create it)", name, err)
			return
		}
		if string(want) != got {
			t.Errorf("screen %s differs from %s:\n--- want\n%s\n--- got\n%s", name, path, want, got)
		}
	}
	say := func(u bottest.User, text string) func() {
		return func() { a.emu.SendText(bottest.PrivateChat(u), u, text) }
	}
	press := func(u bottest.User, label string) func() {
		return func() { a.press(u, label) }
	}

	screen("start", user.ID, say(user, "/start"))
	screen("help", user.ID, say(user, "/help"))
	screen("profile", user.ID, say(user, "/profile"))
	screen("profile-ask-city", user.ID, press(user, map[string]string{"en": "City", "ru": "Город"}[lang]))
	screen("prompt-ended-by-command", user.ID, say(user, "/usage"))
	screen("privacy", user.ID, say(user, "/privacy"))
	screen("consent", user.ID, say(user, "/consent"))
	screen("support-ask", user.ID, say(user, "/support"))
	screen("support-opened", user.ID, say(user, "my invoice shows the wrong name"))
	screen("feedback-thanks", user.ID, say(user, "/feedback the dark theme is lovely"))
	screen("forget-confirm", user.ID, say(user, "/forget"))
	screen("cancel-nothing", user.ID, say(user, "/cancel"))
	screen("ai-consent-ask", user.ID, say(user, "hello"))
	screen("model", user.ID, say(user, "/model"))
	screen("mode", user.ID, say(user, "/mode"))
	screen("history", user.ID, say(user, "/history"))
	screen("plans", user.ID, say(user, "/plans"))
	screen("subscription", user.ID, say(user, "/subscription"))
	screen("unknown-command", user.ID, say(user, "/frobnicate"))
	screen("group-private-only", group.ID, func() { a.emu.SendText(group, user, "/profile@"+botName) })

	a.say(staff, "/start")
	screen("staff-requests", staff.ID, say(staff, "/requests"))
	screen("staff-request", staff.ID, say(staff, "/request 1"))
	screen("staff-confirm-complete", staff.ID, press(staff, map[string]string{"en": "Complete", "ru": "Выполнено"}[lang]))

	a.say(boss, "/start")
	screen("admin-breach-ask", boss.ID, say(boss, "/breach"))
	screen("admin-breach-cancel", boss.ID, say(boss, "/cancel"))
	screen("admin-policy-preview", boss.ID, say(boss, "/policy_update 2"))
	screen("admin-hold-unknown", boss.ID, say(boss, "/hold 424242 court order"))
}
