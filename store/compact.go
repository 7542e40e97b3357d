package store

// Compaction and compacted backups.
//
// bbolt never gives freed pages back to the file system, and it overwrites
// them only when it happens to reuse them: a deleted value stays readable in
// the file, and in any byte-for-byte copy of it, for as long as its page sits
// on the freelist. Compaction rewrites the live keys and values into a fresh
// file, so nothing deleted survives it; backups are written the same way.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.etcd.io/bbolt"
)

// compactingSuffix names the file an online compaction writes before it
// replaces the store. Open removes a stale one: a crash mid-compaction leaves
// the old file complete and in place.
const compactingSuffix = ".compacting"

// compactTxMaxSize bounds the bytes copied per write transaction while
// compacting, so memory stays flat on a large file.
const compactTxMaxSize = 32 << 20

// FileStats describes how much of the store file is free space.
type FileStats struct {
	FileSize  int64 // bytes on disk
	DataSize  int64 // bytes up to bbolt's high-water mark (the rest is preallocated tail)
	PageSize  int
	FreePages int   // free and pending pages on bbolt's freelist
	FreeBytes int64 // FreePages × PageSize: what compaction would give back
}

// FreeRatio is the share of the file on bbolt's freelist (0 for an empty
// file).
func (s FileStats) FreeRatio() float64 {
	if s.FileSize <= 0 {
		return 0
	}
	return float64(s.FreeBytes) / float64(s.FileSize)
}

// Stats reports the file's size and free pages.
func (db *DB) Stats() (FileStats, error) {
	var s FileStats
	err := db.view(func(tx *bbolt.Tx) error {
		fi, err := os.Stat(db.path)
		if err != nil {
			return err
		}
		st := tx.DB().Stats()
		s = FileStats{
			FileSize:  fi.Size(),
			DataSize:  tx.Size(),
			PageSize:  tx.DB().Info().PageSize,
			FreePages: st.FreePageN + st.PendingPageN,
		}
		s.FreeBytes = int64(s.FreePages) * int64(s.PageSize)
		return nil
	})
	if err != nil {
		return FileStats{}, fmt.Errorf("store stats: %w", err)
	}
	return s, nil
}

// FreeRatio is Stats().FreeRatio(): what share of the file compaction would
// give back.
func (db *DB) FreeRatio() (float64, error) {
	s, err := db.Stats()
	return s.FreeRatio(), err
}

