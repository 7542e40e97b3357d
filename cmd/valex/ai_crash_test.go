package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// AI turns survive crashes and stops: a question's update is marked handled
// only when its answer has been given, so a `valex run` killed with SIGKILL,
// or stopped with SIGTERM while answers stream and wait in the users'
// queues, answers every question after the restart.

// aiRig runs `valex run` children (see TestMain) over the Bot API emulator
// and the AI emulator, whose answers stream slowly enough for a kill to land
// in the middle of one.
type aiRig struct {
	t       *testing.T
	emu     *bottest.Server
	aisv    *aitest.Server
	dataDir string
	config  string
	child   *exec.Cmd
	users   []bottest.User
	each    int // questions per user, the first one held for the consent
	kills   int
	// killedAt is when each SIGKILL was sent: an answer shown twice must
	// have a kill between its two showings (duplicates).
	killedAt []time.Time
}

// The chat model's provider name in the default catalogue.
const rigModel = "gpt-4o-mini"

func newAIRig(t *testing.T, chats, each int, shutdown time.Duration) *aiRig {
	t.Helper()
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	// Answers stream in chunks of 8 characters 50 ms apart: 0.4 to 1 s
	// each, as questions differ in length (so they do not all end at once).
	// Enough steps for every question and its repeats; then the emulator
	// answers at once, which changes nothing but the pace.
	steps := make([]aitest.Step, 3*chats*each)
	for i := range steps {
		steps[i] = aitest.Step{TokenDelay: 50 * time.Millisecond, ChunkSize: 8}
	}
	aisv.Script(rigModel, steps...)

	dir := t.TempDir()
	r := &aiRig{t: t, emu: emu, aisv: aisv, dataDir: filepath.Join(dir, "data"), config: filepath.Join(dir, "valex.toml"), each: each}
	toml := fmt.Sprintf(`[telegram]
poll_timeout = "1s"
shutdown_timeout = %q
user_messages_per_minute = 0

[telegram.pace]
disabled = true

[ai]
edit_interval = "100ms"
`, shutdown.String())
	if err := os.WriteFile(r.config, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	for c := 1; c <= chats; c++ {
		r.users = append(r.users, bottest.User{ID: int64(7000 + c), FirstName: "crash", LanguageCode: "en"})
	}
	t.Cleanup(func() {
		if r.child != nil && r.child.ProcessState == nil {
			r.child.Process.Kill()
			r.child.Wait()
		}
	})
	return r
}

func (r *aiRig) start() {
	r.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"VALEX_TEST_CHILD=run",
		"VALEX_CONFIG="+r.config,
		"VALEX_TELEGRAM_TOKEN="+r.emu.Token(),
		"VALEX_TELEGRAM_API_URL="+r.emu.URL(),
		"VALEX_DATA_DIR="+r.dataDir,
		"VALEX_LOG_LEVEL=error",
		"VALEX_HTTP_ADDR=127.0.0.1:0",
		"OPENAI_BASE_URL="+r.aisv.URL()+"/v1",
		"OPENAI_API_KEY=sk-crash-test",
	)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.child = cmd
}

// kill is kill -9: nothing in the child gets to run.
func (r *aiRig) kill() {
	r.t.Helper()
	at := time.Now()
	if err := r.child.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	r.child.Wait()
	r.kills++
	r.killedAt = append(r.killedAt, at)
}

// term is a graceful stop; the child must exit 0.
func (r *aiRig) term() {
	r.t.Helper()
	if err := r.child.Process.Signal(syscall.SIGTERM); err != nil {
		r.t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := r.child.Wait(); err != nil && !errors.As(err, &exitErr) {
		r.t.Fatal(err)
	}
	if code := r.child.ProcessState.ExitCode(); code != 0 {
		r.t.Fatalf("child exited with %d after SIGTERM", code)
	}
}

// question is the i-th question of u; the emulator answers "echo: " and the
// question, 6 to 17 words long.
func question(u bottest.User, i int) string {
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec")
	n := 6 + int(u.ID*7+int64(i)*5)%12
	return fmt.Sprintf("q%d-%02d %s", u.ID, i, strings.Join(words[:n], " "))
}

func answerTo(q string) string { return "echo: " + q }

// waitFor polls cond until it holds or the deadline passes.
func (r *aiRig) waitFor(what string, d time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// consentButton is the data and message of the latest "I agree" in u's chat.
func (r *aiRig) consentButton(u bottest.User) (msgID int, data string) {
	msgs := r.emu.Messages(u.ID)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, "I agree") {
					return msgs[i].ID, b.Data
				}
			}
		}
	}
	return 0, ""
}

