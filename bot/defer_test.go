package bot_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/store"
)

// deferBot is the real bot core over the emulator and a bbolt inbox, with
// the shutdown timeout a test chooses. stop cancels Run and returns its
// error and how long the stop took; the store stays open until cleanup.
type deferBot struct {
	db   *store.DB
	out  *bot.Outbox
	stop func() (time.Duration, error)
}

func startDeferBot(t *testing.T, emu *bottest.Server, dbPath string, shutdown time.Duration, h bot.HandlerFunc) *deferBot {
	t.Helper()
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tr, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := bot.NewClient(ctx, emu.URL(), emu.Token(), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := bot.NewOutbox(c, fastPace, zerolog.Nop())
	rt := bot.NewRouter(bot.NewSigner([]byte(testToken)))
	rt.On(bot.KindText, h)
	b := bot.New(c, out, db, rt, tr, valex.SystemClock{}, zerolog.Nop(), bot.Config{
		PollTimeout: time.Second, DoneFlush: 5 * time.Millisecond, ShutdownTimeout: shutdown,
	})
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	stopped := false
	d := &deferBot{db: db, out: out}
	d.stop = func() (time.Duration, error) {
		if stopped {
			return 0, nil
		}
		stopped = true
		start := time.Now()
		cancel()
		err := <-done
		return time.Since(start), err
	}
	t.Cleanup(func() { d.stop() })
	return d
}

// pendingIDs are the update ids the inbox would replay.
func pendingIDs(t *testing.T, db *store.DB) []int {
	t.Helper()
	entries, err := db.InboxPending()
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	return ids
}

// waitPending polls until the pending ids are want (handled ids are
// committed in batches, a few milliseconds late).
func waitPending(t *testing.T, db *store.DB, want []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := pendingIDs(t, db)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending updates %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A handler that defers its work (an AI answer) returns at once: the chat's
// next update is handled meanwhile, but the deferred update stays pending
// until every piece of its work has ended, and the last end returns when
// the update is recorded as handled.
func TestDeferredUpdateIsHandledOnlyWhenItsWorkEnds(t *testing.T) {
	emu := newEmulator(t)
	ends := make(chan func(bool), 2)
	var d *deferBot
	d = startDeferBot(t, emu, filepath.Join(t.TempDir(), "valex.db"), 10*time.Second, func(ctx context.Context, r *bot.Request) error {
		if r.Text == "ask" {
			ends <- r.Defer() // two pieces of work, say a transcript and an answer
			ends <- r.Defer()
			return nil
		}
		_, err := d.out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: "echo " + r.Text})
		return err
	})
	u := bottest.User{ID: 31, FirstName: "u"}
	ask := emu.SendText(bottest.PrivateChat(u), u, "ask")
	first, second := <-ends, <-ends

	// The chat is not held up by the deferred work: /cancel would get through.
	next := emu.SendText(bottest.PrivateChat(u), u, "next")
	if e, err := emu.WaitFor(waitCtx(t), sent); err != nil || e.Text != "echo next" {
		t.Fatalf("the chat's next update: %q, %v", e.Text, err)
	}
	waitPending(t, d.db, []int{ask}) // "next" is handled, "ask" is not
	if slices.Contains(pendingIDs(t, d.db), next) {
		t.Fatal("the next update is pending")
	}

	first(true)
	first(true) // a second call is ignored, not counted as the second piece
	time.Sleep(50 * time.Millisecond)
	waitPending(t, d.db, []int{ask})
	second(true)
	// The last end returns once the update is recorded: what the work
	// writes next can never be written twice by a replay.
	if got := pendingIDs(t, d.db); len(got) != 0 {
		t.Fatalf("end returned with the update still pending: %v", got)
	}
}

