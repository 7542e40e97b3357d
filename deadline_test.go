package valex

import (
	"testing"
	"time"
)

func TestDeadlineRules(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// A Russian New Year week: 1–8 Jan 2027 are holidays; say Sat 16 Jan
	// is a working day moved from another date.
	ru := Calendar{
		Holidays: map[string]bool{"2027-01-01": true, "2027-01-04": true, "2027-01-05": true, "2027-01-06": true,
			"2027-01-07": true, "2027-01-08": true},
		WorkingWeekends: map[string]bool{"2027-01-16": true},
	}
	for _, tc := range []struct {
		rule     string
		received string
		cal      Calendar
		want     string
	}{
		{"30 days", "2027-01-31 10:00", Calendar{}, "2027-03-02 10:00"},
		{"30 days", "2028-01-31 10:00", Calendar{}, "2028-03-01 10:00"}, // leap year
		{"1 month", "2027-02-01 09:30", Calendar{}, "2027-03-01 09:30"},
		{"1 month", "2027-01-31 09:30", Calendar{}, "2027-02-28 09:30"},
		{"1 month", "2028-01-31 09:30", Calendar{}, "2028-02-29 09:30"},
		{"1 month", "2027-01-28 09:30", Calendar{}, "2027-02-28 09:30"},
		{"1 month", "2027-12-31 23:59", Calendar{}, "2028-01-31 23:59"},
		{"3 months", "2027-11-30 08:00", Calendar{}, "2028-02-29 08:00"},
		// Mon 12 Apr 2027 + 10 working days = Mon 26 Apr.
		{"10 working days", "2027-04-12 14:00", Calendar{}, "2027-04-26 14:00"},
		// Friday: the weekend does not count.
		{"1 working day", "2027-04-16 14:00", Calendar{}, "2027-04-19 14:00"},
		// Received on a holiday week: work resumes Mon 11 Jan; 10 working
		// days are 11–15, 16 (the working Saturday), 18–21 Jan.
		{"10 working days", "2026-12-31 12:00", ru, "2027-01-21 12:00"},
		{"5 working days", "2027-01-21 12:00", ru, "2027-01-28 12:00"},
	} {
		r, err := ParseDeadlineRule(tc.rule)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Due(at(tc.received), tc.cal); !got.Equal(at(tc.want)) {
			t.Errorf("%s from %s: %s, want %s", tc.rule, tc.received, got.Format("2006-01-02 15:04 Mon"), tc.want)
		}
	}
}

func TestParseDeadlineRule(t *testing.T) {
	for _, bad := range []string{"", "30", "days", "0 days", "-1 days", "13 months", "10 weeks", "x days", "400 days"} {
		if _, err := ParseDeadlineRule(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for in, want := range map[string]DeadlineRule{
		"30 days": {30, UnitCalendarDays}, "1 Month": {1, UnitMonths}, "10 working days": {10, UnitWorkingDays},
		" 2 months ": {2, UnitMonths}, "1 calendar day": {1, UnitCalendarDays},
	} {
		if got, err := ParseDeadlineRule(in); err != nil || got != want {
			t.Errorf("%q = %+v, %v; want %+v", in, got, err, want)
		}
	}
}
