package jobs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/valex-ai/valex"
)

// Backuper writes a consistent copy of the database.
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}

// Backup writes dir/valex-YYYY-MM-DD.db (a rerun on the same day replaces
// that day's file: idempotent) and keeps the newest keep files.
func Backup(db Backuper, dir string, keep int, clock valex.Clock) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", err
		}
		name := filepath.Join(dir, "valex-"+clock.Now().UTC().Format("2006-01-02")+".db")
		tmp, err := os.CreateTemp(dir, ".backup-*")
		if err != nil {
			return "", err
		}
		n, err := db.Backup(tmp)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), name) // a reader never sees a half-written backup
		}
		if err != nil {
			os.Remove(tmp.Name())
			return "", fmt.Errorf("write backup: %w", err)
		}
		removed, err := rotate(dir, keep)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("wrote %s (%d bytes), removed %d old", filepath.Base(name), n, removed), nil
	}
}

// rotate deletes all but the newest keep backups (names sort by date).
func rotate(dir string, keep int) (int, error) {
	if keep <= 0 {
		return 0, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "valex-") && strings.HasSuffix(e.Name(), ".db") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	removed := 0
	for len(names) > keep {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
			return removed, err
		}
		names = names[1:]
		removed++
	}
	return removed, nil
}
