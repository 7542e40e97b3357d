package jobs

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
)

var (
	_ CommunicationPurger = (*store.DB)(nil)
	_ InactiveUsers       = (*store.DB)(nil)
)

// closedTicket stores a support ticket from userID with a message, closed
// (done or rejected) at closedAt; a zero closedAt leaves it open.
func closedTicket(t *testing.T, db *store.DB, userID int64, text string, received, closedAt time.Time, to valex.RequestStatus) uint64 {
	t.Helper()
	r, err := valex.NewRequest(valex.KindSupport, userID, text, received, valex.DefaultSLAPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if r, err = db.CreateTicket(r); err != nil {
		t.Fatal(err)
	}
	_, err = db.UpdateTicket(r.ID, 0, received, func(r *valex.Request) ([]valex.AuditEntry, error) {
		r.Messages = append(r.Messages, valex.RequestMessage{At: received, AuthorID: userID, Text: text + " again"})
		if closedAt.IsZero() {
			return nil, nil
		}
		return nil, r.Transition(to, 99, "answered "+text, closedAt)
	})
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

// askCounter counts the tickets the store reads from the closed index.
type askCounter struct {
	*store.DB
	asked int
}

func (c *askCounter) PurgeClosedTickets(at time.Time, expired func(time.Time) bool) (int, int, int, error) {
	return c.DB.PurgeClosedTickets(at, func(closedAt time.Time) bool { c.asked++; return expired(closedAt) })
}

func TestPurgeCommunicationsErasesOnlyExpiredUnheldClosedTickets(t *testing.T) {
	db := openStore(t)
	now := time.Date(2026, 11, 24, 4, 15, 0, 0, time.UTC)
	for _, id := range []int64{1, 2, 3} {
		must(t, db.PutUser(valex.User{ID: id, Language: "en", LastActiveAt: now}))
	}
	must(t, db.SetHold(2, true, 99, now.AddDate(-2, 0, 0)))
	old := now.AddDate(-3, 0, 0)
	ids := map[string]uint64{
		"expired done":     closedTicket(t, db, 1, "expired-done", old, now.AddDate(-1, 0, -1), valex.StatusDone),
		"expired rejected": closedTicket(t, db, 3, "expired-rejected", old, now.AddDate(-1, -2, 0), valex.StatusRejected),
		"younger":          closedTicket(t, db, 1, "younger", old, now.AddDate(0, -11, 0), valex.StatusDone),
		"recent":           closedTicket(t, db, 3, "recent", old, now.AddDate(0, -1, 0), valex.StatusRejected),
		"open":             closedTicket(t, db, 1, "open", old, time.Time{}, ""),
		"held":             closedTicket(t, db, 2, "held", old, now.AddDate(-2, 0, 0), valex.StatusDone),
		"just expired":     closedTicket(t, db, 3, "just-expired", old, now.AddDate(-1, 0, 0), valex.StatusDone),
	}
	counted := &askCounter{DB: db}
	run := PurgeCommunications(counted, valex.DefaultRetentionPolicy(), fixedClock{now})
	summary, err := run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The four expired, then the younger one, where the walk stops; the
	// recent one is never read.
	if counted.asked != 5 {
		t.Fatalf("read %d closed tickets, want 5", counted.asked)
	}
	if want := "visited 4 expired tickets: purged 3, kept 1 under a legal hold"; summary != want {
		t.Fatalf("summary %q, want %q", summary, want)
	}
	for name, id := range ids {
		r, err := db.Ticket(id)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		purged := strings.HasPrefix(name, "expired") || name == "just expired"
		if purged {
			if r.UserID != 0 || r.Text != "" || r.Resolution != "" || r.RejectReason != "" || r.Messages[0].Text != "" || r.Messages[0].AuthorID != 0 {
				t.Errorf("%s: personal data left after purge: %+v", name, r)
			}
			if r.Status.Open() || r.ClosedAt.IsZero() {
				t.Errorf("%s: bookkeeping lost: %+v", name, r)
			}
			trail, err := db.Audit(id)
			if err != nil || trail[len(trail)-1].Action != valex.AuditPurged || trail[len(trail)-1].Detail != "messages=1" {
				t.Errorf("%s: audit trail does not end with purged: %+v, %v", name, trail, err)
			}
			continue
		}
		if r.UserID == 0 || r.Text == "" || r.Messages[0].Text == "" {
			t.Errorf("%s: kept ticket lost its data: %+v", name, r)
		}
	}
	rep, err := db.VerifyAudit()
	if err != nil || !rep.OK() || rep.Tickets != len(ids) {
		t.Fatalf("audit after purge: %+v, %v", rep, err)
	}
	// The user's own view no longer lists the purged tickets.
	mine, err := db.UserTickets(3)
	if err != nil || len(mine) != 1 || mine[0].ID != ids["recent"] {
		t.Fatalf("user 3's tickets after the purge: %+v, %v", mine, err)
	}

	// Idempotent, and only the held ticket is read again: the younger
	// ones are never visited.
	if summary, err = run(context.Background()); err != nil || summary != "visited 1 expired tickets: purged 0, kept 1 under a legal hold" {
		t.Fatalf("second run: %q, %v", summary, err)
	}
	// The hold lifted, the held ticket goes too.
	must(t, db.SetHold(2, false, 99, now))
	if summary, err = run(context.Background()); err != nil || summary != "visited 1 expired tickets: purged 1, kept 0 under a legal hold" {
		t.Fatalf("run after the hold: %q, %v", summary, err)
	}
	// A year after the younger one closed, it goes as well.
	later := PurgeCommunications(db, valex.DefaultRetentionPolicy(), fixedClock{now.AddDate(0, 1, 0)})
	if summary, err = later(context.Background()); err != nil || summary != "visited 1 expired tickets: purged 1, kept 0 under a legal hold" {
		t.Fatalf("a month later: %q, %v", summary, err)
	}
	if rep, err := db.VerifyAudit(); err != nil || !rep.OK() {
		t.Fatalf("audit at the end: %+v, %v", rep, err)
	}
}

// notices records the inactivity notices sent.
type notices struct {
	sent []string // "id:lang"
	fail bool
}

func (n *notices) notify(_ context.Context, userID int64, lang string, deleteAfter time.Time) error {
	if n.fail {
		return errors.New("network down")
	}
	if deleteAfter.IsZero() {
		return errors.New("no deletion date")
	}
	n.sent = append(n.sent, strings.Join([]string{itoa(userID), lang}, ":"))
	return nil
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

// storeEraser erases an account as /forget does: an erasure request, then
// EraseUser.
func storeEraser(db *store.DB, erased *[]int64) AccountEraser {
	return func(_ context.Context, userID int64, at time.Time) error {
		r, err := valex.NewRequest(valex.KindErasure, userID, "", at, valex.DefaultSLAPolicy())
		if err != nil {
			return err
		}
		if r, err = db.CreateTicket(r); err != nil {
			return err
		}
		if _, err := db.EraseUser(userID, r.ID, at, nil); err != nil {
			return err
		}
		*erased = append(*erased, userID)
		return nil
	}
}

func TestInactiveAccountsNotifyThenEraseUnlessBack(t *testing.T) {
	db := openStore(t)
	now := time.Date(2026, 11, 24, 4, 45, 0, 0, time.UTC)
	users := []valex.User{
		{ID: 10, Language: "en", LastActiveAt: now.AddDate(0, -23, 0)}, // recent enough
		{ID: 20, Language: "ru", LastActiveAt: now.AddDate(0, -25, 0)}, // notified, then erased
		{ID: 30, Language: "en", LastActiveAt: now.AddDate(0, -25, 0)}, // comes back
		{ID: 40, Language: "en", LastActiveAt: now.AddDate(-3, 0, 0)},  // held
	}
	for _, u := range users {
		u.CreatedAt = now.AddDate(-4, 0, 0)
		must(t, db.PutUser(u))
	}
	must(t, db.SetHold(40, true, 99, now))
	var n notices
	var erased []int64
	run := func(at time.Time) string {
		t.Helper()
		s, err := InactiveAccounts(db, n.notify, storeEraser(db, &erased), valex.DefaultRetentionPolicy(), fixedClock{at})(context.Background())
		if err != nil {
			t.Fatalf("run at %s: %v", at, err)
		}
		return s
	}

	if s := run(now); s != "visited 3 inactive users: notified 2, erased 0, skipped 1 under a legal hold, forgot 0 notices" {
		t.Fatalf("first run: %q", s)
	}
	if got := strings.Join(n.sent, ","); got != "20:ru,30:en" {
		t.Fatalf("notices %q, want 20:ru,30:en", got)
	}
	// A second run sends nothing new and erases nobody (grace not over).
	run(now.Add(24 * time.Hour))
	if len(n.sent) != 2 || len(erased) != 0 {
		t.Fatalf("second run: notices %v, erased %v", n.sent, erased)
	}
	// User 30 comes back.
	back := now.AddDate(0, 0, 2)
	must(t, db.TouchUser(30, back))

	// The day before the grace period ends: nobody goes yet.
	run(now.AddDate(0, 0, 29))
	if len(erased) != 0 {
		t.Fatalf("erased before the grace period ended: %v", erased)
	}
	// The erasure deletes user 20's notice with the account: nothing is
	// left for the prune to forget.
	if s := run(now.AddDate(0, 0, 30)); !strings.Contains(s, "erased 1") || !strings.Contains(s, "forgot 0 notices") {
		t.Fatalf("after the grace period: %q", s)
	}
	if len(erased) != 1 || erased[0] != 20 {
		t.Fatalf("erased %v, want [20]", erased)
	}
	if _, err := db.User(20); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("user 20 after erasure: %v", err)
	}
	for _, id := range []int64{10, 30, 40} {
		if _, err := db.User(id); err != nil {
			t.Fatalf("user %d: %v", id, err)
		}
	}
	if len(n.sent) != 2 {
		t.Fatalf("notices after the grace period: %v", n.sent)
	}

	// Another 24 months of silence: user 30 is told again (and user 10 for
	// the first time); the held user never is.
	n.sent = nil
	run(back.AddDate(0, 24, 1))
	if got := strings.Join(n.sent, ","); got != "10:en,30:en" {
		t.Fatalf("next cycle notices %q, want 10:en,30:en", got)
	}
	if rep, err := db.VerifyAudit(); err != nil || !rep.OK() {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}

func TestInactiveAccountsFailedNoticeIsRetriedAndNobodyErased(t *testing.T) {
	db := openStore(t)
	now := time.Date(2026, 11, 24, 4, 45, 0, 0, time.UTC)
	must(t, db.PutUser(valex.User{ID: 20, Language: "en", LastActiveAt: now.AddDate(0, -25, 0)}))
	n := notices{fail: true}
	var erased []int64
	job := func(at time.Time) (string, error) {
		return InactiveAccounts(db, n.notify, storeEraser(db, &erased), valex.DefaultRetentionPolicy(), fixedClock{at})(context.Background())
	}
	if _, err := job(now); err == nil {
		t.Fatal("a failed notice did not fail the run")
	}
	if _, err := job(now.AddDate(0, 2, 0)); err == nil || len(erased) != 0 {
		t.Fatalf("erased without a notice: %v, %v", erased, err)
	}
	n.fail = false
	if s, err := job(now.AddDate(0, 2, 1)); err != nil || !strings.Contains(s, "notified 1") {
		t.Fatalf("retry: %q, %v", s, err)
	}
}
