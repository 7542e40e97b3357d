package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/valex-ai/valex/store"
)

const auditUsage = "usage: valex audit verify [FILE]   (FILE: a database or backup; default: the data dir's)"

// auditCommand runs `valex audit verify [FILE]`: every ticket's hash-chained
// audit trail is checked (store.VerifyAudit) and each broken one named. It
// reads the database in the data directory, which needs the bot stopped
// (the file is locked while it runs), or any backup of it.
func auditCommand(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "verify" || len(args) > 2 {
		return errors.New(auditUsage)
	}
	path := ""
	if len(args) == 2 {
		path = args[1]
	} else {
		cfg, err := LoadConfig(getenv)
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		path = filepath.Join(cfg.DataDir, "valex.db")
	}
	// Open would create a missing file and find it "intact".
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	db, err := store.Open(path, store.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("open %s (a running bot holds its database: verify a backup instead): %w", path, err)
	}
	defer db.Close()
	rep, err := db.VerifyAudit()
	if err != nil {
		return err
	}
	for _, b := range rep.Broken {
		fmt.Fprintf(stdout, "ticket %d: %v\n", b.TicketID, b.Err)
	}
	if !rep.OK() {
		return fmt.Errorf("audit: %d of %d trails broken", len(rep.Broken), rep.Tickets)
	}
	fmt.Fprintf(stdout, "audit OK: %d trails, %d entries, every chain intact\n", rep.Tickets, rep.Entries)
	return nil
}
