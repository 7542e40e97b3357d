package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/privacy"
)

// Children for the kill -9 tests (see TestMain): they run the real erasure
// and compaction code on a data directory and print each step they finish.

// killUsers and killTurns size the seeded accounts: an erasure of 2,000
// turns takes long enough for a SIGKILL to land inside it.
const killUsers, killTurns = 24, 2000

// eraseChild erases accounts 1..killUsers one after another, as /forget
// does, printing "erasing N" and "erased N".
func eraseChild() error {
	cfg := Config{DataDir: os.Getenv("VALEX_DATA_DIR")}
	keys, db, err := openStores(cfg, zerolog.Nop(), time.Now)
	if err != nil {
		return err
	}
	e := &privacy.Eraser{Store: db, Keys: keys, Log: zerolog.Nop()}
	for id := int64(1); id <= killUsers; id++ {
		fmt.Printf("erasing %d\n", id)
		if _, err := e.Erase(context.Background(), id, 0, time.Now()); err != nil {
			return err
		}
		fmt.Printf("erased %d\n", id)
	}
	select {} // wait for the kill
}

// compactChild compacts the key store and the database again and again,
// as the running bot's compactor does, printing "compacted" each time.
func compactChild() error {
	cfg := Config{DataDir: os.Getenv("VALEX_DATA_DIR")}
	keys, db, err := openStores(cfg, zerolog.Nop(), time.Now)
	if err != nil {
		return err
	}
	for {
		if _, _, err := keys.Compact(); err != nil {
			return err
		}
		if _, _, err := db.Compact(); err != nil {
			return err
		}
		fmt.Println("compacted")
	}
}

