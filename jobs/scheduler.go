// Package jobs runs the periodic work — retention purges, desk reminders,
// backups — on cron schedules. It is the only importer of robfig/cron.
// Every job is idempotent, catches up after downtime (a run missed while the
// bot was down happens at start-up) and logs what it did.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
)

// Job is one periodic task. Run returns a short summary for the log (counts,
// never personal data).
type Job struct {
	Name string
	Spec string // standard 5-field cron spec or a descriptor like "@daily"
	Run  func(ctx context.Context) (summary string, err error)
}

// RunLog remembers when each job last finished, so missed runs are caught
// up after a restart. The store implements it.
type RunLog interface {
	JobLastRun(name string) (time.Time, error)
	SetJobLastRun(name string, at time.Time) error
}

// Scheduler runs jobs on their schedules.
type Scheduler struct {
	cron  *cron.Cron
	runs  RunLog
	clock valex.Clock
	log   zerolog.Logger
	loc   *time.Location

	mu      sync.Mutex
	jobs    []scheduled
	ctx     context.Context
	running map[string]bool
	wg      sync.WaitGroup
	results map[string]Result // the last run of each job

	// Observe, when set, sees every run (for metrics).
	Observe func(name string, took time.Duration, err error)
}

// Result is what a job's last run did.
type Result struct {
	At      time.Time
	Took    time.Duration
	Summary string
	Err     error
}

// Results returns the last run of each job that ran since start.
func (s *Scheduler) Results() map[string]Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Result, len(s.results))
	for k, v := range s.results {
		out[k] = v
	}
	return out
}

type scheduled struct {
	job   Job
	sched cron.Schedule
}

// New returns a scheduler interpreting specs in loc (nil = UTC).
func New(loc *time.Location, runs RunLog, clock valex.Clock, log zerolog.Logger) *Scheduler {
	if loc == nil {
		loc = time.UTC
	}
	return &Scheduler{
		cron:    cron.New(cron.WithLocation(loc)),
		runs:    runs,
		clock:   clock,
		log:     log,
		loc:     loc,
		running: make(map[string]bool),
		ctx:     context.Background(),
	}
}

// ParseSpec checks a cron spec (used by `valex check`).
func ParseSpec(spec string) error {
	_, err := cron.ParseStandard(spec)
	return err
}

// Add registers a job. Names must be unique: they key the run log.
func (s *Scheduler) Add(j Job) error {
	sched, err := cron.ParseStandard(j.Spec)
	if err != nil {
		return fmt.Errorf("job %s: schedule %q: %w", j.Name, j.Spec, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.jobs {
		if x.job.Name == j.Name {
			return fmt.Errorf("job %s: added twice", j.Name)
		}
	}
	s.jobs = append(s.jobs, scheduled{job: j, sched: sched})
	s.cron.Schedule(sched, cron.FuncJob(func() { s.RunNow(j.Name) }))
	return nil
}

// Start runs every job whose last scheduled time passed while the bot was
// down, then starts the clock. Jobs stop receiving new runs when ctx ends;
// Stop waits for the ones in flight.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	jobs := append([]scheduled(nil), s.jobs...)
	s.mu.Unlock()
	now := s.clock.Now()
	for _, j := range jobs {
		if s.missed(j, now) {
			s.log.Info().Str("job", j.job.Name).Msg("catching up a run missed while stopped")
			s.RunNow(j.job.Name)
		}
	}
	s.cron.Start()
}

// missed reports whether a scheduled time fell between the last run and now.
// A job that never ran counts as missed: its first run happens at start-up.
func (s *Scheduler) missed(j scheduled, now time.Time) bool {
	last, err := s.runs.JobLastRun(j.job.Name)
	if err != nil {
		s.log.Error().Err(err).Str("job", j.job.Name).Msg("read last run")
		return false
	}
	if last.IsZero() {
		return true
	}
	return !j.sched.Next(last.In(s.loc)).After(now)
}

// RunNow runs a job in the background unless it is already running (a slow
// run is never doubled up by the next tick).
func (s *Scheduler) RunNow(name string) {
	s.mu.Lock()
	var job *Job
	for i := range s.jobs {
		if s.jobs[i].job.Name == name {
			job = &s.jobs[i].job
		}
	}
	if job == nil || s.running[name] || s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.running[name] = true
	ctx := s.ctx
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, name)
			s.mu.Unlock()
		}()
		s.runOnce(ctx, *job)
	}()
}

// RunAndWait runs a job now and returns its summary and error, for an
// operator command or a test that needs the result. A job already running
// is not doubled up: it returns an error instead.
func (s *Scheduler) RunAndWait(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	var job *Job
	for i := range s.jobs {
		if s.jobs[i].job.Name == name {
			job = &s.jobs[i].job
		}
	}
	if job == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("no job %q", name)
	}
	if s.running[name] {
		s.mu.Unlock()
		return "", fmt.Errorf("job %s is running", name)
	}
	s.running[name] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, name)
		s.mu.Unlock()
	}()
	return safeRun(ctx, *job)
}

func (s *Scheduler) runOnce(ctx context.Context, j Job) {
	start := s.clock.Now()
	summary, err := safeRun(ctx, j)
	took := s.clock.Now().Sub(start)
	s.mu.Lock()
	if s.results == nil {
		s.results = map[string]Result{}
	}
	s.results[j.Name] = Result{At: start, Took: took, Summary: summary, Err: err}
	observe := s.Observe
	s.mu.Unlock()
	if observe != nil {
		observe(j.Name, took, err)
	}
	if err != nil {
		s.log.Error().Err(err).Str("job", j.Name).Int64("took_ms", took.Milliseconds()).Msg("job failed")
		return // not recorded: the next start-up or tick tries again
	}
	if err := s.runs.SetJobLastRun(j.Name, start); err != nil {
		s.log.Error().Err(err).Str("job", j.Name).Msg("record job run")
	}
	s.log.Info().Str("job", j.Name).Int64("took_ms", took.Milliseconds()).Str("result", summary).Msg("job done")
}

func safeRun(ctx context.Context, j Job) (summary string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return j.Run(ctx)
}

// Stop stops the clock and waits for running jobs, up to ctx's deadline.
func (s *Scheduler) Stop(ctx context.Context) error {
	<-s.cron.Stop().Done()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("jobs still running at shutdown")
	}
}

// Names lists the registered jobs.
func (s *Scheduler) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.jobs))
	for i, j := range s.jobs {
		out[i] = j.job.Name
	}
	return out
}
