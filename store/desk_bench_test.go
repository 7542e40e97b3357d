package store

import (
	"fmt"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// seedTickets stores n tickets made by mk in large transactions (setup only:
// the desk itself writes one ticket per transaction).
func seedTickets(tb testing.TB, db *DB, n int, mk func(i int) valex.Request) {
	tb.Helper()
	const batch = 5000
	for start := 0; start < n; start += batch {
		err := db.update(func(tx *bbolt.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				r := mk(i)
				id, err := tx.Bucket(bucketTickets).NextSequence()
				if err != nil {
					return err
				}
				r.ID = id
				if err := db.putTicket(tx, nil, r); err != nil {
					return err
				}
				if _, err := db.appendAudit(tx, valex.AuditEntry{TicketID: id, At: r.ReceivedAt, Action: valex.AuditCreated}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkOpenTicketsPage is the store half of a /requests page: 10,000
// open tickets, pages of 10 in due order, plain and filtered.
func BenchmarkOpenTicketsPage(b *testing.B) {
	db := openTest(b, testCodec{})
	kinds := valex.RequestKinds
	seedTickets(b, db, 10_000, func(i int) valex.Request {
		r := newTicket(b, kinds[i%len(kinds)], int64(i%3000+1), "some text of the request", t0.Add(time.Duration(i)*time.Minute))
		if i%4 == 1 {
			r.Status = valex.StatusInProgress
			r.AssigneeID = 7
		}
		return r
	})
	cases := []struct {
		name   string
		kind   valex.RequestKind
		status valex.RequestStatus
		offset int
	}{
		{"first", "", "", 0},
		{"page_500", "", "", 4990},
		{"kind_erasure", valex.KindErasure, "", 0},
		{"status_in_progress_page_100", "", valex.StatusInProgress, 990},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				page, total, err := db.OpenTickets(c.kind, c.status, c.offset, 10)
				if err != nil || len(page) != 10 || total == 0 {
					b.Fatalf("page %d of %d: %v", len(page), total, err)
				}
			}
		})
	}
}

// BenchmarkReminderPass runs the reminder job's store work over 100,000
// open tickets of which 100 are due within the 7-day horizon: it must
// visit those 100, not the 100,000.
func BenchmarkReminderPass(b *testing.B) {
	db := openTest(b, nil)
	now := t0.Add(400 * deskDay)
	horizon := now.Add(7*deskDay + time.Second)
	seedTickets(b, db, 100_000, func(i int) valex.Request {
		received := now.Add(time.Duration(i-99) * time.Hour) // due 30 days after
		if i < 100 {
			received = horizon.Add(-30*deskDay - time.Duration(100-i)*time.Minute) // due just inside the horizon
		}
		return newTicket(b, valex.KindAccess, int64(i+1), "", received)
	})
	visited, sent := 0, 0
	for b.Loop() {
		n, err := db.DueOpenTickets(horizon, func(r valex.Request, marks map[string]bool) error {
			for _, m := range valex.DueReminders(r, now, marks) {
				ok, err := db.ClaimReminder(r.ID, m.Key(), now)
				if err != nil {
					return err
				}
				if ok {
					sent++
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		visited = n
	}
	if visited != 100 || sent != 100 {
		b.Fatalf("visited %d, sent %d reminders; want 100 and 100", visited, sent)
	}
	b.ReportMetric(float64(visited), "visited/op")
}

// BenchmarkExport is /mydata's store work for a user with 100 tickets of
// 100 messages each (10,000 stored messages), through the codec.
func BenchmarkExport(b *testing.B) {
	db := openTest(b, testCodec{})
	const user = 42
	if err := db.PutUser(valex.User{ID: user, Nickname: "n", Language: "en", CreatedAt: t0, LastActiveAt: t0}); err != nil {
		b.Fatal(err)
	}
	seedTickets(b, db, 100, func(i int) valex.Request {
		r := newTicket(b, valex.KindSupport, user, fmt.Sprintf("ticket %d", i), t0)
		for j := range 100 {
			r.Messages = append(r.Messages, valex.RequestMessage{At: t0, FromStaff: j%2 == 1, AuthorID: user,
				Text: fmt.Sprintf("message %d of ticket %d, with a sentence or two of ordinary length to export", j, i)})
		}
		return r
	})
	seedTickets(b, db, 100, func(i int) valex.Request { return newTicket(b, valex.KindSupport, user+1, "other", t0) })
	for b.Loop() {
		_, counts, err := db.Export(user)
		if err != nil || counts[CategoryMessages] != 10_000 || counts[CategoryRequests] != 100 {
			b.Fatalf("export: %v, %v", counts, err)
		}
	}
}
