package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

const testToken = "123456789:TEST-emulator-token-abcdefghijkl"

var (
	alice   = bottest.User{ID: 1001, Username: "alice", FirstName: "Alice", LanguageCode: "en"}
	boris   = bottest.User{ID: 1002, Username: "boris", FirstName: "Борис", LanguageCode: "ru"}
	support = bottest.User{ID: 2002, Username: "sam", FirstName: "Sam", LanguageCode: "en"}
	admin   = bottest.User{ID: 3003, Username: "ada", FirstName: "Ada", LanguageCode: "en"}
)

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// app is the real Main against the Bot API emulator.
type app struct {
	t    *testing.T
	emu  *bottest.Server
	m    *Main
	log  *syncBuffer
	stop func() // stops the bot and closes its files; idempotent
}

func startApp(t *testing.T, tweak func(*Config)) *app {
	t.Helper()
	return startAppAt(t, tweak, nil)
}

// startAppAt is startApp with the bot and the emulator on clock (nil: the
// wall clock).
func startAppAt(t *testing.T, tweak func(*Config), clock valex.Clock) *app {
	t.Helper()
	opts := bottest.Options{Token: testToken}
	if clock != nil {
		opts.Clock = clock.Now
	}
	emu, err := bottest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return startAppOn(t, emu, t.TempDir(), tweak, clock)
}

// startAppOn starts the real Main on emu with its data in dataDir: a second
// call on the same emulator and directory is a restart.
func startAppOn(t *testing.T, emu *bottest.Server, dataDir string, tweak func(*Config), clock valex.Clock) *app {
	t.Helper()
	cfg := Defaults()
	cfg.DataDir = dataDir
	cfg.Telegram.Token = emu.Token()
	cfg.Telegram.APIURL = emu.URL()
	cfg.Telegram.PollTimeout = Duration{time.Second}
	cfg.Telegram.Pace = Pace{GlobalPerSecond: 1000, PrivatePerSecond: 1000, GroupPerMinute: 60000, Burst: 100}
	cfg.Telegram.UserPerMin = 10000 // the role matrix sends many commands as one user
	cfg.Admins = []int64{admin.ID}
	cfg.Support = []int64{support.ID}
	cfg.Log = Log{Level: "debug", Format: "json"}
	cfg.HTTPAddr = "127.0.0.1:0" // a free port: tests run side by side
	if tweak != nil {
		tweak(&cfg)
	}
	a := &app{t: t, emu: emu, log: &syncBuffer{}}
	a.m = NewMain(cfg, a.log)
	if clock != nil {
		a.m.Clock = clock
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.m.Open(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.m.Run(ctx) }()
	var once sync.Once
	a.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			a.m.Close()
		})
	}
	t.Cleanup(func() {
		a.stop()
		// No secret and no message text may reach the log.
		logs := a.log.String()
		for _, secret := range []string{strings.Split(testToken, ":")[1], "Berlin", "alice@example.com"} {
			if strings.Contains(logs, secret) {
				t.Errorf("log contains %q", secret)
			}
		}
	})
	return a
}

// say sends text as u and returns the bot's next message to u's chat.
func (a *app) say(u bottest.User, text string) bottest.Event {
	a.t.Helper()
	seq := a.lastSeq()
	a.emu.SendText(bottest.PrivateChat(u), u, text)
	e := a.next(u.ID, seq, "sendMessage", "editMessageText")
	a.idle()
	return e
}

// idle waits until every update sent so far has been handled completely.
func (a *app) idle() {
	a.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if a.emu.Pending() == 0 && a.m.Bot.Busy() == 0 && a.m.AI.Busy() == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.t.Fatal("the bot did not become idle")
}

// press presses the button whose label contains label on the latest keyboard in u's chat.
func (a *app) press(u bottest.User, label string) bottest.Event {
	a.t.Helper()
	msgID, data := buttonOf(a.t, a.emu, u, label)
	seq := a.lastSeq()
	a.emu.PressButton(bottest.PrivateChat(u), u, msgID, data)
	e := a.next(u.ID, seq, "sendMessage", "editMessageText", "answerCallbackQuery")
	a.idle()
	return e
}

// buttonOf finds the latest button in u's chat whose label contains label.
func buttonOf(t *testing.T, emu *bottest.Server, u bottest.User, label string) (int, string) {
	t.Helper()
	msgs := emu.Messages(u.ID)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, label) && b.Data != "" {
					return msgs[i].ID, b.Data
				}
			}
		}
	}
	t.Fatalf("no button %q in chat %d: %+v", label, u.ID, msgs)
	return 0, ""
}

