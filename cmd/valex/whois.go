package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
)

const whoisUsage = "usage: valex whois-log TELEGRAM_ID"

// whoisLogCommand runs `valex whois-log ID`: it prints the pseudonym that
// stands for that Telegram user in the bot's log lines (the "user" field,
// and "chat" for their private chat), so an operator can grep one user's
// lines although the logs hold nobody's id. The pseudonym is keyed with the
// log key of keys.db, which the running bot holds locked: like backup and
// export-user, it needs the bot stopped.
func whoisLogCommand(args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) != 1 {
		return errors.New(whoisUsage)
	}
	id, err := parseUserID(args[0])
	if err != nil {
		return fmt.Errorf("%w\n%s", err, whoisUsage)
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	// A running bot holds the key store: it answers.
	if msg, ok, err := viaRunning(cfg.DataDir, controlRequest{Cmd: "whois-log", File: strconv.FormatInt(id, 10)}); ok {
		fmt.Fprint(stdout, msg)
		return err
	}
	keys, err := openKeys(cfg, zerolog.Nop(), true)
	if err != nil {
		return lockHint(cfg.DataDir, fmt.Errorf("open the key store: %w", err))
	}
	defer keys.Close()
	fmt.Fprintln(stdout, valex.NewPseudonymizer(keys.LogKey(), keys.LogSalt).User(id))
	return nil
}

// parseUserID parses a Telegram user id (a positive number).
func parseUserID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not a Telegram user id", s)
	}
	return id, nil
}
