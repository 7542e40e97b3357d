package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
)

// CLI conventions: `valex --help`, `valex <cmd> --help` and `valex
// --version` print and exit 0 and never act; a flag a command does not
// know exits 2 with its usage. Checked before any command runs, so a
// --help can never be taken for a file name (valex backup --help once
// wrote a backup called "--help").

// commandUsage is each command's usage line.
var commandUsage = map[string]string{
	"run":         "valex run [--delete-webhook]      run the bot against the Bot API (needs VALEX_TELEGRAM_TOKEN)",
	"demo":        "valex demo [--data DIR]           try everything in the terminal: no token, no network",
	"check":       "valex check                        validate the configuration and print every problem",
	"backup":      "valex backup FILE                  write a consistent copy of the database to FILE (through the running bot when there is one)",
	"restore":     "valex restore FILE                 replace the database with a backup (bot stopped)",
	"audit":       "valex audit verify [FILE]          check every audit chain of the database, or of a backup FILE",
	"whois-log":   "valex whois-log ID                 print the pseudonym that stands for Telegram user ID in the logs",
	"export-user": "valex export-user ID               print user ID's data as /mydata would (JSON)",
	"payments":    "valex payments export --from DATE --to DATE   payment records of a period as CSV (UTC; bot stopped)",
	"compact":     "valex compact                      rewrite the database without its free pages (bot stopped)",
	"version":     "valex version                      print the version, commit and schema",
	"healthcheck": "valex healthcheck                  exit 0 when the running bot's /healthz answers (for Docker's HEALTHCHECK)",
}

// commandFlags are the flags each command knows.
var commandFlags = map[string][]string{
	"run":      {"--delete-webhook"},
	"demo":     {"--data"},
	"payments": {"--from", "--to"},
}

// usageError exits 2: the command line is wrong, nothing was done.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// ExitCode is the process's exit status for err.
func ExitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// conventions handles --help and --version anywhere and refuses unknown
// flags. done is true when it answered and nothing else may run.
func conventions(args []string, stdout io.Writer) (done bool, err error) {
	if len(args) == 0 {
		return false, nil
	}
	switch args[0] {
	case "--help", "-h", "help":
		fmt.Fprint(stdout, usage)
		return true, nil
	case "--version", "-version":
		return true, printVersion(stdout)
	}
	cmd := args[0]
	line, known := commandUsage[cmd]
	for _, a := range args[1:] {
		if a == "--help" || a == "-h" {
			if !known {
				return true, usageError{fmt.Sprintf("unknown command %q\n\n%s", cmd, usage)}
			}
			fmt.Fprintln(stdout, "usage: "+line)
			return true, nil
		}
	}
	if !known {
		return true, usageError{fmt.Sprintf("unknown command %q\n\n%s", cmd, usage)}
	}
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(a, "=")
		ok := false
		for _, f := range commandFlags[cmd] {
			ok = ok || name == f
		}
		if !ok {
			return true, usageError{fmt.Sprintf("valex %s: unknown flag %s\nusage: %s", cmd, a, line)}
		}
	}
	return false, nil
}

func printVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "valex %s (commit %s, database schema %d)\n", valex.Version, commit(), store.SchemaLatest())
	return err
}

// healthcheck asks the running bot's listener for /healthz.
func healthcheck(addr string, stdout io.Writer) error {
	if addr == "" {
		return errors.New("the HTTP listener is off (VALEX_HTTP_ADDR=off)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz answered %d", resp.StatusCode)
	}
	_, err = fmt.Fprintln(stdout, "healthy")
	return err
}