func (a *app) lastSeq() int {
	evs := a.emu.Events()
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// next waits for the first successful event of one of methods in chat after seq.
func (a *app) next(chatID int64, seq int, methods ...string) bottest.Event {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := a.emu.WaitFor(ctx, func(e bottest.Event) bool {
		if e.Seq <= seq || !e.OK() || (e.ChatID != chatID && e.Method != "answerCallbackQuery") {
			return false
		}
		for _, m := range methods {
			if e.Method == m {
				return true
			}
		}
		return false
	})
	if err != nil {
		a.t.Fatalf("waiting for the bot in chat %d: %v", chatID, err)
	}
	return e
}

func contains(t *testing.T, e bottest.Event, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(e.Text, w) && !strings.Contains(e.CallbackText, w) {
			t.Fatalf("bot said %q, want it to contain %q", e.Text+e.CallbackText, w)
		}
	}
}

func TestRegistrationAndHelp(t *testing.T) {
	a := startApp(t, nil)
	contains(t, a.say(alice, "/start"), "Welcome to Valex", "alice")
	u, err := a.m.DB.User(alice.ID)
	if err != nil {
		t.Fatalf("user not registered: %v", err)
	}
	if u.Nickname != "alice" || u.Language != "en" || u.CreatedAt.IsZero() {
		t.Fatalf("stored user = %+v", u)
	}
	contains(t, a.say(alice, "/start"), "Welcome back")

	help := a.say(alice, "/help")
	contains(t, help, "/profile", "/language")
	if strings.Contains(help.Text, "/stats") || strings.Contains(help.Text, "/whoami") {
		t.Fatalf("user help lists staff commands: %q", help.Text)
	}
	a.say(admin, "/start")
	contains(t, a.say(admin, "/help"), "/stats", "/whoami")

	// The command menu is published in both languages.
	for _, lang := range []string{"", "en", "ru"} {
		if len(a.emu.Commands(lang)) == 0 {
			t.Fatalf("no command menu for language %q", lang)
		}
	}
}

func TestRussianUserGetsRussian(t *testing.T) {
	a := startApp(t, nil)
	contains(t, a.say(boris, "/start"), "Добро пожаловать")
	contains(t, a.say(boris, "/help"), "Команды")
}

func TestLanguageSwitching(t *testing.T) {
	a := startApp(t, nil)
	a.say(alice, "/start")
	a.say(alice, "/language")
	contains(t, a.press(alice, "Русский"), "по-русски")
	contains(t, a.say(alice, "/help"), "Команды")
	contains(t, a.say(alice, "/language en"), "English")
	contains(t, a.say(alice, "/language xx"), "Available")
}

func TestProfileEditing(t *testing.T) {
	a := startApp(t, nil)
	a.say(alice, "/start")
	contains(t, a.say(alice, "/profile"), "Your profile", "not set")

	contains(t, a.press(alice, "City"), "city")
	saved := a.say(alice, "Berlin")
	contains(t, saved, "Saved")
	contains(t, a.next(alice.ID, saved.Seq, "sendMessage"), "Berlin")

	a.press(alice, "Email")
	contains(t, a.say(alice, "not an email"), "doesn't look like an email")
	saved = a.say(alice, "alice@example.com")
	a.next(alice.ID, saved.Seq, "sendMessage") // the profile again
	u, _ := a.m.DB.User(alice.ID)
	if u.City != "Berlin" || u.Email != "alice@example.com" {
		t.Fatalf("stored profile = %+v", u)
	}

	a.press(alice, "About you")
	contains(t, a.say(alice, strings.Repeat("x", 501)), "at most 500")
	a.say(alice, "/cancel")

	// Phone: only through the contact button, and only one's own.
	contains(t, a.press(alice, "Phone"), "share your phone")
	if kb := a.emu.ReplyKeyboard(alice.ID); len(kb) != 1 || !kb[0][0].RequestContact {
		t.Fatalf("no contact-sharing button: %+v", kb)
	}
	seq := a.lastSeq()
	a.emu.SendContact(bottest.PrivateChat(alice), alice, "+15550001", 999)
	contains(t, a.next(alice.ID, seq, "sendMessage"), "your own number")
	seq = a.lastSeq()
	a.emu.SendContact(bottest.PrivateChat(alice), alice, "+15550001", alice.ID)
	contains(t, a.next(alice.ID, seq, "sendMessage"), "Saved")
	a.idle()
	if u, _ := a.m.DB.User(alice.ID); u.Phone != "+15550001" {
		t.Fatalf("phone = %q", u.Phone)
	}
	// Clearing a field.
	a.press(alice, "City")
	a.press(alice, "Clear")
	if u, _ := a.m.DB.User(alice.ID); u.City != "" {
		t.Fatalf("city after clear = %q", u.City)
	}
}

