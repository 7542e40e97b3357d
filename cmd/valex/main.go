// Command valex runs the Valex bot. It is the only place that wires the
// packages together; Main is reused by the end-to-end tests so they run the
// real wiring.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/desk"
	"github.com/valex-ai/valex/handlers"
	"github.com/valex-ai/valex/jobs"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/monitor"
	"github.com/valex-ai/valex/payments"
	"github.com/valex-ai/valex/privacy"
	"github.com/valex-ai/valex/store"
	"github.com/valex-ai/valex/yookassa"
)

const usage = `valex — a Telegram AI aggregator with a privacy request desk

Usage:
  valex run [--delete-webhook]  run the bot against the Bot API (needs VALEX_TELEGRAM_TOKEN);
                          --delete-webhook first removes a webhook that would block long polling
  valex demo [--data DIR] try everything in the terminal: no token, no network
  valex check             validate the configuration and print every problem
  valex backup FILE       write a consistent copy of the database to FILE (through the running bot
                          when one runs on the data directory; it also backs itself up daily)
  valex restore FILE      replace the database with a backup (with the bot stopped)
  valex audit verify [FILE]  check every audit chain (of the database, or of a backup FILE)
  valex whois-log ID      print the pseudonym that stands for Telegram user ID in the logs
  valex export-user ID    print user ID's data as /mydata would (JSON)
  (backup, audit verify, whois-log and export-user go through a running bot's control socket)
  valex payments export --from DATE --to DATE
                          payment records of a period as CSV for the accountant (UTC; bot stopped)
  valex compact           rewrite the database without its free pages, which still hold deleted
                          data (bot stopped; the running bot compacts itself, see jobs.compact)
  valex version           print the version, commit and database schema (also --version)
  valex healthcheck       exit 0 when the running bot's /healthz answers (Docker's HEALTHCHECK)
  valex <command> --help  what a command does; it does nothing else

Configuration: valex.toml (or VALEX_CONFIG) and VALEX_* environment variables; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := startCPUProfile(os.Getenv("VALEX_CPUPROFILE"))
	stopHeap := watchPeakHeap(os.Getenv("VALEX_HEAPPROFILE"))
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stopHeap()
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "valex:", err)
		os.Exit(ExitCode(err))
	}
}

// watchPeakHeap writes a heap profile to path (%p: the pid) each time the
// heap in use reaches a new peak, checked every 100 ms: what a burst's peak
// memory is made of, for benchmarks of the real binary; "" does nothing.
func watchPeakHeap(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	path = strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid()))
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var peak uint64
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak+peak/20 { // 5 % above the last profile
				peak = v
				if f, err := os.Create(path); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		// At exit, a last profile beside the peak's: its alloc_space
		// covers the whole run (where the garbage came from).
		if f, err := os.Create(path + ".exit"); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
}

// startCPUProfile writes a CPU profile of the whole run to path, for
// benchmarks of the real binary (cmd/valexbench); "" does nothing. Not a
// configuration setting: an operator has no use for it.
func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	// %p is the process id: a benchmark starting several children keeps a
	// profile of each.
	f, err := os.Create(strings.ReplaceAll(path, "%p", strconv.Itoa(os.Getpid())))
	if err != nil {
		fmt.Fprintln(os.Stderr, "valex: cpu profile:", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "valex: cpu profile:", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	if done, err := conventions(args, stdout); done {
		return err // --help, --version, or a flag the command does not know: nothing else runs
	}
	switch args[0] {
	case "version":
		return printVersion(stdout)
	case "healthcheck":
		cfg, err := LoadConfig(getenv)
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		return healthcheck(cfg.HTTPAddr, stdout)
	case "check":
		cfg, err := LoadConfig(getenv)
		if err == nil {
			err = cfg.CheckRun()
		}
		if err != nil {
			fmt.Fprintln(stdout, "configuration problems:")
			for _, line := range splitLines(err.Error()) {
				fmt.Fprintln(stdout, "  -", line)
			}
			return errors.New("configuration is not valid")
		}
		if warns := cfg.Warnings(); len(warns) > 0 {
			fmt.Fprintf(stdout, "configuration OK, with %d warning(s):\n", len(warns))
			for _, w := range warns {
				fmt.Fprintln(stdout, "  -", w)
			}
		} else {
			fmt.Fprintln(stdout, "configuration OK")
		}
		for _, line := range cfg.Retention.Summary() {
			fmt.Fprintln(stdout, line)
		}
		for _, line := range cfg.Desk.DeadlineSummary() {
			fmt.Fprintln(stdout, line)
		}
		return nil
	case "run":
		cfg, err := LoadConfig(getenv)
		if err == nil {
			err = cfg.CheckRun()
		}
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		m := NewMain(cfg, stderr)
		if err := m.Open(ctx); err != nil {
			m.Close()
			return err
		}
		if len(args) > 1 && args[1] == "--delete-webhook" {
			// Long polling and a webhook exclude each other (409).
			if err := m.Outbox.Client().DeleteWebhook(ctx); err != nil {
				m.Close()
				return err
			}
		}
		err = m.Run(ctx)
		if cerr := m.Close(); err == nil {
			err = cerr
		}
		return err
	case "demo":
		return runDemo(ctx, args[1:], stdin, stdout, getenv)
	case "backup":
		if len(args) != 2 {
			return errors.New("usage: valex backup FILE")
		}
		cfg, err := LoadConfig(getenv)
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		dst, err := filepath.Abs(args[1])
		if err != nil {
			return err
		}
		// A running bot makes the backup itself (it holds the file locks).
		if msg, ok, err := viaRunning(cfg.DataDir, controlRequest{Cmd: "backup", File: dst}); ok {
			if err == nil {
				fmt.Fprintln(stdout, msg)
			}
			return err
		}
		return lockHint(cfg.DataDir, backup(cfg, dst))
	case "restore":
		if len(args) != 2 {
			return errors.New("usage: valex restore FILE")
		}
		cfg, err := LoadConfig(getenv)
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		erased, err := restore(cfg, newLogger(cfg.Log, stderr), args[1])
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, "restored", args[1], "into", cfg.DataDir)
		if erased > 0 {
			fmt.Fprintf(stdout, "%d account(s) erased since the backup stay erased: their records were removed\n", erased)
		}
		return nil
	case "audit":
		return auditCommand(args[1:], stdout, getenv)
	case "whois-log":
		return whoisLogCommand(args[1:], stdout, getenv)
	case "compact":
		return compactCommand(args[1:], stdout, getenv)
	case "export-user":
		return exportUserCommand(args[1:], stdout, getenv)
	case "payments":
		return paymentsCommand(args[1:], stdout, getenv)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Main is the running program: configuration in, bot out.
type Main struct {
	Config     Config
	Log        zerolog.Logger
	Clock      valex.Clock
	HTTPClient *http.Client // for the Bot API; nil = default
	// IDs stand for users in log lines (set by Open, from the log key).
	IDs valex.Pseudonymizer

	DB     *store.DB
	Keys   *store.Keys // keys.db: per-user data keys, audit and log keys
	Eraser *privacy.Eraser
	Jobs   *jobs.Scheduler
	Bot    *bot.Bot
	Outbox *bot.Outbox
	Router *bot.Router
	AI     *handlers.AI
	Desk   *handlers.Desk

	// YooKassa runs card payments when its credentials are set; nil
	// otherwise.
	YooKassa *payments.YooKassa
	// Monitor and HTTP are the operator's listener: /healthz, /readyz,
	// /metrics (and YooKassa's notifications), on Config.HTTPAddr.
	Monitor *monitor.Monitor
	HTTP    net.Listener
	control net.Listener // the control socket (control.go)
	// Compactor compacts the database on a schedule and, on Request, after
	// erasures (freed pages keep deleted data until then).
	Compactor *jobs.Compactor
}

// NewMain returns a Main logging to w as the configuration says.
func NewMain(cfg Config, w io.Writer) *Main {
	return &Main{Config: cfg, Log: newLogger(cfg.Log, w), Clock: valex.SystemClock{}}
}

func newLogger(c Log, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil {
		level = zerolog.InfoLevel
	}
	if c.Format == "console" {
		// Colours only for a terminal: redirected to a file or journald,
		// escape codes would be noise.
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// Open opens the store, connects to the Bot API and wires the handlers.
func (m *Main) Open(ctx context.Context) error {
	c := m.Config
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	keys, db, err := openStores(c, m.Log, m.Clock.Now)
	if err != nil {
		return err
	}
	m.Keys, m.DB = keys, db
	schema, _ := db.SchemaVersion()
	m.Monitor = monitor.New(valex.Version, commit(), schema)    // metrics from the first update on (monitoring.go)
	m.IDs = valex.NewPseudonymizer(keys.LogKey(), keys.LogSalt) // log lines name users by pseudonym only

	tr, err := locales.Load()
	if err != nil {
		return fmt.Errorf("load locales: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := bot.NewClient(cctx, c.Telegram.APIURL, c.Telegram.Token, m.HTTPClient)
	if err != nil {
		return fmt.Errorf("connect to the Bot API: %w", err)
	}
	p := c.Telegram.Pace
	m.Outbox = bot.NewOutbox(client, bot.OutboxConfig{Pace: bot.PaceConfig{
		Disabled: p.Disabled, Global: p.GlobalPerSecond, PrivatePerSec: p.PrivatePerSecond,
		GroupPerMinute: p.GroupPerMinute, Burst: p.Burst,
	}, FloodDeadline: c.Telegram.FloodDeadline.Duration, Pseudonyms: m.IDs, PaidBroadcast: c.Telegram.PaidBroadcast}, m.Log)

	// Callback buttons are signed with a key derived from the token: no extra
	// secret to configure, and a new token invalidates old buttons.
	signer := bot.NewSigner([]byte(c.Telegram.Token))
	m.Router = bot.NewRouter(signer)
	h := &handlers.Handlers{
		Users: db, Out: m.Outbox, Tr: tr, CB: signer, Clock: m.Clock, Menu: m.Router,
		Roles: handlers.Roles{Admins: idSet(c.Admins), Support: idSet(c.Support)}, Log: m.Log, IDs: m.IDs,
		Ops: operations{m},
	}
	m.Router.Use(bot.Recover(), m.metricsMiddleware, bot.Logging(m.Log, m.IDs), bot.Identity(h.Lang, h.Roles.Of), bot.UserLimit(c.Telegram.UserPerMin))
	m.Router.UseDialogs(bot.DialogConfig{Store: db, Clock: m.Clock, Timeout: c.Telegram.DialogTimeout.Duration, Ended: h.DialogEnded})
	h.Register(m.Router)
	if m.AI, err = wireAI(m, h, c.AI, c.Desk.PolicyVersion); err != nil {
		return err
	}
	handlers.NewConversations(h, db, m.AI, c.Retention.Policy()).Register(m.Router)
	pay := &handlers.Payments{H: h, Store: db, Out: m.Outbox, Plans: c.Payments.Plans(),
		// Invoice payloads are signed with a key of their own, derived
		// from the token like the buttons' (a new token voids old invoices).
		Payload:    bot.NewSigner([]byte("valex payments\x00" + c.Telegram.Token)),
		SupportURL: c.Payments.SupportURL, TermsURL: c.Payments.TermsURL, ProviderToken: c.Payments.ProviderToken}
	if c.Payments.YooKassaOn() {
		m.YooKassa = &payments.YooKassa{
			API:   &yookassa.Client{BaseURL: c.Payments.YooKassaAPIURL, ShopID: c.Payments.YooKassaShopID, SecretKey: c.Payments.YooKassaSecretKey},
			Store: db, Plans: c.Payments.Plans(), Notify: pay.YooKassaNotify, Clock: m.Clock, Log: m.Log,
			ReturnURL: c.Payments.YooKassaReturnURL, Receipts: c.Payments.YooKassaReceipts,
		}
		pay.YooKassa = m.YooKassa
	}
	pay.Register(m.Router)
	allow := &handlers.AllowList{H: h, Store: db}
	allow.Register(m.Router)
	if c.Telegram.Private {
		m.Router.Use(allow.Gate) // a private bot: staff and allow-listed users only
	}
	m.Eraser = &privacy.Eraser{Work: m.AI, Store: db, Keys: keys, Log: m.Log, Compact: func() {
		// The erased records' freed pages leave the file with the next
		// compaction; an erasure asks for one (batched by the compactor).
		if m.Compactor != nil {
			m.Compactor.Request()
		}
	}}
	m.Desk = newDesk(c.Desk, h, db, m.Outbox, exportSections(db), m.Eraser)
	m.Desk.Bulk = m.Outbox // notices yield to replies, and may be paid broadcasts
	m.Desk.Service.Broadcasts = desk.BroadcastConfig{Workers: c.Telegram.BroadcastWorkers}
	m.Desk.AIWork = m.AI // consent withdrawal and restriction stop the answer in flight
	m.Desk.Access = accessInfo(c, db)
	m.Desk.Policy.Retention = c.Retention.Policy() // what /privacy says is what the jobs do
	m.Desk.Register(m.Router)
	if n, err := m.Eraser.Resume(); err != nil {
		return err
	} else if n > 0 {
		m.Log.Warn().Int("accounts", n).Msg("finished erasures a stop had interrupted")
	}
	m.Router.Use(m.Desk.Intercept)
	m.Router.Use(m.Desk.RetryBreaches) // a user back after blocking the bot gets the breach notice they missed

	for _, lang := range append([]string{""}, tr.Languages()...) {
		l := lang
		if l == "" {
			l = tr.Languages()[0]
		}
		if err := m.Outbox.SetCommands(cctx, lang, handlers.MenuCommands(m.Router, tr, l)); err != nil {
			m.Log.Warn().Err(err).Str("lang", lang).Msg("set command menu")
		}
	}

	m.Bot = bot.New(client, m.Outbox, db, m.Router, tr, m.Clock, m.Log, bot.Config{
		PollTimeout:     c.Telegram.PollTimeout.Duration,
		Concurrency:     c.Telegram.Concurrency,
		MaxPending:      c.Telegram.MaxPending,
		ShutdownTimeout: c.Telegram.Shutdown.Duration,
		Pseudonyms:      m.IDs,
	})
	if err := m.openJobs(); err != nil {
		return err
	}
	if err := m.openMonitor(); err != nil {
		return err
	}
	if err := m.openControl(); err != nil {
		return err
	}
	m.Log.Info().Str("bot", client.Self().Username).Str("data_dir", c.DataDir).Str("http", c.HTTPAddr).Msg("valex ready")
	return nil
}

// openJobs registers the periodic jobs.
func (m *Main) openJobs() error {
	c := m.Config.Jobs
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return fmt.Errorf("jobs timezone: %w", err)
	}
	m.Jobs = jobs.New(loc, m.DB, m.Clock, m.Log)
	retention := m.Config.Retention.Policy()
	var keySnapshots jobs.KeySnapshotter // an untyped nil without a key store
	if m.Keys != nil {
		keySnapshots = m.Keys
	}
	backups := jobs.BackupConfig{Dir: filepath.Join(m.Config.DataDir, "backups"), Keep: c.BackupKeep,
		MaxBytes: int64(c.BackupMaxMB) << 20, Keys: keySnapshots, KeyDays: c.KeySnapshotDays}
	// A requested compaction waits a minute, so an erasure batch shares one.
	m.Compactor = jobs.NewCompactor(m.DB, time.Minute, m.Log)
	if m.Keys != nil {
		m.Compactor.WithKeyStore(m.Keys)
	}
	for _, j := range []jobs.Job{
		{Name: "backup", Spec: c.Backup, Run: jobs.Backup(m.DB, backups, m.Clock)},
		{Name: "compact", Spec: c.Compact, Run: m.Compactor.Job(c.CompactFreeRatio)},
		{Name: "inbox_prune", Spec: c.InboxPrune, Run: jobs.InboxPrune(m.DB, m.Clock)},
		{Name: "desk_reminders", Spec: c.Reminders, Run: m.Desk.Service.ReminderJob},
		{Name: "incident_reminders", Spec: c.IncidentReminders, Run: m.Desk.Service.IncidentReminderJob},
		{Name: "desk_digest", Spec: c.Digest, Run: m.Desk.Service.DigestJob},
		{Name: "purge_communications", Spec: c.PurgeCommunications, Run: jobs.PurgeCommunications(m.DB, retention, m.Clock)},
		{Name: "close_feedback", Spec: c.CloseFeedback, Run: jobs.CloseFeedback(m.DB, retention, m.Clock)},
		{Name: "purge_conversations", Spec: c.PurgeConversations, Run: jobs.PurgeConversations(m.DB, retention, m.Clock)},
		{Name: "purge_documents", Spec: c.PurgeDocuments, Run: jobs.PurgeDocuments(m.DB, m.Config.AI.DocumentKeep.Duration, m.Clock)},
		{Name: "purge_payments", Spec: c.PurgePayments, Run: jobs.PurgePayments(m.DB, retention, m.Clock)},
		{Name: "renewal_reminders", Spec: c.RenewalReminders, Run: jobs.RenewalReminders(m.DB, m.renewalNotice, m.Clock)},
		{Name: "yookassa_poll", Spec: c.YooKassaPoll, Run: m.yookassaPoll},
		{Name: "inactive_accounts", Spec: c.InactiveAccounts, Run: jobs.InactiveAccounts(m.DB, m.inactiveNotice(retention), m.eraseInactive, retention, m.Clock)},
	} {
		if err := m.Jobs.Add(j); err != nil {
			return err
		}
	}
	return nil
}

// inactiveNotice tells an inactive user, in their language, when their
// account will be deleted and that any message keeps it.
func (m *Main) inactiveNotice(p valex.RetentionPolicy) jobs.InactiveNotifier {
	months := p.InactiveAfter.Years*12 + p.InactiveAfter.Months
	if months == 0 {
		d := valex.DefaultRetentionPolicy().InactiveAfter
		months = d.Years*12 + d.Months
	}
	return func(ctx context.Context, userID int64, lang string, deleteAfter time.Time) error {
		text := m.Desk.Tr.T(lang, "retention.inactive_notice", map[string]any{
			"Months": months, "Date": deleteAfter.UTC().Format("2006-01-02"),
		})
		_, err := m.Outbox.Send(ctx, bot.Message{ChatID: userID, Text: text})
		if bot.IsBlocked(err) {
			// A user who blocked the bot cannot be told, and cannot come
			// back without unblocking it, which counts as activity: the
			// notice counts as given, so deletion still follows after the
			// grace period instead of the account being kept forever.
			return nil
		}
		return err
	}
}

// yookassaPoll reads the waiting YooKassa payments' outcomes (a no-op
// without YooKassa).
func (m *Main) yookassaPoll(ctx context.Context) (string, error) {
	if m.YooKassa == nil {
		return "YooKassa is not configured", nil
	}
	return m.YooKassa.PollJob(ctx)
}

// renewalNotice tells a subscriber their plan renews (or ends) in a few days.
func (m *Main) renewalNotice(ctx context.Context, w valex.Wallet) error {
	lang := m.Desk.Tr.Match("")
	if u, err := m.DB.User(w.UserID); err == nil && u.Language != "" {
		lang = u.Language
	}
	key := "pay.renewal_reminder"
	if w.Canceled {
		key = "pay.renewal_reminder_ending"
	}
	text := m.Desk.Tr.T(lang, key, map[string]any{"Plan": w.Plan, "Ends": valex.FormatDate(w.PlanEnds)})
	_, err := m.Outbox.Send(ctx, bot.Message{ChatID: w.UserID, Text: text})
	return err
}

// eraseInactive erases an inactive account through the desk, as /forget does.
func (m *Main) eraseInactive(ctx context.Context, userID int64, at time.Time) error {
	return m.Desk.Service.EraseInactive(ctx, userID, at)
}

// Run polls and runs the jobs until ctx is cancelled, then shuts down
// gracefully: polling stops, handlers and jobs finish (up to the shutdown
// timeout), handled updates are committed.
func (m *Main) Run(ctx context.Context) error {
	m.Jobs.Start(ctx)
	if stop := m.serveHTTP(); stop != nil {
		defer stop()
	}
	if err := m.Desk.Service.ResumeBroadcasts(ctx); err != nil {
		m.Log.Error().Err(err).Msg("resume broadcasts")
	}
	botDone := make(chan error, 1)
	go func() { botDone <- m.Bot.Run(ctx) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-botDone: // the bot stopped by itself (a refused token, a 409)
		botDone <- err
	}
	// One grace period for everything, in parallel (not one after another):
	// a stop takes at most telegram.shutdown_timeout (8 s), inside Docker's
	// and systemd's default stop timeouts.
	grace := m.Config.Telegram.Shutdown.Duration
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); m.AI.Shutdown(grace) }()
	go func() { defer wg.Done(); m.Desk.Wait() }()
	go func() {
		defer wg.Done()
		stopCtx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if jerr := m.Jobs.Stop(stopCtx); jerr != nil {
			m.Log.Warn().Err(jerr).Msg("stopping jobs")
		}
	}()
	err = <-botDone // the bot drains its handlers within the same grace period
	wg.Wait()
	if m.Compactor != nil {
		m.Compactor.Stop() // runs a compaction an erasure requested, before the store closes
	}
	m.Log.Info().Msg("valex stopped")
	return err
}

// Close releases the store.
func (m *Main) Close() error {
	var err error
	if m.control != nil {
		m.control.Close()
		_ = os.Remove(filepath.Join(m.Config.DataDir, controlFile))
		_ = os.Remove(filepath.Join(m.Config.DataDir, "valex.pid"))
	}
	if m.HTTP != nil {
		_ = m.HTTP.Close() // Run's shutdown closed it already, unless Run never ran
	}
	if m.DB != nil {
		err = m.DB.Close()
		m.DB = nil
	}
	if m.Keys != nil {
		if kerr := m.Keys.Close(); err == nil {
			err = kerr
		}
		m.Keys = nil
	}
	return err
}

func idSet(ids []int64) map[int64]bool {
	s := make(map[int64]bool, len(ids))
	for _, id := range ids {
		s[id] = true
	}
	return s
}

func backup(cfg Config, dst string) error {
	keys, db, err := openStores(cfg, zerolog.Nop(), time.Now)
	if err != nil {
		return err
	}
	defer keys.Close()
	defer db.Close()
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("%s exists: choose a new file name", dst)
	}
	_, err = db.Backup(dst)
	return err
}

// restore puts a backup in place of the database. It works on a copy (the
// backup file itself is never written) and opens the copy with the current
// key store: users erased since the backup have no key there, so their
// records are removed as it opens (erased stays erased). The copy then
// replaces valex.db in one rename: the previous database is kept only until
// the restored one has opened cleanly, and nothing is left beside it.
// keys.db is never restored from a backup.
func restore(cfg Config, log zerolog.Logger, src string) (erased int, err error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return 0, err
	}
	dst := filepath.Join(cfg.DataDir, dbFile)
	// Opening takes the file locks: a running bot makes this fail instead
	// of having its database replaced underneath it.
	keys, cur, err := openStores(cfg, log, time.Now)
	if err != nil {
		return 0, fmt.Errorf("open the current database (is the bot running?): %w", err)
	}
	defer keys.Close()
	cur.Close()
	tmp := dst + ".restoring"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return 0, err
	}
	check, err := store.Open(tmp, store.Options{Codec: keys, AuditKey: keys.AuditKey()})
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, store.ErrKeysMismatch) {
			return 0, fmt.Errorf("%s was made with another key store than %s: %w", src, keys.Path(), err)
		}
		return 0, fmt.Errorf("%s is not a usable backup: %w", src, err)
	}
	erased = check.Swept()
	if err := check.Close(); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return erased, syncDir(cfg.DataDir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
