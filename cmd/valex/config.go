package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/jobs"
)

// Config is everything the operator can set: a TOML file (VALEX_CONFIG, or
// ./valex.toml when present) with environment variables overriding it.
// BurntSushi/toml is used because it reports undecoded keys, which is what
// lets `valex check` name every unknown key instead of ignoring typos.
type Config struct {
	DataDir  string     `toml:"data_dir"`
	Admins   []int64    `toml:"admins"`
	Support  []int64    `toml:"support"`
	Telegram Telegram   `toml:"telegram"`
	Log      Log        `toml:"log"`
	Jobs     Jobs       `toml:"jobs"`
	AI       AIConfig   `toml:"ai"`
	Desk     DeskConfig `toml:"desk"`
	// HTTPAddr is the operator's listener: /healthz, /readyz, /metrics and
	// YooKassa's notifications (monitoring.go); "" disables it.
	HTTPAddr string `toml:"http_addr"`
	// Plans and payments (payments_config.go).
	Payments PaymentsConfig `toml:"payments"`
	// Retention periods (policy section 8): retention_config.go.
	Retention RetentionConfig `toml:"retention"`
	// MasterKey wraps every user's data key (VALEX_MASTER_KEY only: a
	// secret stays out of the file).
	MasterKey string `toml:"-"`

	path string // the file it was read from, "" if none
}

// Telegram configures the Bot API connection and the bot core.
type Telegram struct {
	Token       string   `toml:"token"`
	APIURL      string   `toml:"api_url"`
	PollTimeout Duration `toml:"poll_timeout"`
	Concurrency int      `toml:"concurrency"`
	// MaxPending is the most updates taken from Telegram and not yet
	// finished; a flood beyond it waits at Telegram (bot.Config.MaxPending).
	MaxPending int      `toml:"max_pending"`
	Shutdown   Duration `toml:"shutdown_timeout"`
	// FloodDeadline is how long a reply keeps waiting out Telegram's 429s
	// before it is given up (logged and counted).
	FloodDeadline Duration `toml:"flood_deadline"`
	UserPerMin    int      `toml:"user_messages_per_minute"`
	Pace          Pace     `toml:"pace"`
	// DialogTimeout ends a prompt nobody answered (a ticket's text, a
	// profile field): a message after it is not taken as the answer.
	DialogTimeout Duration `toml:"dialog_timeout"`
	// Private makes a private bot: only staff and the users admins
	// allow-list (/allow) may use it.
	Private bool `toml:"private"`
	// BroadcastWorkers is how many notice messages are on their way at
	// once; the pace limits set the rate, the workers hide the round trip.
	BroadcastWorkers int `toml:"broadcast_workers"`
	// PaidBroadcast sends notices as Telegram paid broadcasts: up to 1,000
	// a second for 0.1 Stars a message over the free limit.
	PaidBroadcast bool `toml:"paid_broadcast"`
}

// Pace is the outbox's rate limits.
type Pace struct {
	Disabled         bool    `toml:"disabled"`
	GlobalPerSecond  float64 `toml:"global_per_second"`
	PrivatePerSecond float64 `toml:"private_per_second"`
	GroupPerMinute   float64 `toml:"group_per_minute"`
	Burst            int     `toml:"burst"`
}

// Jobs sets when the periodic jobs run (standard 5-field cron specs).
type Jobs struct {
	Timezone   string `toml:"timezone"`
	Backup     string `toml:"backup"`
	BackupKeep int    `toml:"backup_keep"`
	// BackupMaxMB caps the kept database backups together, in MiB: the
	// oldest go first when a new one would pass it (0: count only).
	BackupMaxMB int    `toml:"backup_max_mb"`
	InboxPrune  string `toml:"inbox_prune"`
	Reminders   string `toml:"desk_reminders"`
	Digest      string `toml:"desk_digest"`
	// IncidentReminders reminds admins of a breach incident's 24 h and
	// 72 h notifications (every 15 minutes by default).
	IncidentReminders string `toml:"incident_reminders"`
	// Retention (policy section 8).
	PurgeCommunications string `toml:"purge_communications"`
	InactiveAccounts    string `toml:"inactive_accounts"`
	CloseFeedback       string `toml:"close_feedback"`
	PurgeConversations  string `toml:"purge_conversations"`
	PurgePayments       string `toml:"purge_payments"`    // payment records past the legal minimum (retention.payments_years)
	RenewalReminders    string `toml:"renewal_reminders"` // subscriptions ending within 3 days: their users told, once
	YooKassaPoll        string `toml:"yookassa_poll"`     // waiting YooKassa payments read back from the API
	// Documents sent without a question, past ai.document_keep.
	PurgeDocuments string `toml:"purge_documents"`

	// KeySnapshotDays is how long keys-*.db snapshots are kept: an erased
	// user's key leaves every backup within this many days.
	KeySnapshotDays int `toml:"key_snapshot_days"`
	// Compact checks (hourly by default) and compacts when CompactFreeRatio
	// of the file is free pages, which still hold deleted data.
	Compact          string  `toml:"compact"`
	CompactFreeRatio float64 `toml:"compact_free_ratio"`
}

