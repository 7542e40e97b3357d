package main

import (
	"context"
	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

func httpGet(t *testing.T, a *app, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.m.HTTP.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue reads one sample of the exposition text.
func metricValue(text, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// /metrics exposes every series an operator watches, and the update
// counter moves with traffic; /healthz answers; /readyz turns 503 while
// getUpdates fails and 200 again once it recovers.
func TestMetricsAndReadiness(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) })
	if code, body := httpGet(t, a, "/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	a.say(alice, "/start")
	a.say(alice, "hello")
	a.press(alice, "I agree")
	a.idle()
	_, text := httpGet(t, a, "/metrics")
	for _, name := range []string{
		"valex_build_info", "valex_updates_received_total", "valex_updates_handled_total", "valex_handler_duration_seconds_bucket",
		"valex_inbox_pending", "valex_outbox_calls_total", "valex_outbox_429_total", "valex_outbox_retries_total", "valex_outbox_backlog", "valex_outbox_permanent_errors_total", "valex_outbox_given_up_total", "valex_store_commits_total",
		"valex_ai_calls_total", "valex_ai_call_duration_seconds_bucket", "valex_ai_cost_credits_total",
		"valex_tickets_open", "valex_tickets_overdue", "valex_job_runs_total", "valex_job_failures_total",
		"valex_store_file_bytes", "valex_store_free_bytes", "valex_getupdates_failures_total",
	} {
		if !strings.Contains(text, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	before := metricValue(text, `valex_updates_handled_total{kind="command"}`)
	a.say(alice, "/help")
	_, text = httpGet(t, a, "/metrics")
	if after := metricValue(text, `valex_updates_handled_total{kind="command"}`); after != before+1 {
		t.Fatalf("commands handled %v → %v after one /help", before, after)
	}
	if !strings.Contains(text, `valex_ai_calls_total{provider="openai",model="gpt-4o-mini",outcome="ok"} 1`) {
		t.Errorf("the AI call is not counted:\n%s", grepLines(text, "valex_ai_calls_total"))
	}

	if code, body := httpGet(t, a, "/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	a.emu.FailNext("getUpdates", 4, 500, 0) // 0.5 + 1 + 2 + 4 s of backoff without a successful poll
	deadline := time.Now().Add(8 * time.Second)
	code, body := 0, ""
	for time.Now().Before(deadline) {
		if code, body = httpGet(t, a, "/readyz"); code == 503 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 503 || !strings.Contains(body, "telegram") {
		t.Fatalf("/readyz while polling fails = %d %s", code, body)
	}
	deadline = time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if code, body = httpGet(t, a, "/readyz"); code == 200 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 200 {
		t.Fatalf("/readyz after polling recovered = %d %s", code, body)
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// /stats and /jobs give admins counts and states, never a person.
func TestAdminStatsAndJobs(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) })
	a.say(alice, "/start")
	a.say(alice, "hello")
	a.press(alice, "I agree")
	a.idle()
	a.say(alice, "/support my invoice")
	a.say(admin, "/start")
	if _, err := a.m.Jobs.RunAndWait(context.Background(), "inbox_prune"); err != nil {
		t.Fatal(err)
	}
	stats := a.say(admin, "/stats")
	contains(t, stats, "Users: 2", "active in 1 day 2", "gpt-4o-mini", "1 open", "no failures")
	if strings.Contains(stats.Text, "Alice") || strings.Contains(stats.Text, "1001") {
		t.Fatalf("/stats names a person: %q", stats.Text)
	}
	jobs := a.say(admin, "/jobs")
	contains(t, jobs, "✅ inbox_prune", "✅ backup")
	contains(t, a.say(alice, "/stats"), "administrators")
}

func TestUnknownCommandsShareOneRouteLabel(t *testing.T) {
	m := &Main{Router: bot.NewRouter(nil)}
	m.Router.Command("help", valex.RoleUser, "help.help", func(context.Context, *bot.Request) error { return nil })
	for _, c := range []struct{ cmd, want string }{{"help", "/help"}, {"x9f3", "/unknown"}, {"help2", "/unknown"}} {
		if got := m.routeOf(&bot.Request{Update: &bot.Update{Kind: bot.KindCommand, Command: c.cmd}}); got != c.want {
			t.Errorf("/%s: route %q, want %q", c.cmd, got, c.want)
		}
	}
}

// A poller holding off at telegram.max_pending is busy, not stuck: /readyz
// stays 200 well past the two poll timeouts after which a poller that
// stopped polling for any other reason is reported.
func TestReadyWhileWaitingForRoom(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) {
		c.AI = demoAIConfig(aisv.URL())
		c.Telegram.MaxPending = 1
	})
	a.say(alice, "/start")
	a.say(alice, "hello")
	a.press(alice, "I agree")
	a.idle()
	release := aisv.Hold()
	defer release()
	a.emu.SendText(bottest.PrivateChat(alice), alice, "a question held at the provider")
	deadline := time.Now().Add(10 * time.Second)
	for !a.m.Bot.WaitingForRoom() {
		if time.Now().After(deadline) {
			t.Fatal("the poller never waited for room with max_pending = 1 and an answer in flight")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3500 * time.Millisecond) // past 2 × poll_timeout (1 s) + 1 s without a getUpdates
	if code, body := httpGet(t, a, "/readyz"); code != 200 {
		t.Fatalf("/readyz while waiting for room = %d %s", code, body)
	}
	release()
	a.idle()
}
