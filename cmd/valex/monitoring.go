package main

// The operator's listener (Config.HTTPAddr, VALEX_HTTP_ADDR): /healthz,
// /readyz and /metrics (package monitor), and YooKassa's notifications.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/handlers"
	"github.com/valex-ai/valex/monitor"
)

// commit is the VCS revision the binary was built from, from build info.
func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// openMonitor registers the metrics and readiness checks and binds the
// listener (so a busy port fails the start, with the address in the error).
func (m *Main) openMonitor() error {
	mon := m.Monitor

	mon.Gauge("valex_updates_received_total", func() float64 { return float64(m.Bot.Received()) })
	mon.Gauge("valex_getupdates_failures_total", func() float64 { return float64(m.Bot.PollFailures()) })
	mon.Gauge("valex_inbox_pending", func() float64 {
		n, _ := m.DB.InboxPendingCount()
		return float64(n)
	})
	mon.Gauge("valex_outbox_calls_total", func() float64 { return float64(m.Outbox.Stats().Calls) })
	mon.Gauge("valex_outbox_429_total", func() float64 { return float64(m.Outbox.Stats().Flood) })
	mon.Gauge("valex_outbox_retries_total", func() float64 { return float64(m.Outbox.Stats().Retries) })
	mon.Gauge("valex_outbox_backlog", func() float64 { return float64(m.Outbox.Stats().Backlog) })
	mon.Gauge("valex_outbox_permanent_errors_total", func() float64 { return float64(m.Outbox.Stats().Permanent) })
	mon.Gauge("valex_outbox_given_up_total", func() float64 { return float64(m.Outbox.Stats().GaveUp) })
	slots := func(waiting bool) float64 {
		if m.AI == nil {
			return 0
		}
		r, w := m.AI.Slots()
		if waiting {
			return float64(w)
		}
		return float64(r)
	}
	mon.Gauge("valex_ai_jobs_running", func() float64 { return slots(false) })
	mon.Gauge("valex_ai_jobs_waiting", func() float64 { return slots(true) })
	mon.Gauge("valex_store_commits_total", func() float64 { return float64(m.DB.Commits()) })
	mon.Gauge("valex_store_file_bytes", func() float64 { s, _ := m.DB.Stats(); return float64(s.FileSize) })
	mon.Gauge("valex_store_free_bytes", func() float64 { s, _ := m.DB.Stats(); return float64(s.FreeBytes) })
	for _, st := range []valex.RequestStatus{valex.StatusNew, valex.StatusInProgress, valex.StatusWaitingUser, valex.StatusOnHold} {
		mon.Gauge(fmt.Sprintf("valex_tickets_open{status=%q}", st), func() float64 {
			_, n, _ := m.DB.OpenTickets("", st, 0, 0)
			return float64(n)
		})
	}
	mon.Gauge("valex_tickets_overdue", func() float64 {
		n, _ := m.DB.DueOpenTickets(m.Clock.Now(), func(valex.Request, map[string]bool) error { return nil })
		return float64(n)
	})
	m.Jobs.Observe = func(name string, took time.Duration, err error) {
		mon.Counter(fmt.Sprintf("valex_job_runs_total{job=%q}", name)).Inc()
		if err != nil {
			mon.Counter(fmt.Sprintf("valex_job_failures_total{job=%q}", name)).Inc()
		}
		mon.Histogram(fmt.Sprintf("valex_job_duration_seconds{job=%q}", name)).Update(took.Seconds())
	}
	for _, j := range m.Jobs.Names() { // every series exists from the start, at zero
		mon.Counter(fmt.Sprintf("valex_job_runs_total{job=%q}", j))
		mon.Counter(fmt.Sprintf("valex_job_failures_total{job=%q}", j))
	}

	poll := m.Config.Telegram.PollTimeout.Duration
	started := time.Now()
	mon.Ready("store", func() error { _, err := m.DB.Stats(); return err })
	mon.Ready("telegram", func() error {
		if m.Bot.WaitingForRoom() {
			return nil // busy, not stuck: MaxPending updates are being handled
		}
		last := m.Bot.LastPoll()
		if last.IsZero() && time.Since(started) < 2*poll {
			return nil // starting: the first long poll is under way
		}
		if time.Since(last) > 2*poll+time.Second {
			return fmt.Errorf("no successful getUpdates since %s", monitor.Since(last))
		}
		return nil
	})
	mon.Ready("outbox", func() error {
		if b := m.Outbox.Stats().Backlog; b > 5000 {
			return fmt.Errorf("%d Bot API calls waiting", b)
		}
		return nil
	})
	mon.Ready("jobs", func() error {
		var failed []string
		for name, r := range m.Jobs.Results() {
			if r.Err != nil {
				failed = append(failed, name)
			}
		}
		if len(failed) > 0 {
			return fmt.Errorf("last run failed: %s", strings.Join(failed, ", "))
		}
		return nil
	})

	if m.Config.HTTPAddr == "" {
		return nil
	}
	l, err := net.Listen("tcp", m.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s for /healthz, /readyz and /metrics (set VALEX_HTTP_ADDR, or \"off\"): %w", m.Config.HTTPAddr, err)
	}
	m.HTTP = l
	return nil
}