// Log configures zerolog.
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"` // json or console
}

// Duration reads "30s", "1m" from TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	d.Duration = v
	return err
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		DataDir: "./data",
		Telegram: Telegram{
			APIURL:           "https://api.telegram.org",
			PollTimeout:      Duration{30 * time.Second},
			Concurrency:      1024,
			MaxPending:       bot.DefaultMaxPending,
			Shutdown:         Duration{8 * time.Second},
			FloodDeadline:    Duration{10 * time.Minute},
			UserPerMin:       30,
			DialogTimeout:    Duration{15 * time.Minute},
			Pace:             Pace{GlobalPerSecond: 30, PrivatePerSecond: 1, GroupPerMinute: 20, Burst: 3},
			BroadcastWorkers: 8,
		},
		Log:       Log{Level: "info", Format: "console"},
		Desk:      DefaultDeskConfig(),
		Payments:  DefaultPaymentsConfig(),
		HTTPAddr:  "127.0.0.1:9090",
		Retention: DefaultRetention(),
		Jobs: Jobs{
			Timezone: "UTC", Backup: "0 3 * * *", BackupKeep: 7, BackupMaxMB: 10240, InboxPrune: "30 4 * * *",
			KeySnapshotDays: 7, Compact: "50 * * * *", CompactFreeRatio: 0.25,
			Reminders: "0 * * * *", Digest: "0 9 * * *", IncidentReminders: "*/15 * * * *",
			PurgeCommunications: "15 4 * * *", InactiveAccounts: "45 4 * * *",
			CloseFeedback: "5 4 * * *", PurgeConversations: "25 4 * * *", PurgePayments: "35 4 * * *", RenewalReminders: "0 10 * * *", YooKassaPoll: "* * * * *",
			PurgeDocuments: "*/10 * * * *",
		},
	}
}

// LoadConfig reads the file and the environment. It returns every problem
// found, joined, together with the config as far as it could be read.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Defaults()
	var problems []error

	path := getenv("VALEX_CONFIG")
	explicit := path != ""
	if !explicit {
		path = "valex.toml"
	}
	if _, err := os.Stat(path); err == nil {
		src, err := os.ReadFile(path)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", path, err))
		} else {
			problems = append(problems, decodeTOML(path, string(src), &cfg)...)
		}
		cfg.path = path
	} else if explicit {
		problems = append(problems, fmt.Errorf("VALEX_CONFIG: %w", err))
	}

	env := func(name string, set func(string) error) {
		if v := getenv(name); v != "" {
			if err := set(v); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	str := func(dst *string) func(string) error { return func(v string) error { *dst = v; return nil } }
	ids := func(dst *[]int64) func(string) error {
		return func(v string) error { l, err := parseIDs(v); *dst = l; return err }
	}
	env("VALEX_TELEGRAM_TOKEN", str(&cfg.Telegram.Token))
	env("VALEX_MASTER_KEY", str(&cfg.MasterKey))
	env("VALEX_PAYMENT_PROVIDER_TOKEN", str(&cfg.Payments.ProviderToken))
	env("VALEX_YOOKASSA_SHOP_ID", str(&cfg.Payments.YooKassaShopID))
	env("VALEX_YOOKASSA_SECRET_KEY", str(&cfg.Payments.YooKassaSecretKey))
	env("VALEX_TELEGRAM_API_URL", str(&cfg.Telegram.APIURL))
	env("VALEX_DATA_DIR", str(&cfg.DataDir))
	if v := getenv("VALEX_HTTP_ADDR"); v == "off" {
		cfg.HTTPAddr = "" // the listener switched off
	} else if v != "" {
		cfg.HTTPAddr = v
	}
	env("VALEX_ADMINS", ids(&cfg.Admins))
	env("VALEX_SUPPORT", ids(&cfg.Support))
	env("VALEX_LOG_LEVEL", str(&cfg.Log.Level))
	env("VALEX_LOG_FORMAT", str(&cfg.Log.Format))
	env("VALEX_CONCURRENCY", func(v string) error {
		n, err := strconv.Atoi(v)
		cfg.Telegram.Concurrency = n
		return err
	})

	problems = append(problems, cfg.AI.load(getenv)...)
	problems = append(problems, cfg.validate()...)
	return cfg, errors.Join(problems...)
}

func parseIDs(v string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return out, fmt.Errorf("%q is not a Telegram user id", f)
		}
		out = append(out, id)
	}
	return out, nil
}

