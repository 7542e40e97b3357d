package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// Demo accounts: /as switches between them.
var demoPeople = map[string]bottest.User{
	"user":    {ID: 1001, Username: "demo_user", FirstName: "Demo", LanguageCode: "en"},
	"support": {ID: 2002, Username: "demo_support", FirstName: "Support", LanguageCode: "en"},
	"admin":   {ID: 3003, Username: "demo_admin", FirstName: "Admin", LanguageCode: "en"},
}

// demoToken looks like a real token so the configuration checks pass.
const demoToken = "123456789:DEMO-emulator-token-not-a-secret"

// runDemo starts the Bot API emulator on loopback and the whole bot against
// it, then turns terminal lines into messages from a demo user. Piped input
// is handled line by line, each waiting for its replies, and ends the demo.
func runDemo(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dataDir := fs.String("data", "", "data directory (default: a temporary one, removed at exit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dataDir == "" {
		tmp, err := os.MkdirTemp("", "valex-demo-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		*dataDir = tmp
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	// A demo restarted on the same data continues: the emulator's update ids
	// start above the ones the inbox has stored (lower ones it would ignore).
	first := 1
	if _, err := os.Stat(filepath.Join(*dataDir, dbFile)); err == nil {
		cfg := Defaults()
		cfg.DataDir = *dataDir
		if keys, db, err := openStores(cfg, zerolog.Nop(), time.Now); err == nil {
			if hw, err := db.InboxHighWater(); err == nil {
				first = hw + 1
			}
			db.Close()
			keys.Close()
		}
	}
	emu, err := bottest.New(bottest.Options{Token: demoToken, BotUsername: "valex_demo_bot", FirstUpdateID: first})
	if err != nil {
		return fmt.Errorf("start Bot API emulator: %w", err)
	}
	defer emu.Close()
	aiEmu := aitest.New()
	defer aiEmu.Close()
	cfg := Defaults()
	cfg.AI = demoAIConfig(aiEmu.URL())
	cfg.DataDir = *dataDir
	cfg.Telegram.Token = emu.Token()
	cfg.Telegram.APIURL = emu.URL()
	cfg.Telegram.PollTimeout = Duration{time.Second}
	cfg.Telegram.Shutdown = Duration{3 * time.Second}
	cfg.Admins = []int64{demoPeople["admin"].ID}
	cfg.Support = []int64{demoPeople["support"].ID}
	cfg.HTTPAddr = "" // the demo serves no metrics: no port to collide with
	cfg.Log.Level = "warn"
	if lvl := getenv("VALEX_LOG_LEVEL"); lvl != "" {
		cfg.Log.Level = lvl
	}

	logFile, err := os.Create(cfg.DataDir + "/demo.log")
	if err != nil {
		return err
	}
	defer logFile.Close()
	m := NewMain(cfg, logFile)
	if err := m.Open(ctx); err != nil {
		m.Close()
		return err
	}
	defer m.Close()

	runCtx, stopBot := context.WithCancel(ctx)
	botDone := make(chan error, 1)
	go func() { botDone <- m.Run(runCtx) }()

	t := &terminal{emu: emu, out: stdout, who: "user", busy: m.Bot.Busy, aiBusy: m.AI.Busy, buttons: map[int64][]pressable{}}
	events, unsubscribe := emu.Subscribe()
	defer unsubscribe()
	go t.print(events)

	fmt.Fprintf(stdout, "Valex demo — you are chatting with the bot as %q. Try /start, /help, /profile, /language.\n", t.who)
	fmt.Fprintln(stdout, "Type a number to press a button, /as support|admin|user to switch, Ctrl-D to quit. Log:", cfg.DataDir+"/demo.log")
	t.loop(ctx, stdin)

	stopBot()
	return <-botDone
}

// terminal turns typed lines into updates and bot calls into printed text.
type terminal struct {
	emu *bottest.Server
	out io.Writer

	busy   func() int // chats the bot is still working on
	aiBusy func() int // AI requests still running

	mu      sync.Mutex
	who     string
	buttons map[int64][]pressable // per chat: the buttons of its latest keyboard, numbered from 1
	printed int                   // the last event sequence number printed
}

type pressable struct {
	messageID int
	data      string
	contact   bool // a reply-keyboard button that shares the phone number
}

func (t *terminal) person() bottest.User {
	t.mu.Lock()
	defer t.mu.Unlock()
	return demoPeople[t.who]
}

func (t *terminal) loop(ctx context.Context, stdin io.Reader) {
	// Lines are read on their own goroutine, so Ctrl-C (ctx) ends the demo at
	// once instead of waiting for the next Enter.
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var raw string
		var ok bool
		select {
		case <-ctx.Done():
			return
		case raw, ok = <-lines:
		}
		if !ok {
			return
		}
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if who, ok := strings.CutPrefix(line, "/as "); ok {
			who = strings.TrimSpace(who)
			if _, known := demoPeople[who]; !known {
				fmt.Fprintln(t.out, "  (demo) /as user | support | admin")
				continue
			}
			t.mu.Lock()
			t.who = who
			t.mu.Unlock()
			fmt.Fprintf(t.out, "  (demo) you are now %s (id %d)\n", who, demoPeople[who].ID)
			continue
		}
		u := t.person()
		chat := bottest.PrivateChat(u)
		if n, err := strconv.Atoi(line); err == nil {
			t.mu.Lock()
			var b *pressable
			if btns := t.buttons[u.ID]; n >= 1 && n <= len(btns) {
				b = &btns[n-1]
			}
			t.mu.Unlock()
			if b == nil {
				fmt.Fprintln(t.out, "  (demo) no button with that number")
				continue
			}
			if b.contact {
				t.emu.SendContact(chat, u, "+1555"+strconv.FormatInt(u.ID, 10), u.ID)
			} else {
				t.emu.PressButton(chat, u, b.messageID, b.data)
			}
		} else {
			t.emu.SendText(chat, u, line)
		}
		t.settle(ctx)
	}
}

// settle waits until the bot has handled everything typed so far and every
// call it made has been printed, so piped input reads like a conversation.
func (t *terminal) settle(ctx context.Context) {
	deadline := time.Now().Add(30 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if t.emu.Pending() > 0 || t.busy() > 0 || t.aiBusy() > 0 {
			continue
		}
		evs := t.emu.Events()
		t.mu.Lock()
		done := len(evs) == 0 || t.printed >= evs[len(evs)-1].Seq
		t.mu.Unlock()
		if done {
			return
		}
	}
}

func (t *terminal) print(events <-chan bottest.Event) {
	for e := range events {
		t.mu.Lock()
		t.printed = e.Seq
		t.mu.Unlock()
		if !e.OK() {
			continue // failed calls (flood limits, refused HTML) are retried by the outbox
		}
		var lines []string
		who := "bot"
		if e.ChatID != 0 && e.ChatID != t.person().ID {
			who = "bot → " + demoName(e.ChatID) // a message to someone else (staff alerts, relayed replies)
		}
		switch e.Method {
		case "sendMessage":
			lines = append(lines, who+": "+indent(e.Text))
		case "editMessageText":
			lines = append(lines, fmt.Sprintf("%s (edited #%d): %s", who, e.MessageID, indent(e.Text)))
		case "sendDocument", "sendPhoto", "sendVoice", "sendAudio":
			lines = append(lines, fmt.Sprintf("%s sends %s %q (%d bytes)", who, strings.TrimPrefix(e.Method, "send"), e.FileName, len(e.FileData)))
			if e.Text != "" {
				lines = append(lines, "     "+indent(e.Text))
			}
		case "answerCallbackQuery":
			if e.CallbackText != "" {
				lines = append(lines, "bot (popup): "+e.CallbackText)
			}
		case "deleteMessage":
			lines = append(lines, fmt.Sprintf("bot deleted message #%d", e.MessageID))
		case "sendInvoice":
			lines = append(lines, "bot sends an invoice")
		default:
			continue // getUpdates, chat actions, setMyCommands ...
		}
		t.mu.Lock()
		if len(e.Keyboard) > 0 {
			var btns []pressable
			for _, row := range e.Keyboard {
				var labels []string
				for _, b := range row {
					btns = append(btns, pressable{messageID: e.MessageID, data: b.Data, contact: b.RequestContact})
					label := b.Text
					if b.RequestContact {
						label += " (shares your phone)"
					}
					labels = append(labels, fmt.Sprintf("[%d] %s", len(btns), label))
				}
				lines = append(lines, "     "+strings.Join(labels, "  "))
			}
			t.buttons[e.ChatID] = btns
		}
		t.mu.Unlock()
		if len(lines) > 0 {
			fmt.Fprintln(t.out, strings.Join(lines, "\n"))
		}
	}
}

// demoName names a demo account by chat id.
func demoName(chatID int64) string {
	for name, u := range demoPeople {
		if u.ID == chatID {
			return name
		}
	}
	return strconv.FormatInt(chatID, 10)
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n     ") }
