package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// --help on every command prints its usage, exits 0 and acts on nothing
// (no file written, no store opened); --version prints; an unknown flag
// exits 2 with the usage.
func TestCLIConventions(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	env := envFrom(map[string]string{"VALEX_DATA_DIR": dir + "/data"})
	for cmd := range commandUsage {
		for _, help := range []string{"--help", "-h"} {
			var out bytes.Buffer
			err := run(context.Background(), []string{cmd, help}, nil, &out, &out, env)
			if err != nil || !strings.HasPrefix(out.String(), "usage: valex "+cmd) {
				t.Errorf("valex %s %s: %v, %q", cmd, help, err, out.String())
			}
		}
		// A --help anywhere wins, even after a file name.
		var out bytes.Buffer
		if err := run(context.Background(), []string{cmd, "some-file.db", "--help"}, nil, &out, &out, env); err != nil {
			t.Errorf("valex %s FILE --help: %v", cmd, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("--help acted: %v left in the directory", entries)
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, nil, &out, &out, env); err != nil || !strings.Contains(out.String(), "schema") {
			t.Errorf("valex %v: %v, %q", args, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, nil, &out, &out, env); err != nil || !strings.Contains(out.String(), "Usage:") {
		t.Errorf("valex --help: %v, %q", err, out.String())
	}
	for _, args := range [][]string{{"backup", "--force", "x.db"}, {"check", "--verbose"}, {"frobnicate"}} {
		err := run(context.Background(), args, nil, &out, &out, env)
		if err == nil || ExitCode(err) != 2 {
			t.Errorf("valex %v: %v (exit %d), want exit 2", args, err, ExitCode(err))
		}
	}
}

// valex check lists warnings (and still exits 0) for a configuration that
// runs but should not ship: no admin, no AI key, default URLs, plain HTTP.
func TestCheckWarns(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "valex.toml")
	os.WriteFile(cfgFile, []byte("[retention]\ninactive_months = 12\n"), 0o600)
	env := envFrom(map[string]string{"VALEX_DATA_DIR": dir, "VALEX_TELEGRAM_TOKEN": "123456789:AAHfakefakefakefakefakefakefakefake",
		"VALEX_TELEGRAM_API_URL": "http://telegram.example.org", "VALEX_CONFIG": cfgFile})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check"}, nil, &out, &out, env); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	for _, want := range []string{"warning(s)", "no admin", "has no key", "policy_url is the default", "is not HTTPS", "shorter than the policy's 24"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	env = envFrom(map[string]string{"VALEX_DATA_DIR": dir, "VALEX_TELEGRAM_TOKEN": "123456789:AAHfakefakefakefakefakefakefakefake",
		"VALEX_ADMINS": "1", "OPENAI_API_KEY": "sk-x", "OPENROUTER_API_KEY": "sk-y", "ELEVENLABS_API_KEY": "xi"})
	run(context.Background(), []string{"check"}, nil, &out, &out, env)
	if strings.Contains(out.String(), "no admin") || strings.Contains(out.String(), "has no key") {
		t.Errorf("warnings that no longer apply:\n%s", out.String())
	}
}

// Console logs written to a file carry no colour codes; durations are
// milliseconds under _ms names.
func TestConsoleLogsPlainWhenRedirected(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	log := newLogger(Log{Level: "info", Format: "console"}, f)
	log.Info().Int64("took_ms", 8).Msg("job done")
	f.Close()
	b, _ := os.ReadFile(f.Name())
	if strings.Contains(string(b), "\x1b[") || !strings.Contains(string(b), "took_ms=8") {
		t.Fatalf("console log = %q", b)
	}
}

// valex backup FILE while valex run runs goes through the running bot (its
// control socket) and produces a database that opens and verifies; a
// second instance on the same data directory is refused with a hint.
func TestBackupWhileRunning(t *testing.T) {
	a := startApp(t, nil)
	a.say(alice, "/start")
	a.say(alice, "/support my invoice")
	dir := a.m.Config.DataDir
	env := envFrom(map[string]string{"VALEX_DATA_DIR": dir})
	file := filepath.Join(t.TempDir(), "live.db")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", file}, nil, &out, &out, env); err != nil {
		t.Fatalf("backup while running: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "by the running bot") {
		t.Fatalf("backup output = %q", out.String())
	}
	if fi, err := os.Stat(filepath.Join(dir, controlFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}
	for _, args := range [][]string{{"audit", "verify"}, {"audit", "verify", file}} {
		out.Reset()
		if err := run(context.Background(), args, nil, &out, &out, env); err != nil || !strings.Contains(out.String(), "audit OK") {
			t.Fatalf("valex %v while running: %v\n%s", args, err, out.String())
		}
	}
	second := NewMain(a.m.Config, io.Discard)
	if err := second.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "another valex") {
		t.Fatalf("a second instance on the same data: %v", err)
	}
	second.Close()
	a.stop()
	out.Reset()
	if err := run(context.Background(), []string{"audit", "verify", file}, nil, &out, &out, env); err != nil {
		t.Fatalf("the live backup does not verify: %v\n%s", err, out.String())
	}
	db, err := openStoreAt(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// The demo creates its --data directory, continues when restarted on the
// same data, and Ctrl-C ends it at once (not at the next Enter).
func TestDemoRestartsAndStops(t *testing.T) {
	data := filepath.Join(t.TempDir(), "nested", "demo")
	env := envFrom(nil)
	for i, script := range []string{"/start\n", "/profile\n"} {
		out := &syncBuffer{} // the demo's printer writes from its own goroutine
		if err := run(context.Background(), []string{"demo", "--data", data}, strings.NewReader(script), out, out, env); err != nil {
			t.Fatalf("demo run %d: %v\n%s", i+1, err, out.String())
		}
		if i == 1 && !strings.Contains(out.String(), "Your profile") {
			t.Fatalf("the restarted demo did not answer:\n%s", out.String())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe() // a terminal nobody types into
	defer w.Close()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--data", data}, r, io.Discard, io.Discard, env) }()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the demo did not stop on Ctrl-C")
	}
}

// A value of the wrong type is reported once, at its line, and the rest of
// the file is still read and checked.
func TestTOMLTypeErrorAtItsLine(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "valex.toml")
	os.WriteFile(file, []byte("data_dir = \""+dir+"\"\nadmins = \"abc\"\n\n[telegram]\npoll_timeout = \"90s\"\ndialog_timeout = 5\n"), 0o600)
	_, err := LoadConfig(envFrom(map[string]string{"VALEX_CONFIG": file}))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"valex.toml:2: admins", "valex.toml:6: telegram.dialog_timeout", "poll_timeout 1m30s"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "unknown key") {
		t.Errorf("keys after the type error were taken for unknown:\n%s", msg)
	}
}
