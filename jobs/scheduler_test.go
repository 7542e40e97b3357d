package jobs

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex/store"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "valex.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestCatchUpRunsOnlyMissedJobs(t *testing.T) {
	noon := time.Date(2026, 11, 24, 12, 30, 0, 0, time.UTC)
	db := openStore(t)
	cases := []struct {
		name    string
		lastRun time.Time
		spec    string
		want    bool
	}{
		{"never ran", time.Time{}, "@daily", true},
		{"missed yesterday's midnight", noon.Add(-36 * time.Hour), "@daily", true},
		{"ran after the last midnight", noon.Add(-time.Hour), "@daily", false},
		{"hourly, missed one", noon.Add(-61 * time.Minute), "@hourly", true},
		{"hourly, on time", noon.Add(-20 * time.Minute), "@hourly", false},
	}
	var mu sync.Mutex
	ran := map[string]bool{}
	s := New(time.UTC, db, fixedClock{noon}, zerolog.Nop())
	for _, tc := range cases {
		if !tc.lastRun.IsZero() {
			if err := db.SetJobLastRun(tc.name, tc.lastRun); err != nil {
				t.Fatal(err)
			}
		}
		name := tc.name
		if err := s.Add(Job{Name: name, Spec: tc.spec, Run: func(context.Context) (string, error) {
			mu.Lock()
			ran[name] = true
			mu.Unlock()
			return "ok", nil
		}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx)
	cancel()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		if ran[tc.name] != tc.want {
			t.Errorf("%s: ran=%v, want %v", tc.name, ran[tc.name], tc.want)
		}
	}
	// A successful run is recorded with the clock's time.
	if last, _ := db.JobLastRun("never ran"); !last.Equal(noon) {
		t.Fatalf("last run recorded as %v, want %v", last, noon)
	}
}

func TestFailedRunIsNotRecordedAndPanicIsContained(t *testing.T) {
	db := openStore(t)
	s := New(nil, db, fixedClock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, zerolog.Nop())
	must(t, s.Add(Job{Name: "fails", Spec: "@daily", Run: func(context.Context) (string, error) { return "", errors.New("disk full") }}))
	must(t, s.Add(Job{Name: "panics", Spec: "@daily", Run: func(context.Context) (string, error) { panic("bug") }}))
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx)
	cancel()
	must(t, s.Stop(context.Background()))
	for _, name := range []string{"fails", "panics"} {
		if last, _ := db.JobLastRun(name); !last.IsZero() {
			t.Fatalf("%s recorded as run at %v", name, last)
		}
	}
}

func TestRealScheduleRunsAndNeverOverlaps(t *testing.T) {
	db := openStore(t)
	// The wall clock here: cron itself ticks on real time.
	s := New(nil, db, wallClock{}, zerolog.Nop())
	var runs, inFlight, maxInFlight atomic.Int32
	must(t, db.SetJobLastRun("slow", time.Now())) // no catch-up run
	must(t, s.Add(Job{Name: "slow", Spec: "@every 1s", Run: func(context.Context) (string, error) {
		n := inFlight.Add(1)
		if n > maxInFlight.Load() {
			maxInFlight.Store(n)
		}
		time.Sleep(1500 * time.Millisecond)
		inFlight.Add(-1)
		runs.Add(1)
		return "", nil
	}}))
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx)
	time.Sleep(3500 * time.Millisecond)
	cancel()
	must(t, s.Stop(context.Background()))
	if runs.Load() < 1 {
		t.Fatal("the job never ran on its schedule")
	}
	if maxInFlight.Load() > 1 {
		t.Fatalf("%d runs of one job overlapped", maxInFlight.Load())
	}
}

func TestBadSpecIsRefused(t *testing.T) {
	s := New(nil, openStore(t), wallClock{}, zerolog.Nop())
	if err := s.Add(Job{Name: "x", Spec: "every tuesday", Run: nil}); err == nil {
		t.Fatal("a bad schedule was accepted")
	}
	if err := ParseSpec("0 3 * * *"); err != nil {
		t.Fatal(err)
	}
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
