package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
)

// compactCommand runs `valex compact`: it rewrites keys.db and valex.db without their free
// pages (where deleted data stays readable until bbolt reuses them) and
// prints the sizes. It needs the bot stopped: the running bot compacts by
// itself (jobs.compact), and holds the files locked, which is refused with
// a clear error rather than waited for.
func compactCommand(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) != 0 {
		return errors.New("usage: valex compact   (with the bot stopped)")
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	path := filepath.Join(cfg.DataDir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("nothing to compact: %w", err)
	}
	keys, db, err := openStores(cfg, zerolog.Nop(), time.Now)
	if err != nil {
		return fmt.Errorf("compact %s: is another valex running? Stop it first (a running bot compacts by itself, see jobs.compact): %w", path, err)
	}
	defer keys.Close()
	defer db.Close()
	start := time.Now()
	kBefore, kAfter, err := keys.Compact() // erased users' wrapped keys leave its freed pages
	if err != nil {
		return err
	}
	before, after, err := db.Compact()
	if err != nil {
		return err
	}
	saved := 0.0
	if before > 0 {
		saved = 100 * float64(before-after) / float64(before)
	}
	if _, err = fmt.Fprintf(stdout, "compacted %s: %d → %d bytes (%.0f%% smaller) in %s\n",
		path, before, after, saved, time.Since(start).Round(time.Millisecond)); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "compacted %s: %d → %d bytes\n", keys.Path(), kBefore, kAfter)
	return err
}