// serveHTTP serves the listener until the returned func shuts it down.
func (m *Main) serveHTTP() func() {
	if m.HTTP == nil {
		return nil
	}
	extra := map[string]http.Handler{}
	if m.YooKassa != nil {
		extra["/yookassa/notifications"] = m.YooKassa.NotificationHandler()
	}
	srv := &http.Server{Handler: m.Monitor.Handler(extra), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(m.HTTP); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error().Err(err).Msg("http listener")
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// metricsMiddleware counts updates by kind and times handlers by route.
func (m *Main) metricsMiddleware(next bot.HandlerFunc) bot.HandlerFunc {
	return func(ctx context.Context, r *bot.Request) error {
		start := time.Now()
		err := next(ctx, r)
		kind := kindName(r.Kind)
		m.Monitor.Counter(metricName("valex_updates_handled_total", "kind", kind)).Inc()
		if err != nil {
			if _, user := valex.AsUserError(err); !user {
				m.Monitor.Counter(metricName("valex_updates_failed_total", "kind", kind)).Inc()
			}
		}
		m.Monitor.Histogram(metricName("valex_handler_duration_seconds", "route", m.routeOf(r))).UpdateDuration(start)
		return err
	}
}

// routeOf is the route label of a handled update: its kind, or its command.
// A command nobody registered is "/unknown", so the label's values stay
// bounded whatever users type.
func (m *Main) routeOf(r *bot.Request) string {
	if r.Kind != bot.KindCommand {
		return kindName(r.Kind)
	}
	if _, ok := m.Router.Has(r.Command); ok {
		return "/" + r.Command
	}
	return "/unknown"
}

// metricNames caches the series names of metricsMiddleware, built with
// fmt once per name and label value instead of on every update.
var metricNames = struct {
	sync.RWMutex
	m map[[3]string]string
}{m: map[[3]string]string{}}

func metricName(name, label, value string) string {
	key := [3]string{name, label, value}
	metricNames.RLock()
	n, ok := metricNames.m[key]
	metricNames.RUnlock()
	if ok {
		return n
	}
	n = fmt.Sprintf("%s{%s=%q}", name, label, value)
	metricNames.Lock()
	metricNames.m[key] = n
	metricNames.Unlock()
	return n
}

var kindNames = map[bot.Kind]string{bot.KindCommand: "command", bot.KindText: "text", bot.KindCallback: "callback",
	bot.KindPhoto: "photo", bot.KindVoice: "voice", bot.KindDocument: "document", bot.KindContact: "contact",
	bot.KindPreCheckout: "pre_checkout", bot.KindPayment: "payment", bot.KindIgnored: "ignored", bot.KindStop: "stop"}

func kindName(k bot.Kind) string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "unsupported"
}

// meteredModels records every AI call by provider, model and outcome, with
// its latency and cost.
type meteredModels struct {
	handlers.AIModels
	mon *monitor.Monitor
}

func (x meteredModels) record(model string, start time.Time, u ai.Usage, err error) {
	if x.mon == nil {
		return
	}
	if u.Model != "" {
		model = u.Model
	}
	provider := "unknown"
	if m, ok := x.Model(model); ok {
		provider = m.Provider
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	x.mon.Counter(fmt.Sprintf("valex_ai_calls_total{provider=%q,model=%q,outcome=%q}", provider, model, outcome)).Inc()
	x.mon.Histogram(fmt.Sprintf("valex_ai_call_duration_seconds{provider=%q,model=%q}", provider, model)).UpdateDuration(start)
	if err == nil {
		x.mon.FloatCounter(fmt.Sprintf("valex_ai_cost_credits_total{provider=%q,model=%q}", provider, model)).Add(float64(u.Cost) / ai.MicroCredits)
	}
}

func (x meteredModels) ChatStream(ctx context.Context, req ai.ChatRequest, onDelta func(string)) (ai.ChatResult, error) {
	start := time.Now()
	res, err := x.AIModels.ChatStream(ctx, req, onDelta)
	x.record(req.Model, start, res.Usage, err)
	return res, err
}

func (x meteredModels) Image(ctx context.Context, model, prompt string) ([]byte, ai.Usage, error) {
	start := time.Now()
	b, u, err := x.AIModels.Image(ctx, model, prompt)
	x.record(model, start, u, err)
	return b, u, err
}

func (x meteredModels) Transcribe(ctx context.Context, model string, audio []byte, name string) (string, ai.Usage, error) {
	start := time.Now()
	t, u, err := x.AIModels.Transcribe(ctx, model, audio, name)
	x.record(model, start, u, err)
	return t, u, err
}

func (x meteredModels) Speech(ctx context.Context, model, text string) ([]byte, string, ai.Usage, error) {
	start := time.Now()
	b, mime, u, err := x.AIModels.Speech(ctx, model, text)
	x.record(model, start, u, err)
	return b, mime, u, err
}
