package main

import (
	"sort"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/handlers"
)

// operations answers admins' /stats and /jobs from the store and the
// scheduler: counts and states, never a person.
type operations struct{ m *Main }

func (o operations) Report(now time.Time) (handlers.AdminReport, error) {
	db := o.m.DB
	var rep handlers.AdminReport
	var err error
	if rep.Users, err = db.CountUsers(); err != nil {
		return rep, err
	}
	for _, a := range []struct {
		n    *int
		days int
	}{{&rep.Active1d, 1}, {&rep.Active7d, 7}, {&rep.Active30d, 30}} {
		if *a.n, err = db.CountActiveSince(now.AddDate(0, 0, -a.days)); err != nil {
			return rep, err
		}
	}
	day := now.UTC().Truncate(24 * time.Hour)
	month := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
	if err := db.InboxHandled(func(_ int, at time.Time) error {
		if !at.Before(day) {
			rep.UpdatesToday++
		}
		return nil
	}); err != nil {
		return rep, err
	}
	if rep.CostToday, err = db.CostByModelSince(day); err != nil {
		return rep, err
	}
	if rep.CostMonth, err = db.CostByModelSince(month); err != nil {
		return rep, err
	}
	if _, rep.TicketsOpen, err = db.OpenTickets("", "", 0, 0); err != nil {
		return rep, err
	}
	if rep.TicketsOverdue, err = db.DueOpenTickets(now, func(valex.Request, map[string]bool) error { return nil }); err != nil {
		return rep, err
	}
	for name, r := range o.m.Jobs.Results() {
		if r.Err != nil {
			rep.JobsFailing = append(rep.JobsFailing, name)
		}
	}
	sort.Strings(rep.JobsFailing)
	return rep, nil
}

func (o operations) Jobs() []handlers.JobLine {
	results := o.m.Jobs.Results()
	var out []handlers.JobLine
	for _, name := range o.m.Jobs.Names() {
		line := handlers.JobLine{Name: name}
		if r, ok := results[name]; ok {
			line.LastRun, line.Took, line.Result, line.Failed = r.At, r.Took, r.Summary, r.Err != nil
			if r.Err != nil {
				line.Result = "error" // the error itself is in the log, where nothing personal is
			}
		} else if at, err := o.m.DB.JobLastRun(name); err == nil && !at.IsZero() {
			line.LastRun, line.Result = at, "ok (before this start)"
		}
		out = append(out, line)
	}
	return out
}