// TestRoleMatrix runs every listed command as every role: commands above a
// role are refused with no data in the refusal.
func TestRoleMatrix(t *testing.T) {
	a := startApp(t, nil)
	people := []struct {
		u    bottest.User
		role string
	}{{alice, "user"}, {support, "support"}, {admin, "admin"}}
	for _, p := range people {
		a.say(p.u, "/start")
	}
	all := a.m.Router.Commands(valex.RoleAdmin) // admins see every listed command
	if len(all) < 7 {
		t.Fatalf("only %d commands registered", len(all))
	}
	for _, c := range all {
		for _, p := range people {
			t.Run(c.Name+"/"+p.role, func(t *testing.T) {
				e := a.say(p.u, "/"+c.Name)
				refused := strings.Contains(e.Text, "is for support staff") || strings.Contains(e.Text, "is for administrators")
				allowed := a.m.Router.Commands(roleOf(p.role))
				want := false
				for _, x := range allowed {
					want = want || x.Name == c.Name
				}
				if refused == want {
					t.Fatalf("/%s as %s: refused=%v, bot said %q", c.Name, p.role, refused, e.Text)
				}
				if refused && strings.ContainsAny(e.Text, "0123456789") {
					t.Fatalf("refusal carries data: %q", e.Text)
				}
			})
			a.say(p.u, "/cancel") // leave no dialog state behind
		}
	}
	// Every button route too: a genuine (signed) button of a higher role's
	// screen, pressed by a lower role, is refused before its handler runs.
	signer := bot.NewSigner([]byte(a.m.Config.Telegram.Token))
	anchor := a.lastTo(alice.ID).MessageID
	for _, cb := range a.m.Router.Callbacks() {
		for _, p := range people {
			t.Run("button "+cb.Name+"/"+p.role, func(t *testing.T) {
				anchor := anchor
				if p.u.ID != alice.ID {
					anchor = a.lastTo(p.u.ID).MessageID
				}
				seq := a.lastSeq()
				a.emu.PressForged(bottest.PrivateChat(p.u), p.u, anchor, signer.Data(cb.Name, "show", "1"))
				e := a.next(p.u.ID, seq, "answerCallbackQuery")
				a.idle()
				refused := strings.Contains(e.CallbackText, "is for support staff") || strings.Contains(e.CallbackText, "is for administrators")
				if want := !roleOf(p.role).Allows(cb.Role); refused != want {
					t.Fatalf("button %s as %s: refused=%v, want %v (%q)", cb.Name, p.role, refused, want, e.CallbackText)
				}
			})
		}
	}
}

func roleOf(name string) valex.Role {
	switch name {
	case "support":
		return valex.RoleSupport
	case "admin":
		return valex.RoleAdmin
	}
	return valex.RoleUser
}

func TestUnknownAndUnsupportedInput(t *testing.T) {
	a := startApp(t, nil)
	a.say(alice, "/start")
	contains(t, a.say(alice, "/frobnicate"), "/frobnicate")
	seq := a.lastSeq()
	a.emu.SendRaw([]byte(fmt.Sprintf(`{"message":{"message_id":77,"date":1,"chat":{"id":%d,"type":"private"},"from":{"id":%d,"first_name":"A"},"sticker":{"file_id":"s","file_unique_id":"s","width":1,"height":1,"is_animated":false}}}`, alice.ID, alice.ID)))
	contains(t, a.next(alice.ID, seq, "sendMessage"), "can't handle")
	// Tampered button data.
	seq = a.lastSeq()
	a.emu.PressForged(bottest.PrivateChat(alice), alice, 1, "prof:edit:password.AAAAAAAAAAA")
	contains(t, a.next(alice.ID, seq, "answerCallbackQuery"), "no longer valid")
	contains(t, a.say(alice, "/help"), "/profile") // still alive
}

func TestFloodLimitDuringConversation(t *testing.T) {
	a := startApp(t, nil)
	a.emu.FailNext("sendMessage", 2, 429, 1)
	start := time.Now()
	contains(t, a.say(alice, "/start"), "Welcome")
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("reply came %s after two 429s with retry_after=1", d)
	}
}