// tokenFormat is BotFather's: numeric bot id, colon, secret.
var tokenFormat = regexp.MustCompile(`^[0-9]{3,}:[A-Za-z0-9_-]{20,}$`)

// validate checks values that do not depend on the command being run.
func (c Config) validate() []error {
	var p []error
	if c.Telegram.Token != "" && !tokenFormat.MatchString(c.Telegram.Token) {
		p = append(p, errors.New("telegram token: not in BotFather's format 123456789:ABC... (value not shown)"))
	}
	if !strings.HasPrefix(c.Telegram.APIURL, "http://") && !strings.HasPrefix(c.Telegram.APIURL, "https://") {
		p = append(p, fmt.Errorf("telegram api_url %q: must start with http:// or https://", c.Telegram.APIURL))
	}
	// Every number has a range (README, configuration table): a value
	// outside it is refused here rather than starting a bot that cannot
	// send (a limiter with a burst of 0 refuses every call).
	t := c.Telegram
	intRange(&p, "telegram concurrency", t.Concurrency, 1, 100_000)
	intRange(&p, "telegram max_pending", t.MaxPending, 1, 1_000_000)
	intRange(&p, "telegram user_messages_per_minute", t.UserPerMin, 0, 10_000) // 0: off
	intRange(&p, "telegram broadcast_workers", t.BroadcastWorkers, 1, 256)
	if d := t.Shutdown.Duration; d < time.Second || d > 5*time.Minute {
		p = append(p, fmt.Errorf("telegram shutdown_timeout %s: must be between 1s and 5m", t.Shutdown))
	}
	if d := t.FloodDeadline.Duration; d < 10*time.Second || d > 24*time.Hour {
		p = append(p, fmt.Errorf("telegram flood_deadline %s: must be between 10s and 24h", t.FloodDeadline))
	}
	if d := c.Telegram.DialogTimeout.Duration; d < time.Minute || d > 24*time.Hour {
		p = append(p, fmt.Errorf("telegram dialog_timeout %s: must be between 1m and 24h", c.Telegram.DialogTimeout))
	}
	if c.Telegram.PollTimeout.Duration < time.Second || c.Telegram.PollTimeout.Duration > 50*time.Second {
		p = append(p, fmt.Errorf("telegram poll_timeout %s: must be between 1s and 50s", c.Telegram.PollTimeout))
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		p = append(p, fmt.Errorf("log format %q: must be json or console", c.Log.Format))
	}
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled":
	default:
		p = append(p, fmt.Errorf("log level %q: must be trace, debug, info, warn, error or disabled", c.Log.Level))
	}
	if pc := c.Telegram.Pace; !pc.Disabled {
		// Telegram's limits are 30/s overall (1,000/s with paid
		// broadcasts), about 1/s in a chat and 20/min in a group.
		floatRange(&p, "telegram pace global_per_second", pc.GlobalPerSecond, 1, 1000)
		floatRange(&p, "telegram pace private_per_second", pc.PrivatePerSecond, 0.01, 30)
		floatRange(&p, "telegram pace group_per_minute", pc.GroupPerMinute, 1, 1200)
		intRange(&p, "telegram pace burst", pc.Burst, 1, 100)
	}
	if _, err := time.LoadLocation(c.Jobs.Timezone); err != nil {
		p = append(p, fmt.Errorf("jobs timezone %q: %w", c.Jobs.Timezone, err))
	}
	for name, spec := range map[string]string{"backup": c.Jobs.Backup, "inbox_prune": c.Jobs.InboxPrune, "desk_reminders": c.Jobs.Reminders, "desk_digest": c.Jobs.Digest, "incident_reminders": c.Jobs.IncidentReminders,
		"purge_communications": c.Jobs.PurgeCommunications, "inactive_accounts": c.Jobs.InactiveAccounts,
		"close_feedback": c.Jobs.CloseFeedback, "purge_conversations": c.Jobs.PurgeConversations, "purge_payments": c.Jobs.PurgePayments, "renewal_reminders": c.Jobs.RenewalReminders, "yookassa_poll": c.Jobs.YooKassaPoll, "purge_documents": c.Jobs.PurgeDocuments, "compact": c.Jobs.Compact} {
		if err := jobs.ParseSpec(spec); err != nil {
			p = append(p, fmt.Errorf("jobs %s %q: %w", name, spec, err))
		}
	}
	intRange(&p, "jobs backup_keep", c.Jobs.BackupKeep, 1, 365)
	intRange(&p, "jobs backup_max_mb", c.Jobs.BackupMaxMB, 0, 10_000_000)
	intRange(&p, "jobs key_snapshot_days", c.Jobs.KeySnapshotDays, 1, 365)
	if r := c.Jobs.CompactFreeRatio; !(r > 0 && r < 1) {
		p = append(p, fmt.Errorf("jobs compact_free_ratio %v: must be between 0 and 1 (0.25 = compact when a quarter of the file is free)", r))
	}
	p = append(p, c.Desk.validate()...)
	p = append(p, c.Payments.validate()...)
	p = append(p, c.Retention.validate()...)
	for _, id := range c.Admins {
		if id <= 0 {
			p = append(p, fmt.Errorf("admins: %d is not a Telegram user id", id))
		}
	}
	for _, id := range c.Support {
		if id <= 0 {
			p = append(p, fmt.Errorf("support: %d is not a Telegram user id", id))
		}
	}
	return p
}

