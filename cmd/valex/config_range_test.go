package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot/bottest"
)

// Every number has a range; a value outside it is refused by `valex check`
// and by `valex run` before anything starts, with the key and the range.
func TestNumbersOutsideTheirRange(t *testing.T) {
	tests := []struct {
		name, toml, want string
	}{
		{"a global pace under 1 (a burst of 0 refuses every send)", "[telegram.pace]\nglobal_per_second = 0.5\n", "telegram pace global_per_second 0.5: must be between 1 and 1000"},
		{"a global pace past any limit", "[telegram.pace]\nglobal_per_second = 1e19\n", "global_per_second 1e+19: must be between 1 and 1000"},
		{"not a number", "[telegram.pace]\nprivate_per_second = nan\n", "private_per_second NaN"},
		{"no burst", "[telegram.pace]\nburst = 0\n", "telegram pace burst 0: must be between 1 and 100"},
		{"groups never served", "[telegram.pace]\ngroup_per_minute = 0\n", "group_per_minute 0"},
		{"no shutdown grace", "[telegram]\nshutdown_timeout = \"0s\"\n", "shutdown_timeout 0s: must be between 1s and 5m"},
		{"no handlers", "[telegram]\nconcurrency = 0\n", "telegram concurrency 0: must be between 1 and 100000"},
		{"no broadcast workers", "[telegram]\nbroadcast_workers = 0\n", "telegram broadcast_workers 0: must be between 1 and 256"},
		{"a negative abuse limit", "[telegram]\nuser_messages_per_minute = -1\n", "user_messages_per_minute -1"},
		{"no backups kept", "[jobs]\nbackup_keep = 0\n", "jobs backup_keep 0: must be between 1 and 365"},
		{"a consent hold of seconds", "[ai]\nconsent_hold = \"5s\"\n", "ai consent_hold 5s: must be between 1m and 24h"},
		{"drafts too often", "[ai]\ndraft_interval = \"10ms\"\n", "ai draft_interval 10ms: must be between 50ms and 10s"},
		{"drafts too rare", "[ai]\ndraft_interval = \"1m\"\n", "ai draft_interval 1m0s: must be between 50ms and 10s"},
		{"negative backups kept", "[jobs]\nbackup_keep = -3\n", "jobs backup_keep -3"},
		{"documents past Telegram's download limit", "[ai]\ndocument_max_mb = 21\n", "ai document_max_mb 21: must be between 1 and 20"},
		{"negative document pages", "[ai]\ndocument_max_pages = -1\n", "ai document_max_pages -1: must be between 1 and 2000"},
		{"documents kept for days", "[ai]\ndocument_keep = \"72h\"\n", "ai document_keep 72h0m0s: must be between 1m and 24h"},
		{"a model description of two lines", "[[ai.models]]\nid = \"m\"\nprovider = \"openai\"\ncaps = [\"chat\"]\ndescriptions = { ru = \"a\\nb\" }\n", "ai model m description ru: one line of at most 120 characters"},
		{"no AI calls at all", "[ai]\nmax_concurrent = -1\n", "ai max_concurrent -1: must be between 1 and 10000"},
		{"AI calls past any machine", "[ai]\nmax_concurrent = 100000\n", "ai max_concurrent 100000"},
		{"key snapshots never expire", "[jobs]\nkey_snapshot_days = 100000\n", "jobs key_snapshot_days 100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "valex.toml")
			if err := os.WriteFile(file, []byte(tt.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			env := envFrom(map[string]string{"VALEX_CONFIG": file, "VALEX_DATA_DIR": t.TempDir()})
			for _, cmd := range []string{"check", "run"} {
				var out bytes.Buffer
				err := run(context.Background(), []string{cmd}, nil, &out, &out, env)
				if err == nil || !strings.Contains(err.Error()+out.String(), tt.want) {
					t.Errorf("valex %s: err=%v, want %q in:\n%s", cmd, err, tt.want, out.String())
				}
			}
		})
	}
	// The edges themselves are accepted.
	file := filepath.Join(t.TempDir(), "valex.toml")
	edges := "[telegram]\nuser_messages_per_minute = 0\nshutdown_timeout = \"1s\"\nbroadcast_workers = 256\n[telegram.pace]\nglobal_per_second = 1000\nprivate_per_second = 0.01\nburst = 100\n[jobs]\nbackup_keep = 1\n[ai]\nmax_concurrent = 10000\n"
	if err := os.WriteFile(file, []byte(edges), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(envFrom(map[string]string{"VALEX_CONFIG": file})); err != nil {
		t.Fatalf("the range edges are refused: %v", err)
	}
}

// FuzzConfigNeverMute feeds any TOML to `valex run` over the Bot API
// emulator: it either refuses with a message, or starts and answers /start.
// A configuration it accepts must never leave the bot unable to send (as a
// pace under 1 message a second did). Run: make fuzz.
func FuzzConfigNeverMute(f *testing.F) {
	example, err := os.ReadFile("../../valex.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("")
	f.Add("[telegram.pace]\nglobal_per_second = 0.5\n")
	f.Add("[telegram.pace]\nprivate_per_second = 0.02\nburst = 1\n")
	f.Add("[telegram]\nconcurrency = 1\nuser_messages_per_minute = 0\n")
	f.Fuzz(func(t *testing.T, src string) {
		emu, err := bottest.New(bottest.Options{Token: testToken})
		if err != nil {
			t.Fatal(err)
		}
		defer emu.Close()
		dir := t.TempDir()
		file := filepath.Join(dir, "valex.toml")
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		env := envFrom(map[string]string{
			"VALEX_CONFIG": file, "VALEX_DATA_DIR": filepath.Join(dir, "data"),
			"VALEX_TELEGRAM_TOKEN": testToken, "VALEX_TELEGRAM_API_URL": emu.URL(),
			"VALEX_HTTP_ADDR": "off", "VALEX_LOG_LEVEL": "error",
		})
		if _, err := LoadConfig(env); err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("refused without a message")
			}
			t.Logf("refused: %v", err)
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- run(ctx, []string{"run"}, nil, &out, &out, env) }()
		u := bottest.User{ID: 4242, FirstName: "Fuzz", LanguageCode: "en"}
		emu.SendText(bottest.PrivateChat(u), u, "/start")
		deadline := time.After(15 * time.Second)
		for answered := false; !answered; {
			select {
			case err := <-done:
				if err == nil || strings.TrimSpace(err.Error()) == "" {
					t.Fatalf("valex run stopped before answering, without a message (err=%v):\n%s", err, out.String())
				}
				t.Logf("refused at start: %v", err)
				return
			case <-deadline:
				t.Fatalf("valex run accepted the configuration and never answered /start:\n%s", out.String())
			case <-time.After(20 * time.Millisecond):
				for _, m := range emu.Messages(u.ID) {
					answered = answered || m.Text != ""
				}
			}
		}
		t.Log("started and answered /start")
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("valex run after answering: %v", err)
		}
	})
}
