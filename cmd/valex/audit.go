package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex/store"
)

const auditUsage = "usage: valex audit verify [FILE]   (FILE: a database or backup; default: the data dir's)"

// auditCommand runs `valex audit verify [FILE]`: every audit trail and the
// global log that anchors them are checked under the audit key
// (store.VerifyAudit), and each problem is named: which trail, and whether
// it was deleted, rewritten, has a gap or a cut-off tail. It reads the
// database in the data directory, which needs the bot stopped (the file is
// locked while it runs), or any backup of it.
func auditCommand(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "verify" || len(args) > 2 {
		return errors.New(auditUsage)
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	path := filepath.Join(cfg.DataDir, dbFile)
	if len(args) == 2 {
		path = args[1]
	}
	// A running bot holds the files: it verifies (the live database, or a
	// backup with its audit key).
	file := ""
	if len(args) == 2 {
		if file, err = filepath.Abs(args[1]); err != nil {
			return err
		}
	}
	if msg, ok, err := viaRunning(cfg.DataDir, controlRequest{Cmd: "audit-verify", File: file}); ok {
		fmt.Fprint(stdout, msg)
		return err
	}
	// The audit key lives in keys.db, never in the database or a backup.
	keys, err := openKeys(cfg, zerolog.Nop(), true)
	if err != nil {
		return fmt.Errorf("open the key store for the audit key: %w", err)
	}
	defer keys.Close()
	return verifyAudit(path, keys.AuditKey(), stdout)
}

// verifyAudit checks the audit of the store file at path under key (nil:
// store.DevAuditKey, which proves nothing), prints each problem and fails
// when there is any.
func verifyAudit(path string, key []byte, stdout io.Writer) error {
	// Open would create a missing file and find it "intact".
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	db, err := store.Open(path, store.Options{Timeout: time.Second, ReadOnly: true, AuditKey: key})
	if err != nil {
		return fmt.Errorf("open %s (a running bot holds its database: verify a backup instead): %w", path, err)
	}
	defer db.Close()
	return auditReport(db, stdout)
}

// auditReport verifies db's audit and prints the problems or the summary.
func auditReport(db *store.DB, stdout io.Writer) error {
	rep, err := db.VerifyAudit()
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, p)
	}
	if !rep.OK() {
		return fmt.Errorf("audit: %d problems in %d ticket trails, the system trail and the global log", len(rep.Problems), rep.Tickets)
	}
	fmt.Fprintf(stdout, "audit OK: %d trails, %d entries, %d system entries, %d anchored in the global log (root %x)\n",
		rep.Tickets, rep.Entries, rep.System, rep.Anchors, rep.Root[:8])
	return nil
}
