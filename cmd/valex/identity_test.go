package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// logUser has an id that cannot turn up in a log line by chance (as part
// of a timestamp or a duration), and markers in every name.
var logUser = bottest.User{ID: 7391846205, Username: "zqlog-username", FirstName: "zqlog-first", LanguageCode: "en"}

// getenvFor runs a subcommand against a's data directory and master key.
func getenvFor(a *app) func(string) string {
	env := map[string]string{"VALEX_DATA_DIR": a.m.Config.DataDir, "VALEX_MASTER_KEY": a.m.Config.MasterKey}
	return func(k string) string { return env[k] }
}

// subcommand runs `valex args...` and returns what it printed.
func subcommand(t *testing.T, getenv func(string) string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &out, io.Discard, getenv)
	return out.String(), err
}

// logLines parses the JSON log lines with message msg.
func logLines(t *testing.T, logs, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if line["message"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// At debug level, after a user filled every profile field (the phone
// through the contact button), wrote to support and chatted with the AI,
// and the outbox had to retry: no log line holds any of it, nor the
// Telegram id. Lines name the user by the pseudonym whois-log prints.
func TestLogsCarryNoIdentities(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) })
	if a.m.Config.Log.Level != "debug" {
		t.Fatalf("log level %q, want debug", a.m.Config.Log.Level)
	}
	u := logUser
	phone := "+4930555512"
	marks := []string{u.Username, u.FirstName, "zqlog-nickname", "zqlog-city", "zqlog-description",
		"zqlog-email", phone, strings.TrimPrefix(phone, "+"), "zqlog-support", "zqlog-chat", "zqlog-answer"}

	a.say(u, "/start")
	a.say(u, "/profile")
	for _, f := range []struct{ button, value string }{
		{"Nickname", "zqlog-nickname"}, {"City", "zqlog-city"}, {"About you", "zqlog-description"},
		{"Email", "zqlog-email@example.org"},
	} {
		a.press(u, f.button)
		saved := a.say(u, f.value)
		contains(t, saved, "Saved")
		a.next(u.ID, saved.Seq, "sendMessage") // the profile again, with its buttons
	}
	a.press(u, "Phone")
	seq := a.lastSeq()
	a.emu.SendContact(bottest.PrivateChat(u), u, phone, u.ID)
	contains(t, a.next(u.ID, seq, "sendMessage"), "Saved")
	a.idle()
	got, err := a.m.DB.User(u.ID)
	if err != nil || got.City != "zqlog-city" || got.Phone != phone || got.Description != "zqlog-description" {
		t.Fatalf("profile not stored: %+v, %v", got, err)
	}

	a.say(u, "/support zqlog-support my card was charged twice")
	contains(t, a.say(u, "hello zqlog-chat"), "consent")
	aisv.Script("gpt-4o-mini", aitest.Step{Text: "sure zqlog-answer"})
	a.press(u, "I agree")
	a.waitText(u.ID, 0, "zqlog-answer")
	a.idle()
	a.emu.FailNext("sendMessage", 1, 500, 0) // a retry is logged with its chat
	contains(t, a.say(u, "/help"), "/profile")
	a.stop()

	logs := a.log.String()
	for _, m := range marks {
		if strings.Contains(logs, m) {
			t.Errorf("the log holds %q", m)
		}
	}
	if id := strconv.FormatInt(u.ID, 10); strings.Contains(logs, id) {
		t.Errorf("the log holds the Telegram id %s", id)
	}
	if len(logLines(t, logs, "telegram unavailable, retrying")) == 0 {
		t.Error("no retry was logged: the failure path went untested")
	}

	// Every handled update of this user is logged under the pseudonym
	// that whois-log prints, in its "user" field and as its private chat.
	out, err := subcommand(t, getenvFor(a), "whois-log", strconv.FormatInt(u.ID, 10))
	if err != nil {
		t.Fatal(err)
	}
	pseudo := strings.TrimSpace(out)
	if len(pseudo) != 16 {
		t.Fatalf("whois-log printed %q", out)
	}
	handled := logLines(t, logs, "update handled")
	if len(handled) < 10 {
		t.Fatalf("%d updates logged at debug level", len(handled))
	}
	for _, l := range handled {
		if l["user"] != pseudo || l["chat"] != pseudo {
			t.Fatalf("update logged as user %v, chat %v; whois-log says %s", l["user"], l["chat"], pseudo)
		}
	}
	if other, _ := subcommand(t, getenvFor(a), "whois-log", "1001"); strings.TrimSpace(other) == pseudo {
		t.Fatal("two users share a pseudonym")
	}
}

// whois-log answers the same with the bot running (through its control
// socket) as stopped, and it rejects what is not a user id.
func TestWhoisLogRefuses(t *testing.T) {
	a := startApp(t, nil)
	running, err := subcommand(t, getenvFor(a), "whois-log", "1001")
	if err != nil || strings.TrimSpace(running) == "" {
		t.Fatalf("whois-log with the bot running: %q, %v", running, err)
	}
	a.stop()
	if stopped, err := subcommand(t, getenvFor(a), "whois-log", "1001"); err != nil || stopped != running {
		t.Fatalf("whois-log stopped = %q, running = %q (%v)", stopped, running, err)
	}
	for _, arg := range []string{"abc", "-5", "0"} {
		if _, err := subcommand(t, getenvFor(a), "whois-log", arg); err == nil {
			t.Errorf("whois-log %s: no error", arg)
		}
	}
}

