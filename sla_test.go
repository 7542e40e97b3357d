package valex_test

import (
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

func TestNewRequestDue(t *testing.T) {
	custom := valex.SLAPolicy{
		Default:      30 * day,
		PerKind:      map[valex.RequestKind]time.Duration{valex.KindErasure: 14 * day, valex.KindSupport: -day},
		MaxExtension: 60 * day,
	}
	tests := []struct {
		name    string
		kind    valex.RequestKind
		policy  valex.SLAPolicy
		wantDue time.Time
	}{
		{"default 30 days", valex.KindAccess, valex.DefaultSLAPolicy(), time.Date(2025, time.April, 9, 12, 0, 0, 0, time.UTC)},
		{"per-kind override", valex.KindErasure, custom, time.Date(2025, time.March, 24, 12, 0, 0, 0, time.UTC)},
		{"kind without override", valex.KindAccess, custom, t0.Add(30 * day)},
		{"negative override means default", valex.KindSupport, custom, t0.Add(30 * day)},
		{"zero policy still 30 days", valex.KindAccess, valex.SLAPolicy{}, t0.Add(30 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := valex.NewRequest(tt.kind, 7, "please", t0, tt.policy)
			wantKey(t, err, "")
			if !r.DueAt.Equal(tt.wantDue) || !r.OriginalDueAt.Equal(tt.wantDue) {
				t.Errorf("DueAt = %v, OriginalDueAt = %v, want %v", r.DueAt, r.OriginalDueAt, tt.wantDue)
			}
			if r.Status != valex.StatusNew || r.UserID != 7 || r.Kind != tt.kind || !r.ReceivedAt.Equal(t0) || r.Extended {
				t.Errorf("request = %+v", r)
			}
		})
	}
}

func TestNewRequestDueIgnoresZone(t *testing.T) {
	// The same instant seen from another zone gets the same deadline.
	zone := time.FixedZone("UTC+4", 4*3600)
	r, err := valex.NewRequest(valex.KindAccess, 1, "", t0.In(zone), valex.DefaultSLAPolicy())
	wantKey(t, err, "")
	if !r.DueAt.Equal(t0.Add(30 * day)) {
		t.Errorf("DueAt = %v, want %v", r.DueAt, t0.Add(30*day))
	}
}

func TestNewRequestInput(t *testing.T) {
	tests := []struct {
		name     string
		kind     valex.RequestKind
		text     string
		wantKey  string
		wantText string
	}{
		{"one-tap access without text", valex.KindAccess, "", "", ""},
		{"text trimmed", valex.KindPersonalData, "  delete my city \n", "", "delete my city"},
		{"personal data needs text", valex.KindPersonalData, "  ", "desk.text_required", ""},
		{"support needs text", valex.KindSupport, "", "desk.text_required", ""},
		{"feedback needs text", valex.KindFeedback, "", "desk.text_required", ""},
		{"unknown kind", "delete_everything", "x", "desk.unknown_kind", ""},
		{"at the limit", valex.KindSupport, strings.Repeat("я", valex.MaxRequestTextLen), "", strings.Repeat("я", valex.MaxRequestTextLen)},
		{"too long", valex.KindSupport, strings.Repeat("я", valex.MaxRequestTextLen+1), "desk.too_long", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := valex.NewRequest(tt.kind, 1, tt.text, t0, valex.DefaultSLAPolicy())
			wantKey(t, err, tt.wantKey)
			if err == nil && r.Text != tt.wantText {
				t.Errorf("Text = %q, want %q", r.Text, tt.wantText)
			}
		})
	}
}

