package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

func TestDeskConfigValidate(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*DeskConfig)
		want  string // "" = valid
	}{
		{"defaults", func(*DeskConfig) {}, ""},
		{"complaint authority with url", func(c *DeskConfig) {
			c.ComplaintAuthority, c.ComplaintURL = "the Data Protection Office", "https://example.org/complain"
		}, ""},
		{"per-kind deadline", func(c *DeskConfig) { c.SLAKindDays = map[string]int{"access": 10} }, ""},
		{"extensions off", func(c *DeskConfig) { c.MaxExtensionDays, c.ExtendDays = 0, 0 }, ""},
		{"no version", func(c *DeskConfig) { c.PolicyVersion = "" }, "policy_version"},
		{"version with a space", func(c *DeskConfig) { c.PolicyVersion = "1 beta" }, "policy_version"},
		{"policy url not http", func(c *DeskConfig) { c.PolicyURL = "ftp://x" }, "policy_url"},
		{"no support url", func(c *DeskConfig) { c.SupportURL = "" }, "support_url"},
		{"complaint url without a name", func(c *DeskConfig) { c.ComplaintURL = "https://example.org" }, "complaint_authority"},
		{"zero sla", func(c *DeskConfig) { c.SLADays = 0 }, "sla_days"},
		{"unknown kind", func(c *DeskConfig) { c.SLAKindDays = map[string]int{"acess": 10} }, `unknown kind "acess"`},
		{"negative kind days", func(c *DeskConfig) { c.SLAKindDays = map[string]int{"access": -1} }, "sla_kind_days"},
		{"extension beyond the max", func(c *DeskConfig) { c.ExtendDays = 61 }, "extend_days"},
		{"negative max extension", func(c *DeskConfig) { c.MaxExtensionDays = -1 }, "max_extension_days"},
		{"legal rules", func(c *DeskConfig) {
			c.Deadline, c.Extension = "1 month", "2 months"
			c.DeadlineKinds = map[string]string{"access": "10 working days"}
			c.ExtensionKinds = map[string]string{"access": "5 working days"}
			c.Holidays, c.WorkingWeekends = []string{"2027-01-07"}, []string{"2027-01-16"}
		}, ""},
		{"bad deadline unit", func(c *DeskConfig) { c.Deadline = "4 weeks" }, "desk deadline"},
		{"bad kind rule", func(c *DeskConfig) { c.DeadlineKinds = map[string]string{"access": "ten days"} }, "deadline_kinds.access"},
		{"rule for an unknown kind", func(c *DeskConfig) { c.ExtensionKinds = map[string]string{"acess": "5 days"} }, `unknown kind "acess"`},
		{"bad holiday", func(c *DeskConfig) { c.Holidays = []string{"2027-13-01"} }, "holidays"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultDeskConfig()
			tt.tweak(&c)
			errs := c.validate()
			var all []string
			for _, e := range errs {
				all = append(all, e.Error())
			}
			got := strings.Join(all, "; ")
			if (tt.want == "") != (len(errs) == 0) || !strings.Contains(got, tt.want) {
				t.Fatalf("validate = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDeskConfigSLA(t *testing.T) {
	c := DefaultDeskConfig()
	c.SLAKindDays = map[string]int{"access": 10}
	p := c.SLA()
	if p.Period(valex.KindAccess) != 10*24*time.Hour || p.Period(valex.KindErasure) != 30*24*time.Hour || p.MaxExtension != 60*24*time.Hour {
		t.Fatalf("SLA = %+v", p)
	}
	if d := DefaultDeskConfig().SLA(); d.Period(valex.KindSupport) != valex.DefaultSLAPeriod || d.PerKind != nil {
		t.Fatalf("default SLA = %+v", d)
	}
}

func TestAuditVerifyCommand(t *testing.T) {
	// The audit key is in the data directory's key store, as in production.
	env := envFrom(map[string]string{"VALEX_DATA_DIR": t.TempDir()})
	cfg, _ := LoadConfig(env)
	path := filepath.Join(cfg.DataDir, "valex.db")
	db, err := openStoreAt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for _, user := range []int64{1, 2} {
		// The store takes tickets only from users with an account.
		if _, _, err := db.EnsureUser(valex.User{ID: user, Language: "en"}); err != nil {
			t.Fatal(err)
		}
		r, err := valex.NewRequest(valex.KindAccess, user, "", now, valex.DefaultSLAPolicy())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateTicket(r); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	var out strings.Builder
	if err := auditCommand([]string{"verify", path}, &out, env); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "audit OK: 2 trails, 2 entries") {
		t.Fatalf("output = %q", out.String())
	}
	for _, args := range [][]string{nil, {"check"}, {"verify", "a", "b"}} {
		if err := auditCommand(args, &out, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("audit %v: %v", args, err)
		}
	}
	if err := auditCommand([]string{"verify", filepath.Join(t.TempDir(), "typo.db")}, &out, env); err == nil {
		t.Error("verify of a missing file succeeded (and created it)")
	}
	// Without a file the data directory's database is verified.
	out.Reset()
	if err := auditCommand([]string{"verify"}, &out, env); err != nil || !strings.Contains(out.String(), "audit OK") {
		t.Fatalf("verify of the data dir: %v, %q", err, out.String())
	}
}
