package valex_test

import (
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in   string
		want valex.Period
		ok   bool
	}{
		{"90d", valex.Period{Days: 90}, true},
		{"6m", valex.Period{Months: 6}, true},
		{"1y", valex.Period{Years: 1}, true},
		{" 1y6m2d ", valex.Period{Years: 1, Months: 6, Days: 2}, true},
		{"", valex.Period{}, false},
		{"90", valex.Period{}, false},
		{"d", valex.Period{}, false},
		{"90h", valex.Period{}, false},
		{"6m1y", valex.Period{}, false},
		{"1d1d", valex.Period{}, false},
		{"-3d", valex.Period{}, false},
		{"99999d", valex.Period{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := valex.ParsePeriod(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParsePeriod(%q) = %+v, %v", tt.in, got, err)
			}
			if tt.ok {
				if back, _ := valex.ParsePeriod(got.String()); back != got {
					t.Fatalf("String %q does not read back", got.String())
				}
			}
		})
	}
}

func TestConversationExpired(t *testing.T) {
	at := date(2025, time.March, 10)
	ninety := valex.RetentionPolicy{Conversations: valex.Period{Days: 90}}
	tests := []struct {
		name   string
		policy valex.RetentionPolicy
		now    time.Time
		want   bool
	}{
		{"default keeps forever", valex.DefaultRetentionPolicy(), at.AddDate(20, 0, 0), false},
		{"negative period is not delete-now", valex.RetentionPolicy{Conversations: valex.Period{Days: -1}}, at.Add(day), false},
		{"a day before", ninety, at.AddDate(0, 0, 89), false},
		{"at the end", ninety, at.AddDate(0, 0, 90), true},
		{"a day after", ninety, at.AddDate(0, 0, 91), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.policy.ConversationExpired(at, tt.now); got != tt.want {
				t.Errorf("ConversationExpired = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFeedbackCloseDue(t *testing.T) {
	p := valex.DefaultRetentionPolicy()
	rcv := date(2025, time.March, 10)
	fb := func(status valex.RequestStatus, msgs ...valex.RequestMessage) valex.Request {
		return valex.Request{Kind: valex.KindFeedback, Status: status, ReceivedAt: rcv, Messages: msgs}
	}
	staff := valex.RequestMessage{At: rcv.Add(time.Hour), FromStaff: true}
	user := valex.RequestMessage{At: rcv.AddDate(0, 0, 10)}
	tests := []struct {
		name string
		r    valex.Request
		now  time.Time
		want valex.FeedbackClose
	}{
		{"fresh", fb(valex.StatusNew), rcv.Add(day), valex.FeedbackStaysOpen},
		{"a day before 30 days", fb(valex.StatusNew), rcv.AddDate(0, 0, 29), valex.FeedbackStaysOpen},
		{"30 days", fb(valex.StatusInProgress), rcv.AddDate(0, 0, 30), valex.FeedbackQuiet},
		{"a day after", fb(valex.StatusWaitingUser), rcv.AddDate(0, 0, 31), valex.FeedbackQuiet},
		{"answered", fb(valex.StatusInProgress, staff), rcv.Add(2 * time.Hour), valex.FeedbackAnswered},
		{"user wrote after the answer", fb(valex.StatusInProgress, staff, user), rcv.AddDate(0, 0, 31), valex.FeedbackStaysOpen},
		{"30 days after the user's last message", fb(valex.StatusInProgress, staff, user), rcv.AddDate(0, 0, 40), valex.FeedbackQuiet},
		{"on hold", fb(valex.StatusOnHold, staff), rcv.AddDate(1, 0, 0), valex.FeedbackStaysOpen},
		{"closed", fb(valex.StatusDone, staff), rcv.AddDate(1, 0, 0), valex.FeedbackStaysOpen},
		{"support is not feedback", valex.Request{Kind: valex.KindSupport, Status: valex.StatusNew, ReceivedAt: rcv}, rcv.AddDate(1, 0, 0), valex.FeedbackStaysOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.FeedbackCloseDue(tt.r, tt.now); got != tt.want {
				t.Errorf("FeedbackCloseDue = %v, want %v", got, tt.want)
			}
		})
	}
	short := valex.RetentionPolicy{FeedbackClose: valex.Period{Days: 7}}
	if short.FeedbackCloseDue(fb(valex.StatusNew), rcv.AddDate(0, 0, 7)) != valex.FeedbackQuiet {
		t.Error("a configured 7 days is not used")
	}
}

func TestConversationTitle(t *testing.T) {
	for in, want := range map[string]string{
		"hello":                              "hello",
		"  how   do I\nbake bread  ":         "how do I bake…",
		"one two three four five six":        "one two three…",
		"supercalifragilisticexpialidocious": "supercalifragi…",
		"Привет, как дела сегодня утром": "Привет, как…",
	} {
		if got := valex.ConversationTitle(in, 15); got != want {
			t.Errorf("ConversationTitle(%q) = %q, want %q", in, got, want)
		}
	}
}
