package valex_test

import (
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }

func TestInactiveNotice(t *testing.T) {
	p := valex.DefaultRetentionPolicy()
	last := date(2023, time.March, 10)
	limit := date(2025, time.March, 10) // 24 months after last activity
	tests := []struct {
		name   string
		policy valex.RetentionPolicy
		last   time.Time
		notice time.Time
		now    time.Time
		want   bool
	}{
		{"active recently", p, last, time.Time{}, last.Add(day), false},
		{"exactly 24 months is not more than 24 months", p, last, time.Time{}, limit, false},
		{"24 months and a second", p, last, time.Time{}, limit.Add(time.Second), true},
		{"already notified", p, last, limit.Add(time.Hour), limit.Add(2 * time.Hour), false},
		{"notice from an earlier inactive spell", p, last, last.Add(-day), limit.Add(time.Second), true},
		{"unknown last activity", p, time.Time{}, time.Time{}, limit.Add(day), false},
		{"leap day: 24 months after 29 Feb is 1 Mar", p, date(2024, time.February, 29), time.Time{}, date(2026, time.February, 28).Add(day - time.Second), false},
		{"zero policy means the default", valex.RetentionPolicy{}, last, time.Time{}, last.Add(day), false},
		{"shorter configured period", valex.RetentionPolicy{InactiveAfter: valex.Period{Months: 12}}, last, time.Time{}, date(2024, time.March, 11), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.InactiveNoticeDue(tt.last, tt.notice, tt.now); got != tt.want {
				t.Errorf("InactiveNoticeDue = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInactiveDelete(t *testing.T) {
	p := valex.DefaultRetentionPolicy()
	last := date(2023, time.March, 10)
	notice := date(2025, time.March, 11)
	graceEnd := date(2025, time.April, 10) // 30 days after the notice
	tests := []struct {
		name   string
		policy valex.RetentionPolicy
		last   time.Time
		notice time.Time
		now    time.Time
		want   bool
	}{
		{"never notified", p, last, time.Time{}, graceEnd.Add(day), false},
		{"within grace", p, last, notice, graceEnd.Add(-time.Second), false},
		{"grace over", p, last, notice, graceEnd, true},
		{"came back after the notice", p, notice.Add(day), notice, graceEnd.Add(day), false},
		{"notice before last activity", p, last, last.Add(-day), graceEnd.Add(day), false},
		{"unknown last activity", p, time.Time{}, notice, graceEnd.Add(day), false},
		{"zero grace means the default", valex.RetentionPolicy{}, last, notice, notice.Add(time.Second), false},
		{"early notice still waits for 24 months", p, last, last.Add(day), date(2025, time.March, 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.InactiveDeleteDue(tt.last, tt.notice, tt.now); got != tt.want {
				t.Errorf("InactiveDeleteDue = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCommunicationExpired(t *testing.T) {
	p := valex.DefaultRetentionPolicy()
	closed := date(2024, time.June, 1)
	year := date(2025, time.June, 1)
	tests := []struct {
		name   string
		closed time.Time
		held   bool
		now    time.Time
		want   bool
	}{
		{"open ticket", time.Time{}, false, year.Add(365 * day), false},
		{"closed a month ago", closed, false, closed.Add(30 * day), false},
		{"a second short of a year", closed, false, year.Add(-time.Second), false},
		{"a year after closing", closed, false, year, true},
		{"held for a dispute", closed, true, year.Add(365 * day), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.CommunicationExpired(tt.closed, tt.held, tt.now); got != tt.want {
				t.Errorf("CommunicationExpired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPaymentRetention(t *testing.T) {
	p := valex.DefaultRetentionPolicy()
	paid := date(2020, time.March, 1)
	tests := []struct {
		name   string
		policy valex.RetentionPolicy
		now    time.Time
		want   valex.PaymentAction
	}{
		{"a month old", p, paid.Add(30 * day), valex.PaymentAnonymize},
		{"5×365 days is short of 5 years", p, paid.Add(5 * 365 * day), valex.PaymentAnonymize},
		{"a second short of 5 years", p, date(2025, time.March, 1).Add(-time.Second), valex.PaymentAnonymize},
		{"5 years", p, date(2025, time.March, 1), valex.PaymentDelete},
		{"zero policy keeps 5 years", valex.RetentionPolicy{}, paid.Add(4 * 365 * day), valex.PaymentAnonymize},
		{"negative period keeps 5 years", valex.RetentionPolicy{PaymentRecords: valex.Period{Years: -1}}, paid.Add(day), valex.PaymentAnonymize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.PaymentOnAccountDeletion(paid, tt.now); got != tt.want {
				t.Errorf("PaymentOnAccountDeletion = %v, want %v", got, tt.want)
			}
			if got := tt.policy.PaymentDeletable(paid, tt.now); got != (tt.want == valex.PaymentDelete) {
				t.Errorf("PaymentDeletable = %v", got)
			}
		})
	}
}

func TestPeriodFrom(t *testing.T) {
	tests := []struct {
		name string
		p    valex.Period
		from time.Time
		want time.Time
	}{
		{"24 months", valex.Period{Months: 24}, date(2023, time.March, 10), date(2025, time.March, 10)},
		{"5 years over a leap day", valex.Period{Years: 5}, date(2020, time.January, 1), date(2025, time.January, 1)},
		{"30 days", valex.Period{Days: 30}, date(2025, time.March, 11), date(2025, time.April, 10)},
		{"counted in UTC", valex.Period{Days: 1}, time.Date(2025, time.March, 10, 23, 30, 0, 0, time.FixedZone("UTC-2", -2*3600)), time.Date(2025, time.March, 12, 1, 30, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.From(tt.from); !got.Equal(tt.want) {
				t.Errorf("From = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPaymentActionString(t *testing.T) {
	for a, want := range map[valex.PaymentAction]string{valex.PaymentAnonymize: "anonymize", valex.PaymentDelete: "delete", 0: "unknown"} {
		if got := a.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(a), got, want)
		}
	}
}
