package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/jobs"
)

type atClock struct{ t time.Time }

func (c atClock) Now() time.Time { return c.t }

// The inactivity notice reaches the user through the Bot API in their
// language, and the account goes after the grace period with the wiring
// /forget uses.
func TestInactiveAccountNoticeAndErasureEndToEnd(t *testing.T) {
	a := startApp(t, nil)
	names := strings.Join(a.m.Jobs.Names(), ",")
	if !strings.Contains(names, "purge_communications") || !strings.Contains(names, "inactive_accounts") {
		t.Fatalf("jobs registered: %s", names)
	}
	contains(t, a.say(boris, "/start"), "Добро пожаловать")
	now := time.Now().UTC()
	if err := a.m.DB.TouchUser(boris.ID, now.AddDate(0, -25, 0)); err != nil {
		t.Fatal(err)
	}
	policy := valex.DefaultRetentionPolicy()
	run := func(at time.Time) string {
		t.Helper()
		s, err := jobs.InactiveAccounts(a.m.DB, a.m.inactiveNotice(policy), a.m.eraseInactive, policy, atClock{at})(context.Background())
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		return s
	}
	seq := a.lastSeq()
	if s := run(now); !strings.Contains(s, "notified 1") {
		t.Fatalf("summary %q", s)
	}
	e := a.next(boris.ID, seq, "sendMessage")
	contains(t, e, "Ваш аккаунт Valex будет удалён", "24 мес.", now.AddDate(0, 0, 30).Format("2006-01-02"))
	if s := run(now.AddDate(0, 0, 30)); !strings.Contains(s, "erased 1") {
		t.Fatalf("summary after the grace period %q", s)
	}
	if _, err := a.m.DB.User(boris.ID); !errors.Is(err, valex.ErrNotFound) {
		t.Fatalf("user after erasure: %v", err)
	}
	if rep, err := a.m.DB.VerifyAudit(); err != nil || !rep.OK() {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}
