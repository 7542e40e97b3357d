package bot_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/store"
)

const testToken = "123456789:TEST-emulator-token-abcdefghijkl"

func newEmulator(t *testing.T) *bottest.Server {
	t.Helper()
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

func newOutbox(t *testing.T, emu *bottest.Server, cfg bot.OutboxConfig) *bot.Outbox {
	t.Helper()
	c, err := bot.NewClient(context.Background(), emu.URL(), emu.Token(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return bot.NewOutbox(c, cfg, zerolog.Nop())
}

// fastPace keeps tests quick while still going through the pacer.
var fastPace = bot.OutboxConfig{Pace: bot.PaceConfig{Global: 1000, PrivatePerSec: 1000, GroupPerMinute: 60000, Burst: 100}, Backoff: 10 * time.Millisecond}

// pipeline is the real bot core over the emulator with a real bbolt inbox.
type pipeline struct {
	emu  *bottest.Server
	out  *bot.Outbox
	rt   *bot.Router
	db   *store.DB
	stop func() error
}

func newPipeline(t *testing.T, emu *bottest.Server, dbPath string, register func(p *pipeline)) *pipeline {
	t.Helper()
	return newPipelineWith(t, emu, dbPath, bot.Config{PollTimeout: time.Second, DoneFlush: 5 * time.Millisecond}, register)
}

// newPipelineWith is newPipeline with the bot core's configuration.
func newPipelineWith(t *testing.T, emu *bottest.Server, dbPath string, cfg bot.Config, register func(p *pipeline)) *pipeline {
	t.Helper()
	if dbPath == "" {
		dbPath = filepath.Join(t.TempDir(), "valex.db")
	}
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := bot.NewClient(ctx, emu.URL(), emu.Token(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{emu: emu, db: db}
	p.out = bot.NewOutbox(c, fastPace, zerolog.Nop())
	p.rt = bot.NewRouter(bot.NewSigner([]byte(testToken)))
	p.rt.Use(bot.Recover(), bot.Identity(
		func(context.Context, bot.From) string { return "en" },
		func(int64) valex.Role { return valex.RoleUser }))
	register(p)
	b := bot.New(c, p.out, db, p.rt, tr, valex.SystemClock{}, zerolog.Nop(), cfg)
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stopped := false
	p.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		err := <-done
		db.Close()
		return err
	}
	t.Cleanup(func() { p.stop() })
	return p
}

func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sent(e bottest.Event) bool { return e.Method == "sendMessage" && e.OK() }
