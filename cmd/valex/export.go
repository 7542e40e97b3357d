package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/handlers"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/store"
)

const exportUserUsage = "usage: valex export-user TELEGRAM_ID   (with the bot stopped)"

// exportUserCommand runs `valex export-user ID`: it prints the access
// export of one user, the same JSON document /mydata sends them (without a
// request id: no ticket is opened), for the operator answering an access
// request that came by another route. An id without an account prints
// nothing and succeeds. It reads the database with the bot stopped: the
// running bot holds the files locked, and that is refused with a clear
// error rather than waited for.
func exportUserCommand(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) != 1 {
		return errors.New(exportUserUsage)
	}
	id, err := parseUserID(args[0])
	if err != nil {
		return fmt.Errorf("%w\n%s", err, exportUserUsage)
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	// A running bot holds the files: it exports.
	if msg, ok, err := viaRunning(cfg.DataDir, controlRequest{Cmd: "export-user", File: args[0]}); ok {
		fmt.Fprint(stdout, msg)
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, dbFile)); errors.Is(err, os.ErrNotExist) {
		return nil // no database, so no such user
	}
	keys, db, err := openStores(cfg, zerolog.Nop(), time.Now)
	if err != nil {
		return fmt.Errorf("export-user needs the bot stopped (its files are locked while it runs): %w", err)
	}
	defer func() {
		db.Close()
		keys.Close()
	}()
	if _, err := db.User(id); errors.Is(err, valex.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	desk, err := exportDesk(cfg, db)
	if err != nil {
		return err
	}
	doc, _, err := desk.AccessExport(id, 0, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", doc)
	return err
}

// exportDesk is the desk as far as the access export needs it: the same
// sections and access facts as the running bot, nothing that sends.
func exportDesk(cfg Config, db *store.DB) (*handlers.Desk, error) {
	tr, err := locales.Load()
	if err != nil {
		return nil, fmt.Errorf("load locales: %w", err)
	}
	h := &handlers.Handlers{Users: db, Tr: tr, Clock: valex.SystemClock{}, Log: zerolog.Nop()}
	d := newDesk(cfg.Desk, h, db, nil, exportSections(db), nil)
	d.Access = accessInfo(cfg, db)
	return d, nil
}

// exportSections are the categories kept outside the desk's part of the
// store, exported by /mydata and export-user alike.
func exportSections(db *store.DB) []handlers.ExportSection {
	return []handlers.ExportSection{db.ExportAI, db.ExportPayments}
}

// accessInfo is what the access export says besides the data: retention
// from the [retention] configuration, recipients from the usage ledger and
// the AI catalogue.
func accessInfo(cfg Config, db *store.DB) handlers.AccessInfo {
	p := cfg.Retention.Policy().Defaults()
	conversations := handlers.RetentionRule{Rule: handlers.RetainUserDeletes}
	if !p.ConversationsKept() {
		conversations = handlers.RetentionRule{Rule: handlers.RetainFixed, Period: p.Conversations}
	}
	providers := map[string]string{}
	for _, m := range cfg.AI.withDefaults().Models {
		providers[m.ID] = m.Provider
	}
	return handlers.AccessInfo{
		Retention: map[string]handlers.RetentionRule{
			store.CategoryRequests:      {Rule: handlers.RetainAfterClose, Period: p.Communications},
			store.CategoryMessages:      {Rule: handlers.RetainAfterClose, Period: p.Communications},
			store.CategoryAudit:         {Rule: handlers.RetainRecord},
			store.CategoryConversations: conversations,
			"payments":                  {Rule: handlers.RetainFixed, Period: p.PaymentRecords},
		},
		InactiveAfter: p.InactiveAfter,
		Usage:         db,
		ProviderOf:    func(model string) string { return providers[model] },
	}
}