// A stop gives deferred work the shutdown timeout. Work that ends in time
// is handled; work interrupted by the stop, or never ending (the process
// killed), leaves its update pending, and the next start replays it.
func TestStopBeforeDeferredWorkEndsLeavesItPending(t *testing.T) {
	const grace = 300 * time.Millisecond
	tests := []struct {
		name string
		// work runs the deferred work; stopping is closed when the stop
		// begins (as AI.Shutdown is called alongside the bot's stop).
		work        func(end func(bool), stopping <-chan struct{})
		pending     bool
		maxStopTime time.Duration
	}{
		{"ends within the grace period", func(end func(bool), stopping <-chan struct{}) {
			<-stopping
			time.Sleep(grace / 3)
			end(true)
		}, false, grace},
		{"interrupted at the deadline", func(end func(bool), stopping <-chan struct{}) {
			<-stopping
			time.Sleep(grace)
			end(false)
		}, true, grace + 200*time.Millisecond},
		{"never ends", func(func(bool), <-chan struct{}) {}, true, grace + 2*time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "valex.db")
			emu := newEmulator(t)
			stopping := make(chan struct{})
			deferred := make(chan struct{})
			d := startDeferBot(t, emu, dbPath, grace, func(ctx context.Context, r *bot.Request) error {
				end := r.Defer()
				go tc.work(end, stopping)
				close(deferred)
				return nil
			})
			u := bottest.User{ID: 32, FirstName: "u"}
			id := emu.SendText(bottest.PrivateChat(u), u, "question")
			<-deferred
			close(stopping)
			took, err := d.stop()
			if err != nil {
				t.Fatal(err)
			}
			if took > tc.maxStopTime {
				t.Errorf("the stop took %v, want at most %v", took, tc.maxStopTime)
			}
			var want []int
			if tc.pending {
				want = []int{id}
			}
			if got := pendingIDs(t, d.db); !slices.Equal(got, want) {
				t.Fatalf("pending after the stop: %v, want %v", got, want)
			}
			d.db.Close()
			if !tc.pending {
				return
			}

			// The next start replays it; this time the work ends.
			replayed := make(chan int, 1)
			d2 := startDeferBot(t, emu, dbPath, grace, func(ctx context.Context, r *bot.Request) error {
				end := r.Defer()
				replayed <- r.ID
				go end(true)
				return nil
			})
			select {
			case got := <-replayed:
				if got != id {
					t.Fatalf("replayed update %d, want %d", got, id)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the pending update was not replayed")
			}
			waitPending(t, d2.db, nil)
		})
	}
}

// Defer on a Request the bot did not make does nothing (handler unit tests).
func TestDeferOutsideTheBotIsANoOp(t *testing.T) {
	r := &bot.Request{Update: &bot.Update{ID: 1}}
	end := r.Defer()
	end(true)
	end(false)
}

// Work that wrote its update's handled mark in its own transaction
// (MarkedHandled) ends without a commit of the bot's: the update is handled
// and the store sees no further commit for it.
func TestWorkThatMarkedItsUpdateEndsWithoutACommit(t *testing.T) {
	emu := newEmulator(t)
	type work struct {
		id  int
		r   *bot.Request
		end func(bool)
	}
	works := make(chan work, 1)
	d := startDeferBot(t, emu, filepath.Join(t.TempDir(), "valex.db"), 10*time.Second, func(ctx context.Context, r *bot.Request) error {
		works <- work{r.ID, r, r.Defer()}
		return nil
	})
	u := bottest.User{ID: 32, FirstName: "u"}
	ask := emu.SendText(bottest.PrivateChat(u), u, "ask")
	w := <-works
	waitPending(t, d.db, []int{ask})
	time.Sleep(50 * time.Millisecond) // the handler's return settles (DoneFlush is 5 ms)

	// The work's last write: here the mark alone, as SaveExchangeCharged
	// writes it with an exchange (valex.Charge.EndsUpdate).
	if err := d.db.InboxDone([]int{w.id}, time.Now()); err != nil {
		t.Fatal(err)
	}
	before := d.db.Commits()
	w.r.MarkedHandled()
	w.end(true)
	time.Sleep(50 * time.Millisecond) // a flush of the id would have come by now
	if got := d.db.Commits() - before; got != 0 {
		t.Errorf("%d commits after the work ended; its mark was written already", got)
	}
	if got := pendingIDs(t, d.db); len(got) != 0 {
		t.Errorf("pending after the work ended: %v", got)
	}
}
