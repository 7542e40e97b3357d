package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/valex-ai/valex"
)

// Backuper writes a compacted, consistent copy of the database to a file,
// replacing it atomically, and returns its size.
type Backuper interface {
	Backup(dst string) (int64, error)
}

// KeySnapshotter writes a consistent copy of the key store (keys.db).
type KeySnapshotter interface {
	Backup(w io.Writer) (int64, error)
}

// BackupConfig says where backups go and how long they are kept.
type BackupConfig struct {
	Dir  string
	Keep int // database backups kept, newest first
	// MaxBytes caps what the kept database backups take together (0: no
	// cap): the oldest go first, the newest always stays.
	MaxBytes int64
	// Keys is the key store to snapshot beside each database backup; nil
	// (an untyped nil, not a nil pointer) means none.
	Keys KeySnapshotter
	// KeyDays is how many days key snapshots are kept (at least 1).
	//
	// Erasing a user deletes their data key, which makes their ciphertext
	// unreadable in the live database and in every database backup — but
	// not while a key snapshot still holds that key. So key snapshots are
	// kept for this window only, whatever Keep says: an erased key leaves
	// every backup within KeyDays days of its erasure (as long as the job
	// runs: it deletes expired snapshots first, on every run, even when the
	// backup itself then fails). A database backup older than the window is
	// restored with the live key store, in which erased users have no key.
	KeyDays int
}

const stampLayout = "2006-01-02"

// Backup writes dir/valex-YYYY-MM-DD.db and, with a key store,
// dir/keys-YYYY-MM-DD.db (a rerun on the same day replaces that day's files:
// idempotent); it keeps the newest Keep database backups and deletes key
// snapshots older than KeyDays days.
func Backup(db Backuper, c BackupConfig, clock valex.Clock) func(context.Context) (string, error) {
	return func(context.Context) (string, error) {
		if err := os.MkdirAll(c.Dir, 0o700); err != nil {
			return "", err
		}
		now := clock.Now().UTC()
		stamp := now.Format(stampLayout)
		expired, err := expireKeySnapshots(c.Dir, now, c.KeyDays)
		if err != nil {
			return "", err
		}
		name := filepath.Join(c.Dir, "valex-"+stamp+".db")
		n, err := db.Backup(name)
		if err != nil {
			return "", fmt.Errorf("write backup: %w", err)
		}
		summary := fmt.Sprintf("wrote %s (%d bytes)", filepath.Base(name), n)
		if c.Keys != nil {
			// After the database: every user in that backup has their key
			// in this snapshot (a key made in between only adds one).
			keys := filepath.Join(c.Dir, "keys-"+stamp+".db")
			kn, err := writeFileAtomic(keys, c.Keys.Backup)
			if err != nil {
				return "", fmt.Errorf("write key snapshot: %w", err)
			}
			summary += fmt.Sprintf(" and %s (%d bytes)", filepath.Base(keys), kn)
		}
		removed, err := rotate(c.Dir, c.Keep, c.MaxBytes)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s, removed %d old backups and %d expired key snapshots", summary, removed, expired), nil
	}
}

// writeFileAtomic writes name through a synced temporary file renamed into
// place, so a reader never sees a half-written file.
func writeFileAtomic(name string, write func(io.Writer) (int64, error)) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".backup-*")
	if err != nil {
		return 0, err
	}
	n, err := write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		return 0, errors.Join(err, removeIfExists(tmp.Name()))
	}
	return n, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// rotate deletes the oldest database backups (names sort by date) until at
// most keep remain and, when maxBytes > 0, they take at most maxBytes
// together. The newest backup is always kept, whatever its size.
func rotate(dir string, keep int, maxBytes int64) (int, error) {
	keep = max(keep, 1)
	names, err := stamped(dir, "valex-")
	if err != nil {
		return 0, err
	}
	sizes := make([]int64, len(names))
	var total int64
	for i, name := range names {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return 0, err
		}
		sizes[i] = fi.Size()
		total += sizes[i]
	}
	removed := 0
	for len(names) > 1 && (len(names) > keep || (maxBytes > 0 && total > maxBytes)) {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
			return removed, err
		}
		total -= sizes[0]
		names, sizes = names[1:], sizes[1:]
		removed++
	}
	return removed, nil
}

// expireKeySnapshots deletes keys-YYYY-MM-DD.db files dated days or more
// before now's date, so at most days snapshots (today's included) remain.
func expireKeySnapshots(dir string, now time.Time, days int) (int, error) {
	days = max(days, 1)
	names, err := stamped(dir, "keys-")
	if err != nil {
		return 0, err
	}
	today := now.UTC().Truncate(24 * time.Hour)
	removed := 0
	for _, name := range names {
		day, err := time.Parse(stampLayout, strings.TrimSuffix(strings.TrimPrefix(name, "keys-"), ".db"))
		if err != nil {
			continue // not one of ours
		}
		if day.AddDate(0, 0, days).After(today) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// stamped lists dir's prefix*.db files, sorted.
func stamped(dir, prefix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && strings.HasSuffix(e.Name(), ".db") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}
