package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/desk"
	"github.com/valex-ai/valex/handlers"
	"github.com/valex-ai/valex/store"
)

// DeskConfig is the [desk] section: what users are told about the privacy
// policy and where to turn, and the desk's deadlines.
type DeskConfig struct {
	// PolicyVersion is the version in force until an admin publishes
	// another with /policy_update; consents record the version in force.
	PolicyVersion string `toml:"policy_version"`
	PolicyURL     string `toml:"policy_url"`
	SupportURL    string `toml:"support_url"` // policy section 10: where "Personal Data" requests go
	// ComplaintAuthority and ComplaintURL name where a user whose request
	// is refused can complain; empty means the generic wording ("your data
	// protection supervisory authority").
	ComplaintAuthority string `toml:"complaint_authority"`
	ComplaintURL       string `toml:"complaint_url"`
	// SLADays is the time to answer, in calendar days (policy section 7:
	// 30); SLAKindDays overrides it per kind, e.g. { access = 10 }.
	SLADays     int            `toml:"sla_days"`
	SLAKindDays map[string]int `toml:"sla_kind_days"`
	// MaxExtensionDays is how far past the original deadline the one
	// extension may go (0 disables extensions); ExtendDays is the extension
	// when staff give no number.
	MaxExtensionDays int `toml:"max_extension_days"`
	ExtendDays       int `toml:"extend_days"`
	// Deadline counts the time to answer as the law does, and wins over
	// sla_days: "30 days", "1 month" (GDPR Art. 12(3): 1 Feb → 1 Mar) or
	// "10 working days" (152-FZ, with holidays); DeadlineKinds per kind.
	Deadline      string            `toml:"deadline"`
	DeadlineKinds map[string]string `toml:"deadline_kinds"`
	// Extension bounds the one extension as a rule ("2 months",
	// "5 working days"), winning over max_extension_days.
	Extension      string            `toml:"extension"`
	ExtensionKinds map[string]string `toml:"extension_kinds"`
	// Holidays and WorkingWeekends ("2027-01-07") are the calendar the
	// working-day rules follow.
	Holidays        []string `toml:"holidays"`
	WorkingWeekends []string `toml:"working_weekends"`
}

// DefaultDeskConfig returns the promises of the privacy policy: 30 days to
// answer, support at t.me/supprtbots.
func DefaultDeskConfig() DeskConfig {
	return DeskConfig{
		PolicyVersion:    "1",
		PolicyURL:        "https://valex-ai.io",
		SupportURL:       "https://t.me/supprtbots",
		SLADays:          30,
		MaxExtensionDays: 60,
		ExtendDays:       30,
	}
}

// maxDeskDays bounds every day count: a year is already far beyond any
// deadline the law allows.
const maxDeskDays = 365

// validate returns every problem with the section.
func (c DeskConfig) validate() []error {
	var p []error
	if v := c.PolicyVersion; v == "" || strings.ContainsAny(v, " \t\n") || utf8.RuneCountInString(v) > 32 {
		p = append(p, fmt.Errorf("desk policy_version %q: must be one word of at most 32 characters", v))
	}
	for _, u := range []struct {
		key, value string
		required   bool
	}{
		{"policy_url", c.PolicyURL, true},
		{"support_url", c.SupportURL, true},
		{"complaint_url", c.ComplaintURL, false},
	} {
		if u.value == "" && !u.required {
			continue
		}
		if parsed, err := url.Parse(u.value); err != nil || (parsed.Scheme != "https" && parsed.Scheme != "http") || parsed.Host == "" {
			p = append(p, fmt.Errorf("desk %s %q: must be an http(s) URL", u.key, u.value))
		}
	}
	if c.ComplaintURL != "" && c.ComplaintAuthority == "" {
		p = append(p, fmt.Errorf("desk complaint_url: needs complaint_authority, the name shown with it"))
	}
	if c.SLADays < 1 || c.SLADays > maxDeskDays {
		p = append(p, fmt.Errorf("desk sla_days %d: must be between 1 and %d", c.SLADays, maxDeskDays))
	}
	for k, days := range c.SLAKindDays {
		if !valex.RequestKind(k).Valid() {
			p = append(p, fmt.Errorf("desk sla_kind_days: unknown kind %q (kinds: %s)", k, kindList()))
		}
		if days < 1 || days > maxDeskDays {
			p = append(p, fmt.Errorf("desk sla_kind_days %s = %d: must be between 1 and %d", k, days, maxDeskDays))
		}
	}
	rule := func(key, v string) {
		if v == "" {
			return
		}
		if _, err := valex.ParseDeadlineRule(v); err != nil {
			p = append(p, fmt.Errorf("desk %s: %w", key, err))
		}
	}
	rule("deadline", c.Deadline)
	rule("extension", c.Extension)
	for key, m := range map[string]map[string]string{"deadline_kinds": c.DeadlineKinds, "extension_kinds": c.ExtensionKinds} {
		for k, v := range m {
			if !valex.RequestKind(k).Valid() {
				p = append(p, fmt.Errorf("desk %s: unknown kind %q (kinds: %s)", key, k, kindList()))
			}
			rule(key+"."+k, v)
		}
	}
	for key, dates := range map[string][]string{"holidays": c.Holidays, "working_weekends": c.WorkingWeekends} {
		for _, d := range dates {
			if _, err := time.Parse("2006-01-02", d); err != nil {
				p = append(p, fmt.Errorf("desk %s %q: want a date such as 2027-01-07", key, d))
			}
		}
	}
	if c.MaxExtensionDays < 0 || c.MaxExtensionDays > maxDeskDays {
		p = append(p, fmt.Errorf("desk max_extension_days %d: must be between 0 (no extensions) and %d", c.MaxExtensionDays, maxDeskDays))
	}
	if c.MaxExtensionDays > 0 && (c.ExtendDays < 1 || c.ExtendDays > c.MaxExtensionDays) {
		p = append(p, fmt.Errorf("desk extend_days %d: must be between 1 and max_extension_days (%d)", c.ExtendDays, c.MaxExtensionDays))
	}
	return p
}