func TestExtend(t *testing.T) {
	policy := valex.DefaultSLAPolicy() // 30 days, extensions up to 60 days past the original
	due := t0.Add(30 * day)
	limit := due.Add(60 * day)
	fresh := func() valex.Request {
		r, err := valex.NewRequest(valex.KindAccess, 1, "", t0, policy)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	extended := fresh()
	if err := extended.Extend(due.Add(10*day), "complex", 9, t0.Add(day), policy); err != nil {
		t.Fatal(err)
	}
	done := fresh()
	done.Status = valex.StatusDone

	tests := []struct {
		name    string
		r       valex.Request
		newDue  time.Time
		reason  string
		at      time.Time
		policy  valex.SLAPolicy
		wantKey string
	}{
		{"ok", fresh(), due.Add(30 * day), "many systems to search", t0.Add(5 * day), policy, ""},
		{"ok up to the limit", fresh(), limit, "complex", due.Add(-time.Second), policy, ""},
		{"second extension refused", extended, due.Add(20 * day), "more", t0.Add(2 * day), policy, "desk.already_extended"},
		{"reason required", fresh(), due.Add(day), "  ", t0.Add(day), policy, "desk.reason_required"},
		{"reason too long", fresh(), due.Add(day), strings.Repeat("x", valex.MaxRequestTextLen+1), t0.Add(day), policy, "desk.too_long"},
		{"at the due moment is too late", fresh(), due.Add(day), "late", due, policy, "desk.extend_too_late"},
		{"after due refused", fresh(), due.Add(10 * day), "late", due.Add(time.Hour), policy, "desk.extend_too_late"},
		{"too far refused", fresh(), limit.Add(time.Second), "complex", t0.Add(day), policy, "desk.extend_too_far"},
		{"zero MaxExtension disables extensions", fresh(), due.Add(day), "complex", t0.Add(day), valex.SLAPolicy{}, "desk.extend_too_far"},
		{"new due not later", fresh(), due, "complex", t0.Add(day), policy, "desk.extend_not_later"},
		{"new due earlier", fresh(), due.Add(-day), "complex", t0.Add(day), policy, "desk.extend_not_later"},
		{"closed ticket", done, due.Add(day), "complex", t0.Add(day), policy, "desk.closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.r
			before := r
			err := r.Extend(tt.newDue, tt.reason, 9, tt.at, tt.policy)
			wantKey(t, err, tt.wantKey)
			if err != nil {
				if r.DueAt != before.DueAt || r.Extended != before.Extended || r.ExtendReason != before.ExtendReason {
					t.Errorf("refused extension changed the request: %+v", r)
				}
				return
			}
			if !r.Extended || !r.DueAt.Equal(tt.newDue) || !r.OriginalDueAt.Equal(due) ||
				r.ExtendReason != strings.TrimSpace(tt.reason) || r.ExtendedBy != 9 || !r.ExtendedAt.Equal(tt.at) {
				t.Errorf("after Extend: %+v", r)
			}
		})
	}
}

func TestExtendWithoutOriginalDue(t *testing.T) {
	// A ticket decoded from before OriginalDueAt existed uses DueAt.
	r := valex.Request{Status: valex.StatusNew, ReceivedAt: t0, DueAt: t0.Add(30 * day)}
	if err := r.Extend(t0.Add(40*day), "complex", 1, t0, valex.DefaultSLAPolicy()); err != nil {
		t.Fatal(err)
	}
	if !r.OriginalDueAt.Equal(t0.Add(30 * day)) {
		t.Errorf("OriginalDueAt = %v", r.OriginalDueAt)
	}
}

func TestDaysLeft(t *testing.T) {
	due := t0
	tests := []struct {
		name string
		now  time.Time
		want int
	}{
		{"due in 10 days", due.Add(-10 * day), 10},
		{"due in 10 days less a second", due.Add(-10*day + time.Second), 10},
		{"due in 9 days and an hour", due.Add(-9*day - time.Hour), 10},
		{"due tomorrow at this time", due.Add(-day), 1},
		{"due later today", due.Add(-5 * time.Hour), 1},
		{"due in a second", due.Add(-time.Second), 1},
		{"due exactly now", due, 0},
		{"1 second overdue", due.Add(time.Second), -1},
		{"exactly a day overdue", due.Add(day), -1},
		{"a day and a second overdue", due.Add(day + time.Second), -2},
		{"3 days overdue", due.Add(3 * day), -3},
		{"nearly 3 days overdue", due.Add(3*day - time.Hour), -3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := valex.DaysLeft(due, tt.now); got != tt.want {
				t.Errorf("DaysLeft(%v, %v) = %d, want %d", due, tt.now, got, tt.want)
			}
		})
	}
}

func TestDaysSince(t *testing.T) {
	for _, tt := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"just received", t0, 0},
		{"23 hours later", t0.Add(23 * time.Hour), 0},
		{"a day later", t0.Add(day), 1},
		{"clock behind", t0.Add(-time.Hour), 0},
	} {
		if got := valex.DaysSince(t0, tt.now); got != tt.want {
			t.Errorf("%s: DaysSince = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestOverdue(t *testing.T) {
	r := valex.Request{Status: valex.StatusInProgress, DueAt: t0}
	if r.Overdue(t0) || !r.Overdue(t0.Add(time.Second)) {
		t.Error("open ticket: overdue exactly when now is after DueAt")
	}
	r.Status = valex.StatusDone
	if r.Overdue(t0.Add(day)) {
		t.Error("a closed ticket is never overdue")
	}
}

// keys returns the keys of rs.
func keys(rs []valex.Reminder) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Key())
	}
	return out
}