// consent registers every user and asks their first question, which makes
// the bot ask for the AI consent and hold it; with killHeld the child is
// killed while the questions are held. Then every user agrees.
func (r *aiRig) consent(killHeld bool) {
	r.t.Helper()
	for _, u := range r.users {
		r.emu.SendText(bottest.PrivateChat(u), u, "/start")
		r.emu.SendText(bottest.PrivateChat(u), u, question(u, 0))
	}
	r.waitFor("the consent questions", 30*time.Second, func() bool {
		for _, u := range r.users {
			if id, _ := r.consentButton(u); id == 0 {
				return false
			}
		}
		return true
	})
	if killHeld {
		r.kill()
		r.start()
	}
	for _, u := range r.users {
		id, data := r.consentButton(u)
		r.emu.PressButton(bottest.PrivateChat(u), u, id, data)
	}
}

// answers counts, per question, the messages that show its whole answer.
func (r *aiRig) answers() map[string]int {
	n := map[string]int{}
	for _, u := range r.users {
		for _, m := range r.emu.Messages(u.ID) {
			if strings.HasPrefix(m.Text, "echo: ") && !m.Deleted {
				n[strings.TrimSpace(m.Text)]++
			}
		}
	}
	return n
}

// unanswered is how many questions have no whole answer yet.
func (r *aiRig) unanswered() int {
	got := r.answers()
	missing := 0
	for _, u := range r.users {
		for i := 0; i < r.each; i++ {
			if got[answerTo(question(u, i))] == 0 {
				missing++
			}
		}
	}
	return missing
}

// check reports the questions never answered and those answered more than
// once, and returns how many of each.
func (r *aiRig) check() (lost, twice int) {
	r.t.Helper()
	got := r.answers()
	for _, u := range r.users {
		for i := 0; i < r.each; i++ {
			switch n := got[answerTo(question(u, i))]; {
			case n == 0:
				lost++
				r.t.Errorf("%s: never answered", question(u, i)[:9])
			case n > 1:
				twice++
			}
		}
	}
	return lost, twice
}

// shownToKill bounds how long before a kill an answer shown again after it
// may have been shown: its commit follows the message by milliseconds (a
// group commit), so an answer shown long before a kill was committed and
// must not come again. Generous for a loaded machine under -race.
const shownToKill = 2 * time.Second

// duplicates checks every answer shown more than once: each showing after
// the first comes from a later run than the one before it — a kill lies
// between them, no more than shownToKill after the earlier showing — and a
// kill repeats at most one answer per chat (a chat's turns run one at a
// time, so at most one is between its message and its commit). It reports
// each violation as a test error.
func (r *aiRig) duplicates() {
	r.t.Helper()
	type answer struct {
		chat int64
		text string
	}
	shown := map[answer][]time.Time{} // when each message showing the answer was sent
	for _, e := range r.emu.Events() {
		if e.Method == "sendMessage" && e.OK() && strings.HasPrefix(e.Text, "echo: ") {
			a := answer{e.ChatID, strings.TrimSpace(e.Text)}
			shown[a] = append(shown[a], e.At)
		}
	}
	type killChat struct {
		kill int
		chat int64
	}
	perKill := map[killChat]int{} // answers a kill repeated in a chat
	for a, times := range shown {
		name := a.text[:min(len(a.text), 16)]
		for i := 1; i < len(times); i++ {
			kill := -1
			for j, at := range r.killedAt {
				if !at.Before(times[i-1]) && at.Before(times[i]) {
					kill = j
					break
				}
			}
			switch {
			case kill < 0:
				r.t.Errorf("%s shown twice by the same run (%s, then %s)", name, times[i-1].Format("15:04:05.000"), times[i].Format("15:04:05.000"))
			case r.killedAt[kill].Sub(times[i-1]) > shownToKill:
				r.t.Errorf("%s shown again after kill %d, %s after it was first shown: it should have been committed", name, kill+1, r.killedAt[kill].Sub(times[i-1]).Round(time.Millisecond))
			default:
				perKill[killChat{kill, a.chat}]++
			}
		}
	}
	for kc, n := range perKill {
		if n > 1 {
			r.t.Errorf("kill %d repeated %d answers in chat %d: a chat has one turn at a time", kc.kill+1, n, kc.chat)
		}
	}
}

