package handlers

// /stats and /jobs for admins: counts and states only, never a person.

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/valex-ai/valex/bot"
)

// AdminReport is what /stats shows.
type AdminReport struct {
	Users, Active1d, Active7d, Active30d int
	UpdatesToday                         int
	CostToday, CostMonth                 map[string]int64 // micro-credits by model
	TicketsOpen, TicketsOverdue          int
	JobsFailing                          []string
}

// JobLine is one job's last run for /jobs.
type JobLine struct {
	Name    string
	LastRun time.Time // zero: not run yet
	Took    time.Duration
	Result  string
	Failed  bool
}

// Operations reports on the running bot (cmd/valex builds it from the store
// and the scheduler).
type Operations interface {
	Report(now time.Time) (AdminReport, error)
	Jobs() []JobLine
}

// AdminStats shows admins the numbers that matter: /stats.
func (h *Handlers) AdminStats(ctx context.Context, r *bot.Request) error {
	if h.Ops == nil {
		return h.Stats(ctx, r)
	}
	rep, err := h.Ops.Report(h.Clock.Now())
	if err != nil {
		return err
	}
	cost := func(m map[string]int64) string {
		if len(m) == 0 {
			return h.t(r, "admin.cost_none", nil)
		}
		var models []string
		for k := range m {
			models = append(models, k)
		}
		sort.Strings(models)
		var parts []string
		for _, k := range models {
			parts = append(parts, k+" "+credits(r.Lang, m[k]))
		}
		return strings.Join(parts, ", ")
	}
	jobs := h.t(r, "admin.jobs_ok", nil)
	if len(rep.JobsFailing) > 0 {
		jobs = h.t(r, "admin.jobs_failing", map[string]any{"Jobs": strings.Join(rep.JobsFailing, ", ")})
	}
	return h.reply(ctx, r, h.t(r, "admin.report", map[string]any{
		"Users": rep.Users, "Active1d": rep.Active1d, "Active7d": rep.Active7d, "Active30d": rep.Active30d,
		"Updates": rep.UpdatesToday, "CostToday": cost(rep.CostToday), "CostMonth": cost(rep.CostMonth),
		"Open": rep.TicketsOpen, "Overdue": rep.TicketsOverdue, "Jobs": jobs,
	}), nil)
}

// JobsList shows each job's last run and result: /jobs.
func (h *Handlers) JobsList(ctx context.Context, r *bot.Request) error {
	if h.Ops == nil {
		return h.reply(ctx, r, h.t(r, "admin.jobs_none", nil), nil)
	}
	var b strings.Builder
	b.WriteString(h.t(r, "admin.jobs_title", nil))
	for _, j := range h.Ops.Jobs() {
		key := "admin.job_line"
		switch {
		case j.LastRun.IsZero():
			key = "admin.job_never"
		case j.Failed:
			key = "admin.job_failed"
		}
		b.WriteString("\n" + h.t(r, key, map[string]any{"Job": j.Name, "At": j.LastRun.UTC().Format("2006-01-02 15:04 UTC"),
			"Ms": j.Took.Milliseconds(), "Result": j.Result}))
	}
	return h.reply(ctx, r, b.String(), nil)
}