// export-user prints the /mydata document for the operator: the data with
// purposes, sources, retention and recipients of each category; nothing
// for an unknown id; a clear refusal while the bot runs.
func TestExportUser(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) })
	a.say(alice, "/start")
	a.say(alice, "/support zqexp-support")
	contains(t, a.say(alice, "hello"), "consent")
	aisv.Script("gpt-4o-mini", aitest.Step{Text: "hi zqexp-answer"})
	a.press(alice, "I agree")
	a.waitText(alice.ID, 0, "zqexp-answer")
	a.idle()
	_, _, mydata := a.exportOf(alice)
	env := getenvFor(a)
	id := strconv.FormatInt(alice.ID, 10)

	live, err := subcommand(t, env, "export-user", id) // through the running bot
	if err != nil || !strings.Contains(live, "zqexp-support") {
		t.Fatalf("export-user with the bot running: %v\n%s", err, live)
	}
	a.stop()

	out, err := subcommand(t, env, "export-user", id)
	if err != nil {
		t.Fatal(err)
	}
	type labelled struct{ Code, Text string }
	type category struct {
		Count      int
		Purposes   []labelled
		Sources    []labelled
		Retention  struct{ Rule, Period, Text string }
		Recipients []string
	}
	type doc struct {
		Format     string              `json:"format"`
		TelegramID int64               `json:"telegram_id"`
		RequestID  uint64              `json:"request_id"`
		Categories map[string]category `json:"categories"`
		Recipients []struct {
			Name       string
			Kind       string
			Models     []string
			Categories []string
			Received   []labelled
			Calls      int
		} `json:"recipients"`
		Counts map[string]int             `json:"counts"`
		Data   map[string]json.RawMessage `json:"data"`
	}
	var cli, bot doc
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatalf("export-user printed no JSON: %v\n%s", err, out)
	}
	if err := json.Unmarshal(mydata, &bot); err != nil {
		t.Fatal(err)
	}
	if cli.TelegramID != alice.ID || cli.Format != bot.Format || cli.RequestID != 0 || bot.RequestID == 0 {
		t.Fatalf("export-user: id %d, format %q, request %d (/mydata: %q, request %d)", cli.TelegramID, cli.Format, cli.RequestID, bot.Format, bot.RequestID)
	}
	// The same document as /mydata: the same categories, each described.
	for name := range bot.Data {
		if _, ok := cli.Data[name]; !ok {
			t.Errorf("category %s is in /mydata, not in export-user", name)
		}
	}
	for _, d := range []doc{cli, bot} {
		for name := range d.Counts {
			if _, ok := d.Categories[name]; !ok {
				t.Errorf("category %s is counted, not described", name)
			}
		}
		for name, c := range d.Categories {
			if len(c.Purposes) == 0 || len(c.Sources) == 0 || c.Retention.Rule == "" || c.Retention.Text == "" || c.Purposes[0].Text == "" {
				t.Errorf("category %s is not described: %+v", name, c)
			}
		}
	}
	cats := cli.Categories
	if r := cats["requests"].Retention; r.Rule != "after_close" || r.Period != "P1Y" || !strings.Contains(r.Text, "1 year") {
		t.Errorf("requests retention = %+v", r)
	}
	if r := cats["conversations"].Retention; r.Rule != "user_or_account" {
		t.Errorf("conversations retention = %+v", r)
	}
	if r := cats["profile"].Retention; r.Rule != "account" || !strings.Contains(r.Text, "24 months") {
		t.Errorf("profile retention = %+v", r)
	}
	if s := cats["profile"].Sources; len(s) == 0 || s[0].Code != "telegram" {
		t.Errorf("profile sources = %+v", s)
	}
	if got := cats["conversations"].Recipients; len(got) != 1 || got[0] != "openai" {
		t.Errorf("conversations went to %v, want [openai]", got)
	}
	if got := cats["profile"].Recipients; len(got) != 0 {
		t.Errorf("the profile went to %v", got)
	}
	if len(cli.Recipients) != 1 {
		t.Fatalf("recipients = %+v", cli.Recipients)
	}
	r := cli.Recipients[0]
	if r.Name != "openai" || r.Kind != "ai_provider" || r.Calls < 1 || len(r.Models) != 1 || r.Models[0] != "gpt-4o-mini" ||
		len(r.Categories) != 1 || r.Categories[0] != "conversations" || len(r.Received) != 1 || r.Received[0].Code != "chat" {
		t.Errorf("recipient = %+v", r)
	}
	if !strings.Contains(out, "zqexp-support") || !strings.Contains(out, "zqexp-answer") {
		t.Error("export-user misses the user's ticket or conversation")
	}

	for _, unknown := range []string{"424242", "5005"} {
		out, err := subcommand(t, env, "export-user", unknown)
		if err != nil || out != "" {
			t.Errorf("export-user %s (no account) = %q, %v; want nothing", unknown, out, err)
		}
	}
}