// storeState reads, with the child stopped, how many updates are pending
// and how many times each question is in its user's conversation history.
func (r *aiRig) storeState() (pending int, history map[string]int) {
	r.t.Helper()
	db, err := openStoreAt(Config{DataDir: r.dataDir})
	if err != nil {
		r.t.Fatal(err)
	}
	defer db.Close()
	p, err := db.InboxPending()
	if err != nil {
		r.t.Fatal(err)
	}
	history = map[string]int{}
	for _, u := range r.users {
		turns, _, err := db.RecentTurns(u.ID, 1, 1<<30, 0)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, tn := range turns {
			if tn.Role == valex.TurnUser {
				history[tn.Text]++
			}
		}
	}
	return len(p), history
}

// TestCrashLosesNoAITurn asks 220 questions from 20 chats while the bot is
// killed with SIGKILL six times — once while the first questions wait for
// the users' consent, five times at random points while answers stream —
// then stopped with SIGTERM. Every question is answered. A question is
// answered twice only when a kill came between its answer being shown and
// the commit of its update (a few milliseconds; several chats can be in
// that window at one kill): duplicates checks each repeat against the
// kills. The history never holds a question twice: it is written after that
// commit (so a kill in between leaves the exchange out of it instead).
func TestCrashLosesNoAITurn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const chats, each, streamKills = 20, 11, 5
	r := newAIRig(t, chats, each, 3*time.Second)
	r.start()
	r.consent(true)

	// Each user asks at their own pace, about as fast as answers come.
	var sending sync.WaitGroup
	for _, u := range r.users {
		sending.Add(1)
		go func() {
			defer sending.Done()
			for i := 1; i < each; i++ {
				time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
				r.emu.SendText(bottest.PrivateChat(u), u, question(u, i))
			}
		}()
	}
	for k := 0; k < streamKills; k++ {
		r.waitFor("the child to poll", 30*time.Second, r.emu.Polling)
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		if r.unanswered() == 0 {
			t.Fatalf("every question was answered before kill %d: the test proves nothing", r.kills+1)
		}
		r.kill()
		r.start()
	}
	sending.Wait()
	r.waitFor("every question to be answered", 60*time.Second, func() bool { return r.unanswered() == 0 })
	r.term()

	lost, twice := r.check()
	r.duplicates()
	pending, history := r.storeState()
	if pending != 0 {
		t.Errorf("%d updates pending after the final stop", pending)
	}
	repeated, missing := 0, 0
	for _, u := range r.users {
		for i := 0; i < each; i++ {
			switch n := history[question(u, i)]; {
			case n == 0:
				missing++
			case n > 1:
				repeated++
				t.Errorf("%s is in the history %d times", question(u, i)[:9], n)
			}
		}
	}
	t.Logf("%d questions from %d chats, %d kills: %d lost, %d answered twice; history: %d repeated, %d left out; %d AI requests",
		chats*each, chats, r.kills, lost, twice, repeated, missing, r.aisv.Count())
}

// TestGracefulStopLeavesAITurnsPending stops the bot with SIGTERM while
// every user has answers streaming and questions queued, with a 1 s grace
// period: the turns it cut stay pending, and after the restart every
// question is answered exactly once, and is in the history exactly once.
func TestGracefulStopLeavesAITurnsPending(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const chats, each = 20, 8
	r := newAIRig(t, chats, each, time.Second)
	r.start()
	r.consent(false)
	for i := 1; i < each; i++ {
		for _, u := range r.users {
			r.emu.SendText(bottest.PrivateChat(u), u, question(u, i))
		}
	}
	// Stop once the queued questions are in and answers stream.
	r.waitFor("the questions to be taken", 30*time.Second, func() bool { return r.emu.Pending() == 0 })
	r.waitFor("answers to stream", 30*time.Second, func() bool { return len(r.answers()) >= chats })
	r.term()
	leftPending, _ := r.storeState()
	if leftPending == 0 {
		t.Fatal("nothing was pending after the stop: the test proves nothing")
	}
	cut := r.unanswered()

	r.start()
	r.waitFor("every question to be answered", 60*time.Second, func() bool { return r.unanswered() == 0 })
	r.term()

	lost, twice := r.check()
	if twice != 0 {
		t.Errorf("%d questions answered twice after a graceful stop", twice)
	}
	pending, history := r.storeState()
	if pending != 0 {
		t.Errorf("%d updates pending after the final stop", pending)
	}
	for _, u := range r.users {
		for i := 0; i < each; i++ {
			if n := history[question(u, i)]; n != 1 {
				t.Errorf("%s is in the history %d times", question(u, i)[:9], n)
			}
		}
	}
	t.Logf("%d questions from %d chats: the stop left %d updates pending (%d questions unanswered); %d lost, %d answered twice",
		chats*each, chats, leftPending, cut, lost, twice)
}
