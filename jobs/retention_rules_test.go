package jobs

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
)

var (
	_ FeedbackTickets = (*store.DB)(nil)
	_ TurnPurger      = (*store.DB)(nil)
)

const day = 24 * time.Hour

// feedback stores a feedback ticket from userID received at `at`, then
// lets more change it (a staff answer, a hold); more may be nil.
func feedback(t *testing.T, db *store.DB, userID int64, kind valex.RequestKind, at time.Time, more func(*valex.Request) error) uint64 {
	t.Helper()
	r, err := valex.NewRequest(kind, userID, "feedback text", at, valex.DefaultSLAPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if r, err = db.CreateTicket(r); err != nil {
		t.Fatal(err)
	}
	if more != nil {
		_, err = db.UpdateTicket(r.ID, 99, at, func(r *valex.Request) ([]valex.AuditEntry, error) { return nil, more(r) })
		if err != nil {
			t.Fatal(err)
		}
	}
	return r.ID
}

func status(t *testing.T, db *store.DB, id uint64) valex.RequestStatus {
	t.Helper()
	r, err := db.Ticket(id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// Feedback closes on its own (answered at once, unanswered after 30 days,
// kept one day before), then falls under the 1-year communications purge
// (kept one day before, purged one day after).
func TestFeedbackClosesOnItsOwnThenIsPurgedAfterAYear(t *testing.T) {
	db := openStore(t)
	t0 := time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)
	must(t, db.PutUser(valex.User{ID: 1, Language: "en", LastActiveAt: t0}))
	must(t, db.PutUser(valex.User{ID: 2, Language: "en", LastActiveAt: t0}))
	policy := valex.DefaultRetentionPolicy()
	quiet := feedback(t, db, 1, valex.KindFeedback, t0, nil)
	answered := feedback(t, db, 1, valex.KindFeedback, t0, func(r *valex.Request) error {
		r.Messages = append(r.Messages, valex.RequestMessage{At: t0.Add(time.Hour), FromStaff: true, AuthorID: 99, Text: "thanks!"})
		return nil
	})
	userWroteLater := feedback(t, db, 1, valex.KindFeedback, t0, func(r *valex.Request) error {
		r.Messages = append(r.Messages, valex.RequestMessage{At: t0.Add(10 * day), AuthorID: 1, Text: "one more thing"})
		return nil
	})
	// A dispute holds all of user 2's data, so it is someone else's ticket.
	held := feedback(t, db, 2, valex.KindFeedback, t0, func(r *valex.Request) error {
		return r.Transition(valex.StatusOnHold, 99, "dispute", t0)
	})
	support := feedback(t, db, 1, valex.KindSupport, t0, nil)

	run := func(at time.Time) string {
		t.Helper()
		s, err := CloseFeedback(db, policy, fixedClock{at})(context.Background())
		if err != nil {
			t.Fatalf("run at %s: %v", at, err)
		}
		return s
	}
	// The next run after the answer closes the answered one only.
	if s := run(t0.Add(2 * time.Hour)); s != "visited 4 open feedback tickets: closed 1 answered, 0 unanswered for 30d" {
		t.Fatalf("first run: %q", s)
	}
	if status(t, db, answered) != valex.StatusDone || status(t, db, quiet) != valex.StatusNew {
		t.Fatal("the answered ticket did not close, or another one did")
	}
	// A day before the 30 days: kept open.
	run(t0.Add(29 * day))
	if status(t, db, quiet) != valex.StatusNew {
		t.Fatal("closed a day early")
	}
	// A day after: closed by the system, without a word to the user.
	closedAt := t0.Add(31 * day)
	if s := run(closedAt); !strings.Contains(s, "closed 0 answered, 1 unanswered") {
		t.Fatalf("run after 30 days: %q", s)
	}
	r, err := db.Ticket(quiet)
	if err != nil {
		t.Fatal(err)
	}
	last := r.History[len(r.History)-1]
	if r.Status != valex.StatusDone || !r.ClosedAt.Equal(closedAt) || last.By != 0 || last.To != valex.StatusDone {
		t.Fatalf("closed ticket: %+v", r)
	}
	trail, err := db.Audit(quiet)
	if err != nil {
		t.Fatal(err)
	}
	if e := trail[len(trail)-1]; e.Action != valex.AuditStatus || e.Actor != 0 || e.Detail != "from=new,to=done" {
		t.Fatalf("last audit entry %+v, want a status change by the system", e)
	}
	// The user's later message restarted the 30 days; hold and support stay.
	if status(t, db, userWroteLater) != valex.StatusNew || status(t, db, held) != valex.StatusOnHold || status(t, db, support) != valex.StatusNew {
		t.Fatal("a ticket that must stay open was closed")
	}
	run(t0.Add(41 * day))
	if status(t, db, userWroteLater) != valex.StatusDone || status(t, db, held) != valex.StatusOnHold {
		t.Fatal("30 days after the user's last message: not closed, or the held one was")
	}

	// The communications purge: one year after closing.
	purge := func(at time.Time) string {
		t.Helper()
		s, err := PurgeCommunications(db, policy, fixedClock{at})(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	purge(closedAt.AddDate(1, 0, -1))
	if r, _ := db.Ticket(quiet); r.Text == "" {
		t.Fatal("purged a day before the year was over")
	}
	purge(closedAt.AddDate(1, 0, 1))
	if r, _ := db.Ticket(quiet); r.Text != "" || r.UserID != 0 {
		t.Fatalf("kept a day after the year was over: %+v", r)
	}
	if rep, err := db.VerifyAudit(); err != nil || !rep.OK() {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}

// A configured conversation period deletes turns (voice transcripts are
// turns) one day after it ends and keeps them one day before; with the
// default nothing is ever deleted by the job.
func TestPurgeConversationsAtItsBoundary(t *testing.T) {
	db := openStore(t)
	t0 := time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)
	must(t, db.PutUser(valex.User{ID: 1, Language: "en", LastActiveAt: t0}))
	save := func(conv uint64, text string, at time.Time) {
		t.Helper()
		must(t, db.SaveExchange(1, conv, []valex.Turn{
			{Role: valex.TurnUser, Text: text, Tokens: 3, At: at},
			{Role: valex.TurnAssistant, Text: "answer", Tokens: 3, At: at},
		}, nil))
	}
	save(1, "old question", t0)
	save(1, "transcript of a voice note", t0.Add(time.Hour))
	save(2, "newer question", t0.Add(30*day))
	count := func() int {
		t.Helper()
		n := 0
		for _, conv := range []uint64{1, 2} {
			turns, _, err := db.RecentTurns(1, conv, 1<<30, 0)
			must(t, err)
			n += len(turns)
		}
		return n
	}

	kept := PurgeConversations(db, valex.DefaultRetentionPolicy(), fixedClock{t0.AddDate(10, 0, 0)})
	if s, err := kept(context.Background()); err != nil || !strings.Contains(s, "kept until the user deletes them") || count() != 6 {
		t.Fatalf("default policy: %q, %v, %d turns left", s, err, count())
	}

	p, err := valex.ParsePeriod("90d")
	must(t, err)
	policy := valex.RetentionPolicy{Conversations: p}
	run := func(at time.Time) string {
		t.Helper()
		s, err := PurgeConversations(db, policy, fixedClock{at})(context.Background())
		must(t, err)
		return s
	}
	if s := run(t0.Add(89 * day)); s != "visited 0 expired turns: deleted 0 older than 90d" || count() != 6 {
		t.Fatalf("a day before: %q, %d turns", s, count())
	}
	if s := run(t0.Add(91 * day)); s != "visited 4 expired turns: deleted 4 older than 90d" || count() != 2 {
		t.Fatalf("a day after: %q, %d turns", s, count())
	}
	if turns, _, _ := db.RecentTurns(1, 2, 1<<30, 0); len(turns) != 2 || turns[0].Text != "newer question" {
		t.Fatalf("the newer conversation: %+v", turns)
	}
	if s := run(t0.Add(121 * day)); s != "visited 2 expired turns: deleted 2 older than 90d" || count() != 0 {
		t.Fatalf("its turn came: %q, %d turns", s, count())
	}
}

// Payment records stay the whole legal period (5 years) and go one day
// after it, with the payer's account or without it.
func TestPurgePaymentsAtTheFiveYearBoundary(t *testing.T) {
	db := openStore(t)
	must(t, db.PutUser(valex.User{ID: 1, Language: "en"}))
	paid := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	if _, _, err := db.RecordPayment(valex.Payment{ChargeID: "c1", UserID: 1, Method: valex.PaymentStars, Product: "p",
		Amount: 100, Currency: "XTR", Status: valex.PaymentPaid, At: paid}); err != nil {
		t.Fatal(err)
	}
	policy := valex.DefaultRetentionPolicy()
	for _, tc := range []struct {
		at   time.Time
		kept bool
	}{
		{paid.AddDate(5, 0, -1), true},
		{paid.AddDate(5, 0, 1), false},
	} {
		if _, err := PurgePayments(db, policy, fixedClock{tc.at})(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, err := db.Payment("c1")
		if kept := err == nil; kept != tc.kept {
			t.Fatalf("at %s: kept %v, want %v", tc.at.Format("2006-01-02"), kept, tc.kept)
		}
	}
}
