package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/valex-ai/valex/bot/bottest"
)

// TestMain lets the crash test start this test binary as a real `valex run`.
func TestMain(m *testing.M) {
	if os.Getenv("VALEX_TEST_CHILD") == "run" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := run(ctx, []string{"run"}, os.Stdin, os.Stdout, os.Stderr, os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	switch os.Getenv("VALEX_TEST_CHILD") {
	case "erase":
		if err := eraseChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
	case "compact":
		if err := compactChild(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// TestCrashLosesNoUpdate kills a child `valex run` with SIGKILL while updates
// stream in, restarts it, and checks that every update was answered and that
// the handled log holds each update exactly once.
func TestCrashLosesNoUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dataDir := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			"VALEX_TEST_CHILD=run",
			"VALEX_CONFIG=",
			"VALEX_TELEGRAM_TOKEN="+emu.Token(),
			"VALEX_TELEGRAM_API_URL="+emu.URL(),
			"VALEX_DATA_DIR="+dataDir,
			"VALEX_LOG_LEVEL=error",
			"VALEX_HTTP_ADDR=127.0.0.1:0",
		)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	const chats, each = 20, 15
	total := chats * each
	answered := func() int {
		n := 0
		for _, e := range emu.Events() {
			if e.Method == "sendMessage" && e.OK() && e.ChatID > 0 {
				n++
			}
		}
		return n
	}

	child := start()
	streamed := make(chan struct{})
	go func() {
		defer close(streamed)
		for i := 0; i < each; i++ {
			for c := 1; c <= chats; c++ {
				u := bottest.User{ID: int64(5000 + c), FirstName: "crash", LanguageCode: "en"}
				emu.SendText(bottest.PrivateChat(u), u, "/help")
				time.Sleep(time.Millisecond)
			}
		}
	}()
	// Kill it in the middle of the stream, once it has answered some.
	deadline := time.Now().Add(30 * time.Second)
	for answered() < total/4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	killedAt := answered()
	if killedAt >= total {
		t.Fatalf("all %d updates were answered before the kill: the test proves nothing", total)
	}

	child = start()
	<-streamed
	deadline = time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && !(emu.Pending() == 0 && answered() >= total) {
		time.Sleep(20 * time.Millisecond)
	}
	// A graceful stop commits what was handled.
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := child.Wait(); err != nil && !errors.As(err, &exitErr) {
		t.Fatal(err)
	}
	if child.ProcessState.ExitCode() != 0 {
		t.Fatalf("child exited with %d after SIGTERM", child.ProcessState.ExitCode())
	}

	// Every chat got at least one answer per message.
	perChat := map[int64]int{}
	for _, e := range emu.Events() {
		if e.Method == "sendMessage" && e.OK() {
			perChat[e.ChatID]++
		}
	}
	for c := 1; c <= chats; c++ {
		if got := perChat[int64(5000+c)]; got < each {
			t.Errorf("chat %d: %d answers for %d messages", 5000+c, got, each)
		}
	}
	// The handled log has every update id exactly once, and nothing is pending.
	db, err := openStoreAt(Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pending, err := db.InboxPending()
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending after restart: %d (%v)", len(pending), err)
	}
	seen := map[int]int{}
	if err := db.InboxHandled(func(id int, _ time.Time) error { seen[id]++; return nil }); err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= total; id++ {
		if seen[id] != 1 {
			t.Errorf("update %d is in the handled log %d times", id, seen[id])
		}
	}
	dups := 0
	for _, n := range perChat {
		dups += n
	}
	t.Logf("killed after %d answers; %d updates, %d answers in all (%d repeated for updates in flight at the kill)", killedAt, total, dups, dups-total)
}