// seedKillUsers creates killUsers accounts with killTurns turns each.
func seedKillUsers(t *testing.T, dataDir string) {
	t.Helper()
	db, err := openStoreAt(Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	batch := make([]valex.Turn, 500)
	for id := int64(1); id <= killUsers; id++ {
		if _, _, err := db.EnsureUser(valex.User{ID: id, Nickname: fmt.Sprint("kill-", id), Language: "en"}); err != nil {
			t.Fatal(err)
		}
		for i := range batch {
			batch[i] = valex.Turn{Role: valex.TurnUser, Text: fmt.Sprintf("user %d turn %d", id, i), Tokens: 5, At: time.Now()}
		}
		for n := 0; n < killTurns; n += len(batch) {
			if err := db.SaveExchange(id, 1, batch, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// startChild starts this test binary as the named child on dataDir and
// returns it with a reader of its stdout lines.
func startChild(t *testing.T, mode, dataDir string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VALEX_TEST_CHILD="+mode, "VALEX_CONFIG=", "VALEX_DATA_DIR="+dataDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// restartBot opens the data directory as `valex run` does (Main.Open:
// stores, the keyless sweep, Eraser.Resume) and closes it again; it returns
// the start-up log.
func restartBot(t *testing.T, dataDir string) string {
	t.Helper()
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	cfg := Defaults()
	cfg.DataDir = dataDir
	cfg.Telegram.Token, cfg.Telegram.APIURL = emu.Token(), emu.URL()
	cfg.Log = Log{Level: "info", Format: "json"}
	log := &syncBuffer{}
	m := NewMain(cfg, log)
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	m.Close()
	return log.String()
}

// TestKillDuringErasureConverges kills a child erasing accounts with
// SIGKILL in the middle of an erasure. The restarted bot finishes it: every
// account is then either whole (its erasure never began) or gone entirely
// (no key, no profile, no turns, no journal entry), and the accounts the
// child had finished stay erased.
func TestKillDuringErasureConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	interrupted := 0
	for attempt := 0; attempt < 3 && interrupted == 0; attempt++ {
		dataDir := t.TempDir()
		seedKillUsers(t, dataDir)
		child, lines := startChild(t, "erase", dataDir)
		finished := 0
		// Kill a few milliseconds into the fifth erasure: inside it.
		for lines.Scan() {
			f := strings.Fields(lines.Text())
			if len(f) == 2 && f[0] == "erased" {
				finished, _ = strconv.Atoi(f[1])
			}
			if len(f) == 2 && f[0] == "erasing" && f[1] == "5" {
				time.Sleep(time.Duration(2+attempt*3) * time.Millisecond)
				break
			}
		}
		kill(t, child)
		if finished < 4 {
			t.Fatalf("the child finished %d erasures before the kill, want 4: %v", finished, lines.Err())
		}

		log := restartBot(t, dataDir)
		if strings.Contains(log, "finished erasures a stop had interrupted") ||
			strings.Contains(log, "removed the records of erased accounts") {
			interrupted++
		}

		db, err := openStoreAt(Config{DataDir: dataDir})
		if err != nil {
			t.Fatal(err)
		}
		if p, err := db.PendingErasures(); err != nil || len(p) != 0 {
			t.Fatalf("erasures still pending after the restart: %v, %v", p, err)
		}
		erased := 0
		for id := int64(1); id <= killUsers; id++ {
			u, uerr := db.User(id)
			turns, _, terr := db.RecentTurns(id, 1, 1<<30, 0)
			hasKey := db.keys.Has(id)
			switch {
			case errors.Is(uerr, valex.ErrNotFound) && !hasKey && len(turns) == 0:
				erased++
			case uerr == nil && hasKey && terr == nil && len(turns) == killTurns && u.Nickname == fmt.Sprint("kill-", id):
				if id <= int64(finished) {
					t.Errorf("account %d was erased before the kill and is back", id)
				}
			default:
				t.Errorf("account %d is half-erased: user err %v, key %v, %d turns (%v)", id, uerr, hasKey, len(turns), terr)
			}
		}
		db.Close()
		t.Logf("attempt %d: killed after %d finished erasures; %d accounts erased after the restart; interrupted erasure finished on restart: %v",
			attempt+1, finished, erased, interrupted > 0)
		if erased < finished || erased > 5 {
			t.Errorf("%d accounts erased; the child had finished %d and was killed in the fifth", erased, finished)
		}
	}
	if interrupted == 0 {
		t.Fatal("no kill landed inside an erasure in 3 attempts: the test shows nothing")
	}
}

// TestKillDuringCompactionConverges kills a child compacting the live files
// with SIGKILL while a compaction is writing: the restarted bot opens the
// old (or the new) complete file, with every record, and no leftover.
func TestKillDuringCompactionConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dataDir := t.TempDir()
	seedKillUsers(t, dataDir)
	child, lines := startChild(t, "compact", dataDir)
	if !lines.Scan() || lines.Text() != "compacted" {
		t.Fatalf("the child did not compact: %q %v", lines.Text(), lines.Err())
	}
	go func() { // keep the pipe drained
		for lines.Scan() {
		}
	}()
	tmp := filepath.Join(dataDir, dbFile+".compacting")
	deadline := time.Now().Add(20 * time.Second)
	caught := false
	for time.Now().Before(deadline) {
		if fi, err := os.Stat(tmp); err == nil && fi.Size() > 0 {
			caught = true
			break
		}
	}
	kill(t, child)
	if !caught {
		t.Fatal("never saw a compaction writing: the kill shows nothing")
	}

	restartBot(t, dataDir)
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the interrupted compaction's file is still there: %v", err)
	}
	db, err := openStoreAt(Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id := int64(1); id <= killUsers; id++ {
		u, err := db.User(id)
		turns, _, terr := db.RecentTurns(id, 1, 1<<30, 0)
		if err != nil || u.Nickname != fmt.Sprint("kill-", id) || terr != nil || len(turns) != killTurns {
			t.Fatalf("account %d after the kill: %+v %v, %d turns %v", id, u, err, len(turns), terr)
		}
	}
}
