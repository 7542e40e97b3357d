package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

// markers are unique strings seeded into every personal field of one user.
// The scan looks for each of them in every byte Valex wrote.
type markers struct{ prefix string }

func (m markers) of(field string) string { return m.prefix + "-" + field }

var personalFields = []string{
	"first", "username", "nickname", "city", "description", "email",
	"chat", "answer", "voice", "support", "feedback", "personaldata", "staffreply",
}

func (m markers) all() []string {
	out := make([]string, len(personalFields))
	for i, f := range personalFields {
		out[i] = m.of(f)
	}
	return out
}

// seedUser fills every personal field of u with markers, through the bot
// wherever a user can: Telegram names, profile, an AI chat turn, a voice
// transcript, support, feedback and "Personal Data" tickets with a staff
// reply.
func seedUser(t *testing.T, a *app, aisv *aitest.Server, u bottest.User, mk markers) {
	t.Helper()
	a.say(u, "/start")
	if _, err := a.m.DB.UpdateUser(u.ID, func(x *valex.User) error {
		x.City, x.Description, x.Email = mk.of("city"), mk.of("description"), mk.of("email")+"@example.org"
		x.Nickname = mk.of("nickname")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ask := a.say(u, "hello "+mk.of("chat"))
	if !strings.Contains(ask.Text, "consent") {
		t.Fatalf("expected the consent question, got %q", ask.Text)
	}
	a.press(u, "I agree")
	a.idle()
	aisv.Script("gpt-4o-mini", aitest.Step{Text: "sure " + mk.of("answer")})
	a.say(u, "again "+mk.of("chat"))
	a.idle()
	aisv.Script("whisper-1", aitest.Step{Text: "transcript " + mk.of("voice")})
	seq := a.lastSeq()
	a.emu.SendVoice(bottest.PrivateChat(u), u, oggVoice(t), 2)
	a.waitText(u.ID, seq, mk.of("voice"))
	a.idle()
	a.say(u, "/support "+mk.of("support"))
	a.say(u, "/feedback "+mk.of("feedback"))
	a.say(u, "/support Personal Data "+mk.of("personaldata"))
	ts := a.tickets(u)
	if len(ts) < 3 {
		t.Fatalf("%d tickets seeded, want 3", len(ts))
	}
	if _, err := a.m.DB.UpdateTicket(ts[0].ID, support.ID, time.Now(), func(r *valex.Request) ([]valex.AuditEntry, error) {
		r.Messages = append(r.Messages, valex.RequestMessage{At: time.Now(), FromStaff: true, AuthorID: support.ID, Text: mk.of("staffreply")})
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// oggVoice is a minimal voice note the bot downloads and sends on.
func oggVoice(t *testing.T) []byte {
	t.Helper()
	return append([]byte("OggS"), bytes.Repeat([]byte{0}, 60)...)
}

// scan reports every marker found in readable form in any file under dir
// and in the captured logs.
func scan(t *testing.T, dirs []string, logs string, marks []string) []string {
	t.Helper()
	var hits []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range marks {
				if bytes.Contains(b, []byte(m)) {
					hits = append(hits, fmt.Sprintf("%.40q in %s", m, path))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range marks {
		if strings.Contains(logs, m) {
			hits = append(hits, m+" in the logs")
		}
	}
	return hits
}

// The privacy promise end to end: two users with markers in every personal
// field; a backup; one user erased in the middle of a streamed answer; jobs
// and compaction. Then no byte Valex wrote — database, key store, every
// backup, every file in the data directory, the logs — holds the erased
// user's markers in readable form, and the other user's data still reads.
// Restoring the pre-erasure backup does not bring the erased user back.
func TestErasureReachesEveryByte(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	backupDir := t.TempDir()
	a := startApp(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) })
	dataDir := a.m.Config.DataDir

	gone := bottest.User{ID: 5005, Username: "zq-gone-username", FirstName: "zq-gone-first", LanguageCode: "en"}
	kept := bottest.User{ID: 6006, Username: "zq-kept-username", FirstName: "zq-kept-first", LanguageCode: "en"}
	goneMk, keptMk := markers{"zq-gone"}, markers{"zq-kept"}
	seedUser(t, a, aisv, gone, goneMk)
	seedUser(t, a, aisv, kept, keptMk)
	a.say(admin, "/start")
	a.breach(admin, "a lost laptop", fmt.Sprintf("%d,%d", gone.ID, kept.ID))
	a.press(admin, "Send")
	a.idle()
	a.m.Desk.Wait()

	before := filepath.Join(backupDir, "before-erasure.db")
	if _, err := a.m.DB.Backup(before); err != nil {
		t.Fatal(err)
	}

	// The erased user's wrapped key must leave keys.db's freed pages too
	// (with the master key beside it, it would still open every backup).
	goneKey := a.m.Keys.Wrapped(gone.ID)
	if len(goneKey) == 0 {
		t.Fatal("the user to erase has no key")
	}

	// Erase while an answer streams: slow tokens, /forget, "Yes".
	aisv.Script("gpt-4o-mini", aitest.Step{Text: strings.Repeat("slow "+goneMk.of("answer")+" ", 40), TokenDelay: 50 * time.Millisecond})
	seq := a.lastSeq()
	a.emu.SendText(bottest.PrivateChat(gone), gone, "stream please "+goneMk.of("chat"))
	a.waitText(gone.ID, seq, "slow")
	a.emu.SendText(bottest.PrivateChat(gone), gone, "/forget")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.emu.WaitFor(ctx, func(e bottest.Event) bool {
		return e.Seq > seq && e.ChatID == gone.ID && len(e.Keyboard) > 0 && strings.Contains(e.Keyboard[0][0].Text, "Yes, delete everything")
	}); err != nil {
		t.Fatalf("no /forget confirmation while the answer streams: %v", err)
	}
	a.press(gone, "Yes, delete everything")
	a.idle()
	if _, err := a.m.DB.User(gone.ID); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("the erased user is still there: %v", err)
	}
	if turns, _, err := a.m.DB.RecentTurns(gone.ID, 1, 100000, 0); err != nil || len(turns) != 0 {
		t.Fatalf("the running answer wrote %d turns after the erasure (%v)", len(turns), err)
	}
	if a.m.Keys.Has(gone.ID) {
		t.Fatal("the erased user's key is still in the key store")
	}

	// The daily jobs and compaction, as the running bot does them.
	for _, name := range []string{"backup", "purge_communications", "inactive_accounts"} {
		if _, err := a.m.Jobs.RunAndWait(context.Background(), name); err != nil {
			t.Fatalf("job %s: %v", name, err)
		}
	}
	if _, _, err := a.m.DB.Compact(); err != nil {
		t.Fatal(err)
	}

	// The other user is intact and readable.
	u, err := a.m.DB.User(kept.ID)
	if err != nil || u.City != keptMk.of("city") || u.Nickname != keptMk.of("nickname") {
		t.Fatalf("the kept user: %+v, %v", u, err)
	}
	data, _, err := a.m.DB.Export(kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	aiData, _, err := a.m.DB.ExportAI(kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	exported := fmt.Sprint(data, aiData)
	for _, f := range []string{"support", "feedback", "personaldata", "staffreply", "chat", "answer", "voice", "city", "email"} {
		if !strings.Contains(exported, keptMk.of(f)) {
			t.Errorf("the kept user's %s is no longer readable", f)
		}
	}
	a.stop()

	// The scan itself finds a marker where one is.
	probe := t.TempDir()
	os.WriteFile(filepath.Join(probe, "p.bin"), []byte("\x00\x01zq-probe\x00"), 0o600)
	if len(scan(t, []string{probe}, "", []string{"zq-probe"})) != 1 {
		t.Fatal("the scan misses a marker")
	}
	hits := scan(t, []string{dataDir, backupDir}, a.log.String(), append(goneMk.all(), string(goneKey)))
	// Telegram's own copy (the emulator's chat history) is not ours to
	// erase; everything Valex wrote is checked above.
	if len(hits) > 0 {
		t.Errorf("the erased user's data is still readable:\n  %s", strings.Join(hits, "\n  "))
	}

	// Restoring the backup taken before the erasure brings nothing back.
	env := envFrom(map[string]string{"VALEX_DATA_DIR": dataDir})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"restore", before}, nil, &out, &out, env); err != nil {
		t.Fatalf("restore: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "1 account(s) erased since the backup stay erased") {
		t.Errorf("restore output: %q", out.String())
	}
	cfg, _ := LoadConfig(env)
	db, err := openStoreAt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.User(gone.ID); !errors.Is(err, valex.ErrNotFound) {
		t.Errorf("the erased user came back with the restore: %v", err)
	}
	if ts, _ := db.UserTickets(gone.ID); len(ts) != 0 {
		t.Errorf("the erased user's %d tickets came back", len(ts))
	}
	goneAI, _, _ := db.ExportAI(gone.ID)
	if s := fmt.Sprint(goneAI); strings.Contains(s, goneMk.prefix) {
		t.Errorf("the erased user's conversations came back: %s", s)
	}
	if u, err := db.User(kept.ID); err != nil || u.City != keptMk.of("city") {
		t.Errorf("the kept user after restore: %+v, %v", u, err)
	}
	entries, _ := os.ReadDir(dataDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "before-restore") || strings.Contains(e.Name(), "restoring") {
			t.Errorf("restore left %s in the data directory", e.Name())
		}
	}
}
