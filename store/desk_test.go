package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

const deskDay = 24 * time.Hour

// newTicket opens a ticket the way the desk does, received at.
func newTicket(tb testing.TB, kind valex.RequestKind, userID int64, text string, at time.Time) valex.Request {
	tb.Helper()
	r, err := valex.NewRequest(kind, userID, text, at, valex.DefaultSLAPolicy())
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func mustCreate(tb testing.TB, db *DB, r valex.Request) valex.Request {
	tb.Helper()
	r, err := db.CreateTicket(r)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// transition changes a ticket's status through the store, as staff id by.
func transition(tb testing.TB, db *DB, id uint64, to valex.RequestStatus, by int64, note string, at time.Time) valex.Request {
	tb.Helper()
	r, err := db.UpdateTicket(id, by, at, func(r *valex.Request) ([]valex.AuditEntry, error) {
		return nil, r.Transition(to, by, note, at)
	})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// valuesContaining counts, per bucket, the values that contain needle, read
// through bbolt (freed pages of the file are not data).
func valuesContaining(tb testing.TB, db *DB, needle string) map[string]int {
	tb.Helper()
	hits := map[string]int{}
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(_, v []byte) error {
				if bytes.Contains(v, []byte(needle)) {
					hits[string(name)]++
				}
				return nil
			})
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return hits
}

func ticketIDs(rs []valex.Request) []uint64 {
	out := make([]uint64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestTicketRoundTripAndCodec(t *testing.T) {
	db := openTest(t, testCodec{})
	mustAccount(t, db, 42, 43)
	r := newTicket(t, valex.KindPersonalData, 42, "secret-Qx1 please delete my email", t0)
	r = mustCreate(t, db, r)
	if r.ID != 1 {
		t.Fatalf("first ticket id = %d, want 1", r.ID)
	}
	r2 := mustCreate(t, db, newTicket(t, valex.KindAccess, 43, "", t0))
	if r2.ID != 2 {
		t.Fatalf("second ticket id = %d, want 2", r2.ID)
	}
	at := t0.Add(time.Hour)
	_, err := db.UpdateTicket(r.ID, 7, at, func(r *valex.Request) ([]valex.AuditEntry, error) {
		r.Messages = append(r.Messages,
			valex.RequestMessage{At: at, FromStaff: true, AuthorID: 7, Text: "staff-Wq2 which email?"},
			valex.RequestMessage{At: at, AuthorID: 42, Text: "user-Zr4 the old one"})
		r.AssigneeID = 7
		if err := r.Transition(valex.StatusInProgress, 7, "note-Hh5", at); err != nil {
			return nil, err
		}
		return nil, r.Extend(r.DueAt.Add(10*deskDay), "reason-Jj6", 7, at, valex.DefaultSLAPolicy())
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Ticket(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != r.Text || len(got.Messages) != 2 || got.Messages[0].Text != "staff-Wq2 which email?" ||
		!got.Messages[0].FromStaff || got.Messages[1].AuthorID != 42 || got.History[0].Note != "note-Hh5" ||
		got.ExtendReason != "reason-Jj6" || !got.Extended || got.AssigneeID != 7 || got.Status != valex.StatusInProgress ||
		!got.DueAt.Equal(t0.Add(40*deskDay)) || !got.OriginalDueAt.Equal(t0.Add(30*deskDay)) || !got.ReceivedAt.Equal(t0) {
		t.Fatalf("ticket read back as %+v", got)
	}
	for _, secret := range []string{"secret-Qx1", "staff-Wq2", "user-Zr4", "note-Hh5", "reason-Jj6"} {
		if hits := valuesContaining(t, db, secret); len(hits) > 0 {
			t.Errorf("%q stored in clear in %v", secret, hits)
		}
	}
	if _, err := db.Ticket(99); !errors.Is(err, valex.ErrNotFound) {
		t.Errorf("Ticket(99) error = %v, want ErrNotFound", err)
	}
	if _, err := db.CreateTicket(got); err == nil {
		t.Error("CreateTicket accepted a ticket that has an id")
	}
}

func TestUpdateTicketRefusesRewrites(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 42)
	r := mustCreate(t, db, newTicket(t, valex.KindSupport, 42, "hello", t0))
	tests := []struct {
		name string
		fn   func(*valex.Request)
	}{
		{"other requester", func(r *valex.Request) { r.UserID = 43 }},
		{"other id", func(r *valex.Request) { r.ID = 5 }},
		{"history dropped", func(r *valex.Request) { r.History = nil }},
	}
	transition(t, db, r.ID, valex.StatusInProgress, 7, "", t0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.UpdateTicket(r.ID, 7, t0, func(r *valex.Request) ([]valex.AuditEntry, error) { tt.fn(r); return nil, nil })
			if err == nil {
				t.Fatal("update accepted")
			}
		})
	}
	// A failing fn stores nothing.
	_, err := db.UpdateTicket(r.ID, 7, t0, func(r *valex.Request) ([]valex.AuditEntry, error) {
		r.AssigneeID = 9
		return nil, r.Transition(valex.StatusNew, 7, "", t0) // illegal
	})
	if _, ok := valex.AsUserError(err); !ok {
		t.Fatalf("illegal transition error = %v, want a UserError", err)
	}
	if got, _ := db.Ticket(r.ID); got.AssigneeID != 0 {
		t.Errorf("failed update stored assignee %d", got.AssigneeID)
	}
}

func TestOpenIndexFollowsEveryChange(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 1, 2, 3)
	// Received on different days: due in that order (30 days later each).
	a := mustCreate(t, db, newTicket(t, valex.KindAccess, 1, "", t0.Add(2*deskDay)))
	b := mustCreate(t, db, newTicket(t, valex.KindSupport, 2, "b", t0))
	c := mustCreate(t, db, newTicket(t, valex.KindErasure, 3, "", t0.Add(deskDay)))
	page := func(kind valex.RequestKind, status valex.RequestStatus, offset, limit int) ([]uint64, int) {
		t.Helper()
		rs, total, err := db.OpenTickets(kind, status, offset, limit)
		if err != nil {
			t.Fatal(err)
		}
		return ticketIDs(rs), total
	}
	if got, n := page("", "", 0, 10); !slices.Equal(got, []uint64{b.ID, c.ID, a.ID}) || n != 3 {
		t.Fatalf("by due = %v (total %d), want [%d %d %d]", got, n, b.ID, c.ID, a.ID)
	}
	if got, n := page("", "", 1, 1); !slices.Equal(got, []uint64{c.ID}) || n != 3 {
		t.Fatalf("page 2 of size 1 = %v, total %d", got, n)
	}
	if got, n := page(valex.KindErasure, "", 0, 10); !slices.Equal(got, []uint64{c.ID}) || n != 1 {
		t.Fatalf("erasure filter = %v, total %d", got, n)
	}
	// The summary carries what the list shows.
	rs, _, _ := db.OpenTickets(valex.KindSupport, "", 0, 1)
	if s := rs[0]; s.UserID != 2 || s.Kind != valex.KindSupport || s.Status != valex.StatusNew ||
		!s.ReceivedAt.Equal(t0) || !s.DueAt.Equal(t0.Add(30*deskDay)) || s.Text != "" {
		t.Fatalf("summary = %+v", s)
	}

	// Take b: status and assignee show in the index.
	_, err := db.UpdateTicket(b.ID, 7, t0, func(r *valex.Request) ([]valex.AuditEntry, error) {
		r.AssigneeID = 7
		return nil, r.Transition(valex.StatusInProgress, 7, "", t0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := page("", valex.StatusInProgress, 0, 10); !slices.Equal(got, []uint64{b.ID}) {
		t.Fatalf("in_progress filter = %v", got)
	}
	if got, _ := page("", valex.StatusNew, 0, 10); !slices.Equal(got, []uint64{c.ID, a.ID}) {
		t.Fatalf("new filter = %v", got)
	}
	// Extending b moves it behind a.
	_, err = db.UpdateTicket(b.ID, 7, t0, func(r *valex.Request) ([]valex.AuditEntry, error) {
		return nil, r.Extend(r.DueAt.Add(10*deskDay), "complex", 7, t0, valex.DefaultSLAPolicy())
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := page("", "", 0, 10); !slices.Equal(got, []uint64{c.ID, a.ID, b.ID}) {
		t.Fatalf("after extension = %v", got)
	}
	// Closing removes; the per-user status follows.
	transition(t, db, c.ID, valex.StatusRejected, 7, "not possible", t0)
	transition(t, db, b.ID, valex.StatusDone, 7, "", t0)
	if got, n := page("", "", 0, 10); !slices.Equal(got, []uint64{a.ID}) || n != 1 {
		t.Fatalf("after closing = %v, total %d", got, n)
	}
	if n := bucketLen(t, db, bucketTicketsOpen); n != 1 {
		t.Fatalf("open index has %d entries, want 1", n)
	}
	st, err := db.UserTicketStatuses(3)
	if err != nil || st[c.ID] != valex.StatusRejected || len(st) != 1 {
		t.Fatalf("statuses of user 3 = %v, %v", st, err)
	}
}

// The SLA rules across the store, on a fake clock: each reminder goes out
// exactly once, also when the store is closed and opened again between
// passes, and an extension re-arms them for the new date.
func TestRemindersExactlyOnceAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "valex.db")
	db := openAt(t, path, nil)
	mustAccount(t, db, 1, 2, 3)
	r := mustCreate(t, db, newTicket(t, valex.KindAccess, 1, "", t0))                  // due t0+30d
	r2 := mustCreate(t, db, newTicket(t, valex.KindAccess, 2, "", t0.Add(20*deskDay))) // due t0+50d

	// pass runs the reminder job's logic at now and returns the keys sent.
	pass := func(db *DB, now time.Time) []string {
		t.Helper()
		var sent []string
		_, err := db.DueOpenTickets(now.Add(8*deskDay), func(r valex.Request, marks map[string]bool) error {
			for _, m := range valex.DueReminders(r, now, marks) {
				ok, err := db.ClaimReminder(r.ID, m.Key(), now)
				if err != nil {
					return err
				}
				if ok {
					sent = append(sent, fmt.Sprintf("%d:%s", r.ID, m.Key()))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return sent
	}
	due := t0.Add(30 * deskDay)
	key := func(id uint64, d int, due time.Time) string {
		if d == 0 {
			return fmt.Sprintf("%d:%s", id, valex.Reminder{Overdue: true, Due: due}.Key())
		}
		return fmt.Sprintf("%d:%s", id, valex.Reminder{DaysBefore: d, Due: due}.Key())
	}
	steps := []struct {
		name string
		now  time.Time
		want []string
	}{
		{"too early", due.Add(-8 * deskDay), nil},
		{"7 days before", due.Add(-7 * deskDay), []string{key(r.ID, 7, due)}},
		{"same day again", due.Add(-7*deskDay + time.Hour), nil},
		{"3 days before", due.Add(-3 * deskDay), []string{key(r.ID, 3, due)}},
		{"1 day before", due.Add(-deskDay + time.Minute), []string{key(r.ID, 1, due)}},
		{"overdue", due.Add(time.Second), []string{key(r.ID, 0, due)}},
		{"still overdue", due.Add(2 * deskDay), nil},
	}
	for _, s := range steps {
		got := pass(db, s.now)
		if !slices.Equal(got, s.want) {
			t.Fatalf("%s: sent %v, want %v", s.name, got, s.want)
		}
		// Reopen between every pass: the marks are on disk.
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openAt(t, path, nil)
	}

	// A second ticket, extended before its 7-day mark: the reminders follow
	// the new date.
	r3 := mustCreate(t, db, newTicket(t, valex.KindErasure, 3, "", t0.Add(40*deskDay)))
	due3 := r3.DueAt
	now := due3.Add(-7 * deskDay)
	// Ticket 2 is overdue by now and gets its one overdue alert alongside.
	if got := pass(db, now); !slices.Equal(got, []string{key(r2.ID, 0, r2.DueAt), key(r3.ID, 7, due3)}) {
		t.Fatalf("ticket 3 at 7 days: %v", got)
	}
	newDue := due3.Add(20 * deskDay)
	if _, err := db.UpdateTicket(r3.ID, 7, now, func(r *valex.Request) ([]valex.AuditEntry, error) {
		return nil, r.Extend(newDue, "complex", 7, now, valex.DefaultSLAPolicy())
	}); err != nil {
		t.Fatal(err)
	}
	if got := pass(db, newDue.Add(-7*deskDay)); !slices.Equal(got, []string{key(r3.ID, 7, newDue)}) {
		t.Fatalf("after extension: %v", got)
	}
	// Closed tickets are not visited at all.
	transition(t, db, r.ID, valex.StatusDone, 7, "", due.Add(3*deskDay))
	visited, err := db.DueOpenTickets(due.Add(100*deskDay), func(r valex.Request, _ map[string]bool) error { return nil })
	if err != nil || visited != 2 {
		t.Fatalf("visited %d open tickets, want 2: tickets %d and %d (%v)", visited, r2.ID, r3.ID, err)
	}
}

func TestReleaseReminder(t *testing.T) {
	db := openTest(t, nil)
	ok, err := db.ClaimReminder(5, "d7@1", t0)
	if err != nil || !ok {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	if ok, _ := db.ClaimReminder(5, "d7@1", t0); ok {
		t.Fatal("second claim succeeded")
	}
	if err := db.ReleaseReminder(5, "d7@1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.ClaimReminder(5, "d7@1", t0); !ok {
		t.Fatal("claim after release failed")
	}
}

// The reminder pass visits only what is due before its horizon.
func TestDueOpenTicketsVisitsOnlyDue(t *testing.T) {
	db := openTest(t, nil)
	db.bolt.NoSync = true
	for i := range 500 {
		mustAccount(t, db, int64(i+1))
		// One ticket per hour from t0: due 30 days after.
		mustCreate(t, db, newTicket(t, valex.KindSupport, int64(i+1), "x", t0.Add(time.Duration(i)*time.Hour)))
	}
	horizon := t0.Add(30*deskDay + 10*time.Hour) // the first 10 are due before it
	var seen []int64
	visited, err := db.DueOpenTickets(horizon, func(r valex.Request, _ map[string]bool) error {
		seen = append(seen, r.UserID)
		return nil
	})
	if err != nil || visited != 10 || len(seen) != 10 || seen[0] != 1 || seen[9] != 10 {
		t.Fatalf("visited %d (%v), users %v", visited, err, seen)
	}
}

func TestAuditTrailAndVerify(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 42, 43)
	r := mustCreate(t, db, newTicket(t, valex.KindErasure, 42, "delete me, text-Pp9", t0))
	other := mustCreate(t, db, newTicket(t, valex.KindSupport, 43, "hi", t0))
	at := t0.Add(time.Hour)
	_, err := db.UpdateTicket(r.ID, 7, at, func(r *valex.Request) ([]valex.AuditEntry, error) {
		r.AssigneeID = 7
		r.Messages = append(r.Messages, valex.RequestMessage{At: at, FromStaff: true, AuthorID: 7, Text: "reply-Kk8"})
		if err := r.Transition(valex.StatusOnHold, 7, "dispute", at); err != nil {
			return nil, err
		}
		return []valex.AuditEntry{{Actor: 7, Action: "custom", Detail: "items=2"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendAudit(r.ID, valex.AuditEntry{At: at, Action: valex.AuditReminded, Detail: "d7@1"}); err != nil {
		t.Fatal(err)
	}
	trail, err := db.Audit(r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range trail {
		got = append(got, e.Action+":"+e.Detail)
	}
	want := []string{"created:kind=erasure", "status:from=new,to=on_hold", "hold_placed:", "assigned:assignee=7",
		"replied:messages=1", "custom:items=2", "reminded:d7@1"}
	if !slices.Equal(got, want) {
		t.Fatalf("trail = %q\nwant    %q", got, want)
	}
	if err := valex.VerifyChain([]byte(DevAuditKey), trail); err != nil {
		t.Fatal(err)
	}
	if trail[1].Actor != 7 || !trail[1].At.Equal(at) {
		t.Errorf("derived entry actor %d at %v", trail[1].Actor, trail[1].At)
	}
	// No text of the ticket reaches the audit bucket.
	for _, s := range []string{"text-Pp9", "reply-Kk8", "dispute"} {
		if hits := valuesContaining(t, db, s); hits[string(bucketAudit)] > 0 {
			t.Errorf("audit holds %q", s)
		}
	}
	rep, err := db.VerifyAudit()
	if err != nil || !rep.OK() || rep.Tickets != 2 || rep.Entries != len(want)+1 {
		t.Fatalf("VerifyAudit = %+v, %v", rep, err)
	}
	if _, err := db.AppendAudit(99, valex.AuditEntry{At: at, Action: "x"}); !errors.Is(err, valex.ErrNotFound) {
		t.Errorf("audit for a missing ticket: %v", err)
	}
	_ = other
}

// Every way of tampering with a trail is caught.
func TestVerifyAuditCatchesTampering(t *testing.T) {
	setup := func(t *testing.T) (*DB, uint64) {
		db := openTest(t, nil)
		mustAccount(t, db, 42, 43)
		r := mustCreate(t, db, newTicket(t, valex.KindAccess, 42, "", t0))
		for i := range 3 {
			transition(t, db, r.ID, []valex.RequestStatus{valex.StatusInProgress, valex.StatusWaitingUser, valex.StatusInProgress}[i], 7, "", t0.Add(time.Duration(i+1)*time.Hour))
		}
		mustCreate(t, db, newTicket(t, valex.KindAccess, 43, "", t0)) // an intact neighbour
		return db, r.ID
	}
	edit := func(t *testing.T, db *DB, fn func(tx *bbolt.Tx) error) {
		t.Helper()
		if err := db.update(fn); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		tamper func(tx *bbolt.Tx, id uint64) error
	}{
		{"detail edited", func(tx *bbolt.Tx, id uint64) error {
			b := tx.Bucket(bucketAudit)
			k := auditKey(id, 2)
			v := bytes.Clone(b.Get(k))
			i := bytes.Index(v, []byte("in_progress"))
			copy(v[i:], "done_______")
			return b.Put(k, v)
		}},
		{"middle entry dropped", func(tx *bbolt.Tx, id uint64) error { return tx.Bucket(bucketAudit).Delete(auditKey(id, 2)) }},
		{"last entry dropped", func(tx *bbolt.Tx, id uint64) error { return tx.Bucket(bucketAudit).Delete(auditKey(id, 4)) }},
		{"entries swapped", func(tx *bbolt.Tx, id uint64) error {
			b := tx.Bucket(bucketAudit)
			v2, v3 := bytes.Clone(b.Get(auditKey(id, 2))), bytes.Clone(b.Get(auditKey(id, 3)))
			if err := b.Put(auditKey(id, 2), v3); err != nil {
				return err
			}
			return b.Put(auditKey(id, 3), v2)
		}},
		{"whole trail dropped", func(tx *bbolt.Tx, id uint64) error {
			for s := uint64(1); s <= 4; s++ {
				if err := tx.Bucket(bucketAudit).Delete(auditKey(id, s)); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketAuditHeads).Delete(ticketKey(id))
		}},
		{"garbage entry", func(tx *bbolt.Tx, id uint64) error { return tx.Bucket(bucketAudit).Put(auditKey(id, 3), []byte{9}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, id := setup(t)
			if rep, err := db.VerifyAudit(); err != nil || !rep.OK() {
				t.Fatalf("before tampering: %+v, %v", rep, err)
			}
			edit(t, db, func(tx *bbolt.Tx) error { return tt.tamper(tx, id) })
			rep, err := db.VerifyAudit()
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("report = %+v, want ticket %d broken", rep, id)
			}
			for _, p := range rep.Problems {
				if p.Log || p.Trail != id {
					t.Errorf("problem %s, want only ticket %d's", p, id)
				}
			}
		})
	}
}

func TestConsentEvents(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 42, 43)
	add := func(user int64, kind valex.ConsentKind, granted bool, at time.Time) {
		t.Helper()
		if err := db.AddConsent(valex.ConsentEvent{UserID: user, Kind: kind, Granted: granted, At: at, PolicyVersion: "v1", Source: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	add(42, valex.ConsentMarketing, true, t0)
	add(43, valex.ConsentMarketing, true, t0)
	add(42, valex.ConsentAITransfer, true, t0.Add(time.Minute))
	add(42, valex.ConsentMarketing, false, t0.Add(time.Hour))
	if err := db.AddRestriction(valex.RestrictionEvent{UserID: 42, Kind: valex.RestrictAI, Active: true, At: t0, PolicyVersion: "v1"}); err != nil {
		t.Fatal(err)
	}
	cs, rs, err := db.ConsentEvents(42)
	if err != nil || len(cs) != 3 || len(rs) != 1 {
		t.Fatalf("events = %v %v %v", cs, rs, err)
	}
	if cs[2].Granted || cs[2].PolicyVersion != "v1" || !cs[2].At.Equal(t0.Add(time.Hour)) || rs[0].PolicyVersion != "v1" {
		t.Fatalf("events read back as %+v %+v", cs, rs)
	}
	st, err := db.ConsentState(42)
	if err != nil || valex.CanSendMarketing(st) || valex.CanUseAI(st) || !st.Granted(valex.ConsentAITransfer) {
		t.Fatalf("state of 42 = %+v, %v", st, err)
	}
	if st, _ := db.ConsentState(43); !valex.CanSendMarketing(st) {
		t.Fatal("43 lost its consent")
	}
	if err := db.AddConsent(valex.ConsentEvent{UserID: 42, Kind: "bogus", At: t0}); err == nil {
		t.Fatal("unknown consent kind accepted")
	}
}

func TestHold(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 42)
	if held, _, err := db.Hold(42); held || err != nil {
		t.Fatalf("hold before any = %v, %v", held, err)
	}
	if err := db.SetHold(42, true, 3, t0); err != nil {
		t.Fatal(err)
	}
	if held, since, _ := db.Hold(42); !held || !since.Equal(t0) {
		t.Fatalf("hold = %v since %v", held, since)
	}
	if err := db.SetHold(42, false, 3, t0); err != nil {
		t.Fatal(err)
	}
	if held, _, _ := db.Hold(42); held {
		t.Fatal("hold not lifted")
	}
}

func TestNoticesAndDeliveries(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 1, 2)
	if _, ok, err := db.LatestPolicyVersion(); ok || err != nil {
		t.Fatalf("policy before any = %v, %v", ok, err)
	}
	for i, v := range []string{"2025-01", "2025-06"} {
		if err := db.AddPolicyVersion(valex.PolicyVersion{Version: v, PublishedAt: t0.Add(time.Duration(i) * time.Hour), PublishedBy: 3}); err != nil {
			t.Fatal(err)
		}
	}
	if p, ok, _ := db.LatestPolicyVersion(); !ok || p.Version != "2025-06" {
		t.Fatalf("latest = %+v", p)
	}
	n, err := db.CreateNotice(valex.Notice{Kind: valex.NoticeBreach, Text: "we were breached", UserIDs: []int64{1, 2}, CreatedAt: t0, CreatedBy: 3})
	if err != nil || n.ID != 1 {
		t.Fatalf("create = %+v, %v", n, err)
	}
	record := func(user int64, s valex.DeliveryStatus) {
		t.Helper()
		if err := db.RecordDelivery(valex.Delivery{NoticeID: n.ID, UserID: user, Status: s, At: t0}); err != nil {
			t.Fatal(err)
		}
	}
	record(1, valex.DeliveryFailed)
	record(2, valex.DeliveryBlocked)
	record(1, valex.DeliveryDelivered) // a resumed broadcast got through
	if un, _ := db.UnfinishedNotices(); len(un) != 1 {
		t.Fatalf("unfinished = %v", un)
	}
	n, err = db.FinishNotice(n.ID, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n.Totals[valex.DeliveryDelivered] != 1 || n.Totals[valex.DeliveryBlocked] != 1 || n.Totals[valex.DeliveryFailed] != 0 || n.FinishedAt.IsZero() {
		t.Fatalf("totals = %+v", n)
	}
	if un, _ := db.UnfinishedNotices(); len(un) != 0 {
		t.Fatalf("unfinished after finish = %v", un)
	}
	ds, err := db.Deliveries(n.ID)
	if err != nil || len(ds) != 2 || ds[0].UserID != 1 || ds[0].Status != valex.DeliveryDelivered || ds[1].Status != valex.DeliveryBlocked {
		t.Fatalf("deliveries = %+v, %v", ds, err)
	}
	done, _ := db.DeliveredTo(n.ID, valex.DeliveryDelivered, valex.DeliveryBlocked)
	if !done[1] || !done[2] || len(done) != 2 {
		t.Fatalf("delivered to = %v", done)
	}
	if err := db.RecordDelivery(valex.Delivery{NoticeID: 99, UserID: 1, Status: valex.DeliveryDelivered}); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("delivery of a missing notice: %v", err)
	}
}

func TestAudience(t *testing.T) {
	db := openTest(t, testCodec{})
	for _, u := range []valex.User{{ID: 5, Language: "ru", Nickname: "x"}, {ID: 2, Language: "en"}} {
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Audience()
	if err != nil || len(got) != 2 || got[0] != (valex.User{ID: 2, Language: "en"}) || got[1] != (valex.User{ID: 5, Language: "ru"}) {
		t.Fatalf("audience = %+v, %v", got, err)
	}
}

// seedUser stores one user with something in every category the store
// knows, each value marked with tag so a leak is easy to spot.
func seedUser(tb testing.TB, db *DB, id int64, tag string) (ticket valex.Request) {
	tb.Helper()
	u := valex.User{ID: id, Nickname: "nick-" + tag, City: "city-" + tag, Email: tag + "@example.org", Language: "en", CreatedAt: t0, LastActiveAt: t0}
	if err := db.PutUser(u); err != nil {
		tb.Fatal(err)
	}
	if err := db.SetState(id, "profile:city"); err != nil {
		tb.Fatal(err)
	}
	if err := db.AddConsent(valex.ConsentEvent{UserID: id, Kind: valex.ConsentMarketing, Granted: true, At: t0, PolicyVersion: "v1"}); err != nil {
		tb.Fatal(err)
	}
	if err := db.AddRestriction(valex.RestrictionEvent{UserID: id, Kind: valex.RestrictAnalytics, Active: true, At: t0, PolicyVersion: "v1"}); err != nil {
		tb.Fatal(err)
	}
	r := mustCreate(tb, db, newTicket(tb, valex.KindSupport, id, "ticket-"+tag, t0))
	r, err := db.UpdateTicket(r.ID, 7, t0, func(r *valex.Request) ([]valex.AuditEntry, error) {
		r.Messages = append(r.Messages, valex.RequestMessage{At: t0, AuthorID: id, Text: "msg-" + tag})
		return nil, r.Transition(valex.StatusWaitingUser, 7, "", t0)
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.LinkMessage(id, 77, r.ID); err != nil {
		tb.Fatal(err)
	}
	n, err := db.CreateNotice(valex.Notice{Kind: valex.NoticePolicyUpdate, Text: "v2", CreatedAt: t0})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.RecordDelivery(valex.Delivery{NoticeID: n.ID, UserID: id, Status: valex.DeliveryDelivered, At: t0}); err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestExportHoldsOnlyTheUser(t *testing.T) {
	db := openTest(t, testCodec{})
	seedUser(t, db, 42, "Aa1")
	seedUser(t, db, 43, "Bb2")
	data, counts, err := db.Export(42)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{CategoryProfile: 3, CategorySettings: 1, CategoryConsents: 1, CategoryRestrictions: 1,
		CategoryRequests: 1, CategoryMessages: 1, CategoryAudit: 3, CategoryNotices: 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("count %s = %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	js := mustJSON(t, data)
	for _, s := range []string{"nick-Aa1", "city-Aa1", "Aa1@example.org", "ticket-Aa1", "msg-Aa1", "profile:city", "restrict_analytics", "policy_update", "\"you\""} {
		if !strings.Contains(js, s) {
			t.Errorf("export lacks %q", s)
		}
	}
	if strings.Contains(js, "Bb2") || strings.Contains(js, ": 43") {
		t.Errorf("export holds another user's data:\n%s", js)
	}
	// Staff ids stay out of the requester's export.
	if strings.Contains(js, "\"7\"") || strings.Contains(js, "assignee=7") {
		t.Errorf("export names a staff member:\n%s", js)
	}
	// A user the store does not know exports as empty categories.
	_, counts, err = db.Export(44)
	if err != nil || counts[CategoryRequests] != 0 || counts[CategoryProfile] != 0 {
		t.Fatalf("unknown user export = %v, %v", counts, err)
	}
}

func TestEraseUser(t *testing.T) {
	db := openTest(t, testCodec{})
	seedUser(t, db, 42, "Aa1")
	seedUser(t, db, 43, "Bb2")
	er := mustCreate(t, db, newTicket(t, valex.KindErasure, 42, "", t0.Add(time.Hour)))
	at := t0.Add(2 * time.Hour)
	counts, err := db.EraseUser(42, er.ID, at, map[string]int{"conversations": 5})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{CategoryProfile: 3, CategorySettings: 1, CategoryConsents: 1, CategoryRestrictions: 1,
		CategoryRequests: 2, CategoryMessages: 1, CategoryNotices: 1, "conversations": 5}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("erased %s = %d, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
	if _, err := db.User(42); !errors.Is(err, valex.ErrNotFound) {
		t.Errorf("user still there: %v", err)
	}
	if hits := valuesContaining(t, db, "Aa1"); len(hits) > 0 {
		t.Errorf("user 42's values still stored in %v", hits)
	}
	if st, _ := db.State(42); st != "" {
		t.Errorf("dialog state still stored: %q", st)
	}
	if hits := keysContaining(t, db, idKey(42)); len(hits) > 0 {
		t.Errorf("keys still name user 42: %v", hits)
	}
	// The other user is untouched.
	if _, counts, _ := db.Export(43); counts[CategoryRequests] != 1 || counts[CategoryMessages] != 1 || counts[CategoryProfile] != 3 {
		t.Errorf("user 43 after 42's erasure: %v", counts)
	}
	// The tickets stay, anonymized and closed, with their trail.
	got, err := db.Ticket(er.ID)
	if err != nil || got.UserID != 0 || got.Status != valex.StatusDone || !got.ClosedAt.Equal(at) {
		t.Fatalf("erasure ticket after erasure = %+v, %v", got, err)
	}
	trail, _ := db.Audit(er.ID)
	last := trail[len(trail)-2]
	if last.Action != valex.AuditErased || !strings.Contains(last.Detail, "conversations=5") || !strings.Contains(last.Detail, "requests=2") {
		t.Errorf("erasure audit = %+v", trail)
	}
	if rep, err := db.VerifyAudit(); err != nil || !rep.OK() {
		t.Fatalf("audit after erasure: %+v, %v", rep, err)
	}
	if rs, n, _ := db.OpenTickets("", "", 0, 10); n != 1 || rs[0].UserID != 43 {
		t.Errorf("open tickets after erasure = %+v", rs)
	}
	// Erasing again is harmless; a ticket of someone else is refused.
	if _, err := db.EraseUser(42, er.ID, at, nil); err == nil {
		t.Error("erasure with a ticket no longer the user's accepted")
	}
}

func TestLinkedTicket(t *testing.T) {
	db := openTest(t, nil)
	r := seedUser(t, db, 42, "Aa1")
	if id, err := db.LinkedTicket(42, 77); err != nil || id != r.ID {
		t.Fatalf("linked = %d, %v; want %d", id, err, r.ID)
	}
	for _, k := range []struct {
		chat int64
		msg  int
	}{{42, 78}, {43, 77}} {
		if id, err := db.LinkedTicket(k.chat, k.msg); err != nil || id != 0 {
			t.Errorf("LinkedTicket(%d, %d) = %d, %v", k.chat, k.msg, id, err)
		}
	}
	er := mustCreate(t, db, newTicket(t, valex.KindErasure, 42, "", t0))
	if _, err := db.EraseUser(42, er.ID, t0, nil); err != nil {
		t.Fatal(err)
	}
	if id, _ := db.LinkedTicket(42, 77); id != 0 {
		t.Error("erasure kept the link from the user's chat")
	}
}

func TestEraseUserRefusesHeldTicket(t *testing.T) {
	db := openTest(t, nil)
	r := seedUser(t, db, 42, "Aa1")
	transition(t, db, r.ID, valex.StatusInProgress, 7, "", t0)
	transition(t, db, r.ID, valex.StatusOnHold, 7, "dispute", t0)
	er := mustCreate(t, db, newTicket(t, valex.KindErasure, 42, "", t0))
	if _, err := db.EraseUser(42, er.ID, t0, nil); err == nil {
		t.Fatal("erasure went around a ticket on hold")
	}
	if _, err := db.User(42); err != nil {
		t.Fatalf("failed erasure removed the user: %v", err)
	}
}

func TestDeskBucketsCreatedOnExistingFile(t *testing.T) {
	// A file from before the desk gets the new buckets at open: no migration.
	path := filepath.Join(t.TempDir(), "old.db")
	b, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucketUsers); return err }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	db := openAt(t, path, nil)
	mustAccount(t, db, 1)
	mustCreate(t, db, newTicket(t, valex.KindAccess, 1, "", t0))
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestPlaceHoldSealsTheReasonAndRefusesTwice(t *testing.T) {
	dir := t.TempDir()
	_, db := openKeyed(t, dir)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.PlaceHold(404, 9, now, "x"); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("hold on a user without an account: %v", err)
	}
	mustAccount(t, db, 42)
	if placed, err := db.PlaceHold(42, 9, now, "court-order-Zq81"); err != nil || !placed {
		t.Fatalf("first hold: %v, %v", placed, err)
	}
	if placed, err := db.PlaceHold(42, 9, now.Add(time.Hour), "again"); err != nil || placed {
		t.Fatalf("second hold: %v, %v", placed, err)
	}
	if held, since, err := db.Hold(42); err != nil || !held || !since.Equal(now) {
		t.Fatalf("hold = %v since %v, %v", held, since, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if fileHas(t, filepath.Join(dir, "valex.db"), "court-order-Zq81") {
		t.Fatal("the hold's reason is in the file in plain text")
	}
}