func kindList() string {
	var names []string
	for _, k := range valex.RequestKinds {
		names = append(names, string(k))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

const deskDay = 24 * time.Hour

// SLA is the deadline policy the section describes.
func (c DeskConfig) SLA() valex.SLAPolicy {
	p := valex.SLAPolicy{Default: time.Duration(c.SLADays) * deskDay, MaxExtension: time.Duration(c.MaxExtensionDays) * deskDay}
	if len(c.SLAKindDays) > 0 {
		p.PerKind = map[valex.RequestKind]time.Duration{}
		for k, days := range c.SLAKindDays {
			p.PerKind[valex.RequestKind(k)] = time.Duration(days) * deskDay
		}
	}
	// validate has checked every rule and date: parse errors cannot occur.
	p.Rule, _ = valex.ParseDeadlineRule(c.Deadline)
	p.Extension, _ = valex.ParseDeadlineRule(c.Extension)
	p.KindRules, p.KindExtension = map[valex.RequestKind]valex.DeadlineRule{}, map[valex.RequestKind]valex.DeadlineRule{}
	for k, v := range c.DeadlineKinds {
		p.KindRules[valex.RequestKind(k)], _ = valex.ParseDeadlineRule(v)
	}
	for k, v := range c.ExtensionKinds {
		p.KindExtension[valex.RequestKind(k)], _ = valex.ParseDeadlineRule(v)
	}
	p.Calendar = valex.Calendar{Holidays: map[string]bool{}, WorkingWeekends: map[string]bool{}}
	for _, d := range c.Holidays {
		p.Calendar.Holidays[d] = true
	}
	for _, d := range c.WorkingWeekends {
		p.Calendar.WorkingWeekends[d] = true
	}
	return p
}

// DeadlineSummary lists the time to answer each kind of request and how far
// its extension may go, for `valex check`.
func (c DeskConfig) DeadlineSummary() []string {
	p := c.SLA()
	out := []string{"deadlines (received = the Telegram message date):"}
	for _, k := range valex.RequestKinds {
		ext := "no extension"
		if r, ok := p.KindExtension[k]; ok && r.N > 0 {
			ext = "extension up to " + r.String()
		} else if p.Extension.N > 0 {
			ext = "extension up to " + p.Extension.String()
		} else if p.MaxExtension > 0 {
			ext = fmt.Sprintf("extension up to %d days", int(p.MaxExtension/deskDay))
		}
		out = append(out, fmt.Sprintf("  %-20s %s, %s", k, p.RuleFor(k), ext))
	}
	if n := len(c.Holidays); n > 0 {
		out = append(out, fmt.Sprintf("  %d holidays and %d working weekend days in the calendar", n, len(c.WorkingWeekends)))
	}
	return out
}

// Policy is what users are told about the policy.
func (c DeskConfig) Policy() handlers.PolicyInfo {
	return handlers.PolicyInfo{
		Version: c.PolicyVersion, URL: c.PolicyURL, SupportURL: c.SupportURL,
		ComplaintAuthority: c.ComplaintAuthority, ComplaintURL: c.ComplaintURL,
	}
}

// newDesk wires the privacy desk: the desk's own part of the store, plus
// the export and erasure of data other features keep (sections).
func newDesk(c DeskConfig, h *handlers.Handlers, db *store.DB, files handlers.FileSender, export []handlers.ExportSection, eraser handlers.AccountEraser) *handlers.Desk {
	d := &handlers.Desk{
		Handlers: h, Store: db, Files: files, Policy: c.Policy(), SLA: c.SLA(),
		ExtendBy: time.Duration(c.ExtendDays) * deskDay, Export: export, Eraser: eraser,
	}
	// The desk's workflows are a service handlers and jobs both call; the
	// handlers are its Telegram side.
	d.Service = &desk.Service{Store: db, Tickets: db, Notify: d.Notifier(), Roster: h.Roles.Roster(), Eraser: eraser,
		Clock: h.Clock, SLA: c.SLA(), Log: h.Log}
	return d
}