// intRange adds a problem when v is outside [lo, hi].
func intRange(p *[]error, key string, v, lo, hi int) {
	if v < lo || v > hi {
		*p = append(*p, fmt.Errorf("%s %d: must be between %d and %d", key, v, lo, hi))
	}
}

// floatRange adds a problem when v is outside [lo, hi] (NaN included).
func floatRange(p *[]error, key string, v, lo, hi float64) {
	if !(v >= lo && v <= hi) {
		*p = append(*p, fmt.Errorf("%s %v: must be between %v and %v", key, v, lo, hi))
	}
}

// CheckRun adds the checks that only `valex run` needs: a token and a
// writable data directory.
func (c Config) CheckRun() error {
	var p []error
	if c.Telegram.Token == "" {
		p = append(p, errors.New("VALEX_TELEGRAM_TOKEN: required by valex run"))
	}
	if err := checkWritableDir(c.DataDir); err != nil {
		p = append(p, fmt.Errorf("data dir %s: %w", c.DataDir, err))
	}
	return errors.Join(p...)
}

func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".valex-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(filepath.Clean(name))
}

var lastKeyRE = regexp.MustCompile(`last key "([^"]+)"`)

// decodeTOML decodes src into cfg and returns every problem: a value of the
// wrong type is reported once, at its line, and the rest of the file is
// still decoded and checked (the SDK stops at the first type error, which
// made every later key look unknown).
func decodeTOML(path, src string, cfg *Config) []error {
	var problems []error
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		return []error{fmt.Errorf("%s: %w", path, err)} // not TOML at all
	}
	text := src
	for range 50 {
		fresh := *cfg
		md, err := toml.Decode(text, &fresh)
		m := lastKeyRE.FindStringSubmatch(fmt.Sprint(err))
		if err == nil || m == nil {
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", path, err))
			}
			*cfg = fresh
			for _, k := range md.Undecoded() {
				problems = append(problems, fmt.Errorf("%s: unknown key %q", path, k.String()))
			}
			return problems
		}
		key := m[1]
		msg := err.Error()
		if i := strings.Index(msg, "): "); i >= 0 {
			msg = msg[i+3:]
		}
		problems = append(problems, fmt.Errorf("%s:%d: %s: %s", path, lineOf(src, key), key, msg))
		deleteKey(raw, strings.Split(key, "."))
		var buf strings.Builder
		if err := toml.NewEncoder(&buf).Encode(raw); err != nil {
			return append(problems, err)
		}
		text = buf.String()
	}
	return problems
}

func deleteKey(m map[string]any, path []string) {
	for len(path) > 1 {
		next, ok := m[path[0]].(map[string]any)
		if !ok {
			return
		}
		m, path = next, path[1:]
	}
	delete(m, path[0])
}

// lineOf finds the line of a dotted key in the original file: the key's
// name inside its table (or at the top).
func lineOf(src, key string) int {
	parts := strings.Split(key, ".")
	table, name := strings.Join(parts[:len(parts)-1], "."), parts[len(parts)-1]
	current := ""
	for i, line := range strings.Split(src, "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "[") {
			current = strings.Trim(strings.TrimSpace(strings.SplitN(l, "#", 2)[0]), "[] ")
			continue
		}
		if current == table && (strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"=")) {
			return i + 1
		}
	}
	return 0
}
