package jobs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Compacter rewrites the database file without its free pages, pausing
// every transaction while it does.
type Compacter interface {
	FreeRatio() (float64, error)
	Compact() (before, after int64, err error)
}

// Compactor runs compactions of the live database: on a schedule when free
// pages pass a threshold (Job), and soon after an erasure batch (Request),
// because a deleted value stays readable in freed pages until the file is
// compacted. Compactions run one at a time, in their own goroutine, never
// inside a caller's transaction.
type Compactor struct {
	db    Compacter
	keys  Compacter // the key store; nil when there is none
	delay time.Duration
	log   zerolog.Logger

	run sync.Mutex // one compaction at a time

	mu      sync.Mutex
	timer   *time.Timer // a requested compaction is waiting
	stopped bool
	wg      sync.WaitGroup
}

// NewCompactor returns a Compactor; a requested compaction starts delay
// after the first request, so requests within delay of each other (an
// erasure batch) share one compaction.
func NewCompactor(db Compacter, delay time.Duration, log zerolog.Logger) *Compactor {
	return &Compactor{db: db, delay: delay, log: log}
}

// WithKeyStore makes every requested compaction compact the key store first:
// an erased user's wrapped key stays in its freed pages, beside the master
// key, until then. The scheduled job compacts it past the same threshold.
func (c *Compactor) WithKeyStore(keys Compacter) *Compactor {
	c.keys = keys
	return c
}

// Job is the scheduled compaction: it compacts when at least threshold of
// the file is free pages, and otherwise only reports the ratio.
func (c *Compactor) Job(threshold float64) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		keysNote := ""
		if c.keys != nil {
			if kr, err := c.keys.FreeRatio(); err != nil {
				return "", err
			} else if kr >= threshold {
				if err := c.compactKeys(); err != nil {
					return "", err
				}
				keysNote = "; key store compacted"
			}
		}
		ratio, err := c.db.FreeRatio()
		if err != nil {
			return "", err
		}
		if ratio < threshold {
			return fmt.Sprintf("%.0f%% of the file free, under %.0f%%: not compacted%s", ratio*100, threshold*100, keysNote), nil
		}
		before, after, pause, err := c.compact()
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%.0f%% of the file free: compacted %s → %s, handling paused %s%s",
			ratio*100, sizeString(before), sizeString(after), pause.Round(time.Millisecond), keysNote), nil
	}
}

// Request asks for a compaction soon, in the background; it never blocks,
// so the erasure code may call it anywhere. Requests coalesce: every request
// is satisfied by a compaction that starts after it.
func (c *Compactor) Request() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || c.timer != nil {
		return
	}
	c.wg.Add(1)
	c.timer = time.AfterFunc(c.delay, func() {
		defer c.wg.Done()
		c.mu.Lock()
		c.timer = nil
		c.mu.Unlock()
		c.runRequested() // even if Stop came meanwhile: it waits for this
	})
}

// Stop runs a compaction still waiting for its delay at once (erased data
// must not outlive the process in freed pages), waits for a running one and
// refuses further requests. Call it before closing the database.
func (c *Compactor) Stop() {
	c.mu.Lock()
	c.stopped = true
	pending := c.timer != nil && c.timer.Stop()
	if pending {
		c.timer = nil
	}
	c.mu.Unlock()
	if pending {
		c.runRequested()
		c.wg.Done()
	}
	c.wg.Wait()
}

func (c *Compactor) runRequested() {
	if c.keys != nil {
		if err := c.compactKeys(); err != nil {
			c.log.Error().Err(err).Msg("requested key store compaction")
		}
	}
	before, after, pause, err := c.compact()
	if err != nil {
		c.log.Error().Err(err).Msg("requested compaction")
		return
	}
	c.log.Info().Int64("before_bytes", before).Int64("after_bytes", after).Int64("pause_ms", pause.Milliseconds()).
		Msg("compacted the database after erasures")
}

// compact runs one compaction; pause is how long it held every transaction.
func (c *Compactor) compact() (before, after int64, pause time.Duration, err error) {
	c.run.Lock()
	defer c.run.Unlock()
	start := time.Now() // a duration to report, not a decision: the real clock
	before, after, err = c.db.Compact()
	return before, after, time.Since(start), err
}

func (c *Compactor) compactKeys() error {
	c.run.Lock()
	defer c.run.Unlock()
	_, _, err := c.keys.Compact()
	return err
}

// sizeString formats a byte count for a log line.
func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