// Compact rewrites the store file without its free pages, while the store
// stays open: every transaction waits (handling pauses) for the seconds it
// takes. The new file is written beside the old one as <path>.compacting,
// synced, opened, and renamed over the old one; only then is the old handle
// closed. So an error before the rename leaves the old file in use and no
// temporary file, and a crash at any point leaves either the old or the new
// complete file under the store's name. The inbox lives in the same file, so
// pending updates move with everything else.
//
// Never call it inside a transaction (it would wait for itself).
func (db *DB) Compact() (before, after int64, err error) {
	if db.opts.ReadOnly {
		return 0, 0, errors.New("compact: the store is open read-only")
	}
	db.maint.Lock() // a running backup finishes first, without stalling transactions behind us
	defer db.maint.Unlock()
	db.swap.Lock()
	defer db.swap.Unlock()

	fi, err := os.Stat(db.path)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	before = fi.Size()
	tmp := db.path + compactingSuffix
	fresh, err := db.compactInto(tmp)
	if err == nil {
		if err = os.Rename(tmp, db.path); err != nil {
			_ = fresh.Close()
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return before, before, fmt.Errorf("compact %s: %w", db.path, err)
	}
	// The new file is the store from here on, even if what follows fails.
	old := db.bolt
	db.bolt = fresh
	var errs []error
	if err := syncDir(filepath.Dir(db.path)); err != nil {
		errs = append(errs, fmt.Errorf("sync directory: %w", err))
	}
	if err := old.Close(); err != nil { // the old file is already unlinked
		errs = append(errs, fmt.Errorf("close the replaced file: %w", err))
	}
	if fi, err := os.Stat(db.path); err == nil {
		after = fi.Size()
	} else {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return before, after, fmt.Errorf("compacted %s, but: %w", db.path, err)
	}
	return before, after, nil
}

// compactInto writes a compacted copy of the open store to tmp and returns
// it opened with the store's options (so it holds its file lock before it
// takes the store's name). The caller holds db.swap for writing.
func (db *DB) compactInto(tmp string) (*bbolt.DB, error) {
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := compactTo(tmp, db.bolt, db.opts); err != nil {
		return nil, err
	}
	fresh, err := bbolt.Open(tmp, 0o600, boltOptions(db.opts))
	if err != nil {
		return nil, fmt.Errorf("open the compacted file: %w", err)
	}
	return fresh, nil
}

// Backup writes a compacted copy of the store to dst, replacing dst
// atomically (a reader never sees a half-written backup), while the store
// stays in use: a read transaction pins the snapshot and writers go on. It
// returns the size of the copy. The copy holds only live data, never freed
// pages, so nothing deleted before the backup is in it. The copy is a
// regular store file that Open can read.
func (db *DB) Backup(dst string) (int64, error) {
	db.maint.Lock() // one backup or compaction at a time
	defer db.maint.Unlock()
	db.swap.RLock()
	defer db.swap.RUnlock()

	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	tmp := f.Name()
	err = f.Close() // bbolt opens it itself
	if err == nil {
		err = compactTo(tmp, db.bolt, Options{Timeout: db.opts.Timeout})
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("backup to %s: %w", dst, err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return 0, fmt.Errorf("backup to %s: sync directory: %w", dst, err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, fmt.Errorf("backup to %s: %w", dst, err)
	}
	return fi.Size(), nil
}

// compactTo copies every bucket, key, value and sequence of src into the
// (new or empty) bbolt file at path and syncs it. Commits are not synced one
// by one: the file is not in use until it is complete and synced once.
func compactTo(path string, src *bbolt.DB, opts Options) error {
	o := *boltOptions(opts)
	o.ReadOnly = false
	o.NoSync = true
	// No InitialMmapSize: below 16 MiB bbolt sizes the file to the map, so
	// mapping the source's size would give the copy the source's size.
	dst, err := bbolt.Open(path, 0o600, &o)
	if err != nil {
		return err
	}
	err = src.View(func(srcTx *bbolt.Tx) error { return copyAll(dst, srcTx, compactTxMaxSize) })
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyAll copies everything srcTx sees into dst, committing every txMax
// bytes. Unlike bbolt.Compact it commits the last batch while srcTx is still
// open: a pending Put keeps pointing into the source's memory map until its
// commit, and a writer on a live source may grow and remap that file as soon
// as no read transaction holds it (bbolt.Compact's last commit then copied
// from unmapped memory: a SIGSEGV during a backup under load).
func copyAll(dst *bbolt.DB, srcTx *bbolt.Tx, txMax int64) error {
	tx, err := dst.Begin(true)
	if err != nil {
		return err
	}
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	var size int64
	// grow commits the batch before it passes txMax, so memory stays flat.
	grow := func(n int64) error {
		if size == 0 || size+n <= txMax {
			size += n
			return nil
		}
		err := tx.Commit()
		tx = nil
		if err != nil {
			return err
		}
		if tx, err = dst.Begin(true); err != nil {
			tx = nil
			return err
		}
		size = n
		return nil
	}
	// target finds the copy of a bucket in the current batch's transaction.
	target := func(path [][]byte) *bbolt.Bucket {
		b := tx.Bucket(path[0])
		for _, name := range path[1:] {
			b = b.Bucket(name)
		}
		b.FillPercent = 1.0 // the copy is read far more than written
		return b
	}
	var copyBucket func(path [][]byte, src *bbolt.Bucket) error
	copyBucket = func(path [][]byte, src *bbolt.Bucket) error {
		return src.ForEach(func(k, v []byte) error {
			if err := grow(int64(len(k) + len(v))); err != nil {
				return err
			}
			parent := target(path)
			if v != nil {
				return parent.Put(k, v)
			}
			child := src.Bucket(k)
			nb, err := parent.CreateBucket(k)
			if err != nil {
				return err
			}
			if err := nb.SetSequence(child.Sequence()); err != nil {
				return err
			}
			return copyBucket(append(path[:len(path):len(path)], k), child)
		})
	}
	err = srcTx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		if err := grow(int64(len(name))); err != nil {
			return err
		}
		nb, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		if err := nb.SetSequence(b.Sequence()); err != nil {
			return err
		}
		return copyBucket([][]byte{name}, b)
	})
	if err != nil {
		return err
	}
	err = tx.Commit()
	tx = nil
	return err
}

// removeStaleCompaction deletes what a compaction interrupted by a crash
// left. Called with the store's file lock held, so no compaction is running.
func removeStaleCompaction(path string) error {
	err := os.Remove(path + compactingSuffix)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove an interrupted compaction: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
