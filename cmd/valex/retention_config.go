package main

import (
	"fmt"
	"strings"

	"github.com/valex-ai/valex"
)

// RetentionConfig is the [retention] table: how long each kind of data is
// kept (policy section 8). The jobs enforce these periods, the bot tells
// users the same ones (/privacy) and `valex check` prints them.
type RetentionConfig struct {
	InactiveMonths       int `toml:"inactive_months"`       // no activity this long: the user is told, 24
	InactiveGraceDays    int `toml:"inactive_grace_days"`   // then deleted this long after the notice, 30
	PaymentsYears        int `toml:"payments_years"`        // payment records, at least 5
	CommunicationsMonths int `toml:"communications_months"` // closed tickets, support, feedback: up to 12
	FeedbackCloseDays    int `toml:"feedback_close_days"`   // unanswered feedback closes after, 30
	// Conversations: AI conversations and voice transcripts. "until_deleted"
	// (the default) keeps them until the user deletes them or the account;
	// a period like "90d", "6m" or "1y" deletes turns older than that.
	Conversations string `toml:"conversations"`
}

// conversationsUntilDeleted is the [retention] conversations value that
// keeps conversations until the user deletes them.
const conversationsUntilDeleted = "until_deleted"

// DefaultRetention returns the periods of the privacy policy.
func DefaultRetention() RetentionConfig {
	d := valex.DefaultRetentionPolicy()
	return RetentionConfig{
		InactiveMonths:       d.InactiveAfter.Years*12 + d.InactiveAfter.Months,
		InactiveGraceDays:    d.InactiveGrace.Days,
		PaymentsYears:        d.PaymentRecords.Years,
		CommunicationsMonths: d.Communications.Years*12 + d.Communications.Months,
		FeedbackCloseDays:    d.FeedbackClose.Days,
		Conversations:        conversationsUntilDeleted,
	}
}

// conversations reads the conversations period; the zero period means
// "until deleted".
func (r RetentionConfig) conversations() (valex.Period, error) {
	s := strings.TrimSpace(r.Conversations)
	if s == "" || s == conversationsUntilDeleted {
		return valex.Period{}, nil
	}
	p, err := valex.ParsePeriod(s)
	if err == nil && p == (valex.Period{}) {
		err = fmt.Errorf("period %q is empty", s)
	}
	return p, err
}

// Policy returns the periods as the jobs and the bot use them.
func (r RetentionConfig) Policy() valex.RetentionPolicy {
	conv, _ := r.conversations() // validated at load
	return valex.RetentionPolicy{
		InactiveAfter:  valex.Period{Months: r.InactiveMonths},
		InactiveGrace:  valex.Period{Days: r.InactiveGraceDays},
		PaymentRecords: valex.Period{Years: r.PaymentsYears},
		Communications: valex.Period{Years: r.CommunicationsMonths / 12, Months: r.CommunicationsMonths % 12}, // "1 year", not "12 months"
		FeedbackClose:  valex.Period{Days: r.FeedbackCloseDays},
		Conversations:  conv,
	}
}

// validate refuses periods that break what the privacy policy promises:
// payment records at least 5 years, communications up to 1 year.
func (r RetentionConfig) validate() []error {
	var p []error
	bad := func(key string, v int, rule string) {
		p = append(p, fmt.Errorf("retention %s %d: %s", key, v, rule))
	}
	if r.InactiveMonths < 1 || r.InactiveMonths > 120 {
		bad("inactive_months", r.InactiveMonths, "must be between 1 and 120")
	}
	if r.InactiveGraceDays < 1 || r.InactiveGraceDays > 365 {
		bad("inactive_grace_days", r.InactiveGraceDays, "must be between 1 and 365")
	}
	if r.PaymentsYears < 5 || r.PaymentsYears > 50 {
		bad("payments_years", r.PaymentsYears, "must be between 5 and 50 (the policy promises at least 5 years)")
	}
	if r.CommunicationsMonths < 1 || r.CommunicationsMonths > 12 {
		bad("communications_months", r.CommunicationsMonths, "must be between 1 and 12 (the policy promises up to 1 year)")
	}
	if r.FeedbackCloseDays < 1 || r.FeedbackCloseDays > 365 {
		bad("feedback_close_days", r.FeedbackCloseDays, "must be between 1 and 365")
	}
	if _, err := r.conversations(); err != nil {
		p = append(p, fmt.Errorf("retention conversations %q: %w (or %q)", r.Conversations, err, conversationsUntilDeleted))
	}
	return p
}

// Summary is the "retention:" block `valex check` prints: every period the
// jobs enforce, in words.
func (r RetentionConfig) Summary() []string {
	conv := "kept until the user deletes them (/conversations) or the account"
	if p, _ := r.conversations(); p != (valex.Period{}) {
		conv = "turns deleted " + p.String() + " after they were written, or earlier by the user (/conversations)"
	}
	return []string{
		"retention:",
		fmt.Sprintf("  inactive accounts: user notified after %d months without activity, account deleted %d days after the notice", r.InactiveMonths, r.InactiveGraceDays),
		fmt.Sprintf("  payment records: kept at least %d years (when payments are recorded), without the identity after account deletion", r.PaymentsYears),
		fmt.Sprintf("  communications (requests, support, feedback): text deleted %d months after closing, unless under a legal hold", r.CommunicationsMonths),
		fmt.Sprintf("  feedback: closes when staff answer, or %d days after its last message", r.FeedbackCloseDays),
		"  AI conversations and voice transcripts: " + conv,
	}
}
