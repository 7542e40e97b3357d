// Package monitor is what an operator watches: /healthz, /readyz and
// /metrics (Prometheus text format) on one small HTTP listener, which the
// YooKassa notifications share. Metrics are kept with
// github.com/VictoriaMetrics/metrics: a small, dependency-free library that
// writes the Prometheus exposition format, with Prometheus-style ("le")
// histograms, instead of client_golang's much larger dependency tree.
package monitor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Monitor holds the metric set and the readiness checks.
type Monitor struct {
	set *metrics.Set

	mu     sync.Mutex
	checks map[string]func() error
}

// New returns a Monitor with build info (version, commit, schema).
func New(version, commit string, schema int) *Monitor {
	m := &Monitor{set: metrics.NewSet(), checks: map[string]func() error{}}
	m.set.NewGauge(fmt.Sprintf(`valex_build_info{version=%q,commit=%q,schema="%d"}`, version, commit, schema), func() float64 { return 1 })
	return m
}

// Counter returns the named counter (name may carry labels: name{a="b"}).
func (m *Monitor) Counter(name string) *metrics.Counter { return m.set.GetOrCreateCounter(name) }

// FloatCounter returns the named float counter.
func (m *Monitor) FloatCounter(name string) *metrics.FloatCounter {
	return m.set.GetOrCreateFloatCounter(name)
}

// Histogram returns the named Prometheus-style histogram (seconds).
func (m *Monitor) Histogram(name string) *metrics.PrometheusHistogram {
	return m.set.GetOrCreatePrometheusHistogram(name)
}

// Gauge registers a value read at each scrape.
func (m *Monitor) Gauge(name string, read func() float64) { m.set.GetOrCreateGauge(name, read) }

// Ready registers a readiness check: /readyz is 503 while any fails.
func (m *Monitor) Ready(name string, check func() error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.checks[name] = check
}

// Label quotes a label value.
func Label(v string) string { return strconv.Quote(v) }

// Handler serves /healthz, /readyz, /metrics and the extra handlers.
func (m *Monitor) Handler(extra map[string]http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		failed := m.notReady()
		w.Header().Set("Content-Type", "application/json")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": len(failed) == 0, "failing": failed})
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w) // go_goroutines, go_memstats_*, process_resident_memory_bytes, ...
	})
	for path, h := range extra {
		mux.Handle(path, h)
	}
	return mux
}

// notReady runs every check and returns the failing ones' reasons.
func (m *Monitor) notReady() map[string]string {
	m.mu.Lock()
	names := make([]string, 0, len(m.checks))
	for n := range m.checks {
		names = append(names, n)
	}
	checks := m.checks
	m.mu.Unlock()
	sort.Strings(names)
	failed := map[string]string{}
	for _, n := range names {
		if err := checks[n](); err != nil {
			failed[n] = err.Error()
		}
	}
	return failed
}

// Since formats a duration for a readiness reason.
func Since(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return strings.TrimSuffix(time.Since(t).Round(time.Second).String(), "0s") + " ago"
}
