package valex

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Deadline rules: how the law counts the time to answer a request.
//
//   - calendar days: "30 days" is received + 30×24h (the policy's promise);
//   - calendar months: GDPR Art. 12(3) "one month" runs to the same date of
//     the next month (1 Feb → 1 Mar), or to that month's last day when it
//     has no such date (31 Jan → 28/29 Feb);
//   - working days: 152-FZ Art. 14 "10 working days" skip weekends and the
//     configured public holidays (and count the configured working
//     weekends), ending at the same time of day as received.
//
// Dates are counted in UTC, like every desk date.

// DeadlineUnit is how a DeadlineRule counts.
type DeadlineUnit string

const (
	UnitCalendarDays DeadlineUnit = "days"
	UnitMonths       DeadlineUnit = "months"
	UnitWorkingDays  DeadlineUnit = "working_days"
)

// DeadlineRule is N units: "30 days", "1 month", "10 working days".
type DeadlineRule struct {
	N    int
	Unit DeadlineUnit
}

// Calendar holds the public holidays and the working weekend days that
// working-day rules follow (Russia moves days every year).
type Calendar struct {
	Holidays        map[string]bool // "2027-01-07"
	WorkingWeekends map[string]bool // a Saturday that is a working day
}

// Working reports whether the UTC date of t is a working day.
func (c Calendar) Working(t time.Time) bool {
	d := t.UTC().Format("2006-01-02")
	if c.WorkingWeekends[d] {
		return true
	}
	if wd := t.UTC().Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !c.Holidays[d]
}

// ParseDeadlineRule reads "30 days", "1 month", "2 months", "10 working days".
func ParseDeadlineRule(s string) (DeadlineRule, error) {
	f := strings.Fields(strings.ToLower(strings.TrimSpace(s)))
	if len(f) < 2 {
		return DeadlineRule{}, fmt.Errorf("deadline %q: want a number and a unit, such as \"30 days\", \"1 month\" or \"10 working days\"", s)
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 || n > 365 {
		return DeadlineRule{}, fmt.Errorf("deadline %q: the number must be between 1 and 365", s)
	}
	unit := strings.Join(f[1:], " ")
	switch unit {
	case "day", "days", "calendar day", "calendar days":
		return DeadlineRule{N: n, Unit: UnitCalendarDays}, nil
	case "month", "months":
		if n > 12 {
			return DeadlineRule{}, fmt.Errorf("deadline %q: at most 12 months", s)
		}
		return DeadlineRule{N: n, Unit: UnitMonths}, nil
	case "working day", "working days":
		return DeadlineRule{N: n, Unit: UnitWorkingDays}, nil
	}
	return DeadlineRule{}, fmt.Errorf("deadline %q: unknown unit %q (days, months, working days)", s, unit)
}

// String is the rule as the configuration writes it.
func (r DeadlineRule) String() string {
	switch r.Unit {
	case UnitMonths:
		return fmt.Sprintf("%d months", r.N)
	case UnitWorkingDays:
		return fmt.Sprintf("%d working days", r.N)
	}
	return fmt.Sprintf("%d days", r.N)
}

// Due is the deadline of something received at t.
func (r DeadlineRule) Due(t time.Time, cal Calendar) time.Time {
	t = t.UTC()
	switch r.Unit {
	case UnitMonths:
		return addMonthsClamped(t, r.N)
	case UnitWorkingDays:
		d := t
		for left := r.N; left > 0; {
			d = d.Add(day)
			if cal.Working(d) {
				left--
			}
		}
		return d
	}
	return t.Add(time.Duration(r.N) * day)
}

// addMonthsClamped moves t n months on, to the last day of the target month
// when it is shorter (time.AddDate would overflow 31 Jan + 1 month to 3 Mar).
func addMonthsClamped(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return time.Date(first.Year(), first.Month(), d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