func TestDueReminders(t *testing.T) {
	r, err := valex.NewRequest(valex.KindErasure, 1, "", t0, valex.DefaultSLAPolicy())
	if err != nil {
		t.Fatal(err)
	}
	due := r.DueAt
	k := func(m int) string { return valex.Reminder{DaysBefore: m, Due: due}.Key() }
	overdue := valex.Reminder{Overdue: true, Due: due}.Key()
	sent := func(ks ...string) map[string]bool {
		m := map[string]bool{}
		for _, k := range ks {
			m[k] = true
		}
		return m
	}
	closed := r
	closed.Status = valex.StatusDone

	tests := []struct {
		name string
		r    valex.Request
		now  time.Time
		sent map[string]bool
		want []string
	}{
		{"just received", r, t0, nil, nil},
		{"8 days before", r, due.Add(-8 * day), nil, nil},
		{"7 days before exactly", r, due.Add(-7 * day), nil, []string{k(7)}},
		{"7-day mark already sent", r, due.Add(-7 * day), sent(k(7)), nil},
		{"between 7 and 3", r, due.Add(-4 * day), sent(k(7)), nil},
		{"3 days before", r, due.Add(-3 * day), sent(k(7)), []string{k(3)}},
		{"1 day before", r, due.Add(-day + time.Hour), sent(k(7), k(3)), []string{k(1)}},
		{"due exactly now is not overdue", r, due, sent(k(7), k(3), k(1)), nil},
		{"1 second overdue", r, due.Add(time.Second), sent(k(7), k(3), k(1)), []string{overdue}},
		{"overdue alert once", r, due.Add(5 * day), sent(k(7), k(3), k(1), overdue), nil},
		{"downtime past 7 and 3 collapses to 3", r, due.Add(-2 * day), nil, []string{k(3)}},
		{"downtime past every mark collapses to overdue", r, due.Add(2 * day), nil, []string{overdue}},
		{"skipped marks never come back", r, due.Add(-12 * time.Hour), sent(k(3)), []string{k(1)}},
		{"closed ticket", closed, due.Add(day), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keys(valex.DueReminders(tt.r, tt.now, tt.sent))
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("DueReminders = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDueRemindersShortSLA(t *testing.T) {
	// A 5-day SLA starts past the 7-day mark: no reminder on arrival.
	policy := valex.SLAPolicy{Default: 5 * day}
	r, err := valex.NewRequest(valex.KindSupport, 1, "help", t0, policy)
	if err != nil {
		t.Fatal(err)
	}
	if got := valex.DueReminders(r, t0, nil); len(got) != 0 {
		t.Errorf("on arrival: %v, want none", keys(got))
	}
	got := valex.DueReminders(r, r.DueAt.Add(-3*day), nil)
	if len(got) != 1 || got[0].DaysBefore != 3 {
		t.Errorf("3 days before: %v, want the 3-day mark", keys(got))
	}
}

// TestRemindersExactlyOnce runs a reminder job every hour across the whole
// life of a ticket, with a 5-day outage in the middle, and an extension.
func TestRemindersExactlyOnce(t *testing.T) {
	policy := valex.DefaultSLAPolicy()
	r, err := valex.NewRequest(valex.KindAccess, 1, "", t0, policy)
	if err != nil {
		t.Fatal(err)
	}
	firstDue := r.DueAt
	sent := map[string]bool{}
	var log []string
	job := func(now time.Time) {
		for _, m := range valex.DueReminders(r, now, sent) {
			if sent[m.Key()] {
				t.Fatalf("%v: %s returned again", now, m.Key())
			}
			sent[m.Key()] = true
			log = append(log, m.Key())
		}
	}
	k := func(m int, due time.Time) string { return valex.Reminder{DaysBefore: m, Due: due}.Key() }

	// Up to 8 days before the first deadline, hourly.
	now := t0
	for ; now.Before(firstDue.Add(-8 * day)); now = now.Add(time.Hour) {
		job(now)
	}
	// Down from 8 to 2 days before: the 7- and 3-day marks are missed.
	now = firstDue.Add(-2 * day)
	job(now)
	job(now) // a second run at the same moment sends nothing
	// Extended 36 hours before the deadline, by 20 days.
	newDue := firstDue.Add(20 * day)
	if err := r.Extend(newDue, "complex", 2, firstDue.Add(-36*time.Hour), policy); err != nil {
		t.Fatal(err)
	}
	for ; !now.After(newDue.Add(3 * day)); now = now.Add(time.Hour) {
		job(now)
	}
	want := []string{
		k(3, firstDue), // after the outage: only the 3-day mark
		k(7, newDue), k(3, newDue), k(1, newDue),
		valex.Reminder{Overdue: true, Due: newDue}.Key(),
	}
	if strings.Join(log, " ") != strings.Join(want, " ") {
		t.Errorf("sent %v, want %v", log, want)
	}
}

func TestReminderKey(t *testing.T) {
	due := time.Date(2025, time.April, 9, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		m    valex.Reminder
		want string
	}{
		{"7 days", valex.Reminder{DaysBefore: 7, Due: due}, "d7@1744200000"},
		{"1 day", valex.Reminder{DaysBefore: 1, Due: due}, "d1@1744200000"},
		{"overdue", valex.Reminder{Overdue: true, Due: due}, "overdue@1744200000"},
		{"same instant, other zone", valex.Reminder{DaysBefore: 7, Due: due.In(time.FixedZone("X", 3600))}, "d7@1744200000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Key(); got != tt.want {
				t.Errorf("Key() = %q, want %q", got, tt.want)
			}
		})
	}
}
