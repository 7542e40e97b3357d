package main

import (
	"context"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot/bottest"
)

// BenchmarkBroadcast sends a policy update notice to every user through
// the real wiring (Main.Open: store, desk service, handlers' notifier,
// outbox and pacer) over the Bot API emulator with a 40 ms round trip and
// Telegram's limits enforced by the emulator (30 messages a second, 1,000
// for paid broadcasts; a message past them gets a 429, counted in "429s").
//
//	free: default pace (30/s) and 8 workers — target ≥ 29 msgs/s
//	paid: telegram.paid_broadcast with 64 workers — target ≥ 900 msgs/s
//	unpaced: pacing off, no latency, 64 workers — what the pipeline itself
//	  (store claims and batched records, outbox, HTTP) can do on this machine
//
// msgs/s is messages delivered over the broadcast's whole time;
// steady_msgs/s leaves out the first second, when the limiter's burst (a
// second's worth for the free limit) goes out at once.
//
// By default the audiences are small so that each run takes about 20 s:
// 600 users at 30/s, and 5,000 at 1,000/s and unpaced (creating the 5,000
// accounts first takes 10–15 s: two fsyncs each). VALEX_BENCH_BROADCAST_USERS sets
// both, e.g. 100000 for a real audience: the paid run then takes about 5
// minutes of set-up and 100 s of sending, the free one about an hour.
//
//	go test ./cmd/valex -run '^$' -bench Broadcast -count 3
func BenchmarkBroadcast(b *testing.B) {
	cases := []struct {
		name    string
		paid    bool
		workers int
		users   int
		unpaced bool
	}{
		{"free", false, 8, 600, false},
		{"paid", true, 64, 5000, false},
		{"unpaced", false, 64, 5000, true},
	}
	for _, c := range cases {
		if v := os.Getenv("VALEX_BENCH_BROADCAST_USERS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				b.Fatalf("VALEX_BENCH_BROADCAST_USERS=%q: want a number of users", v)
			}
			c.users = n
		}
		b.Run(c.name, func(b *testing.B) { benchBroadcast(b, c.paid, c.workers, c.users, c.unpaced) })
	}
}

func benchBroadcast(b *testing.B, paid bool, workers, users int, unpaced bool) {
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	defer emu.Close()
	if !unpaced {
		emu.SetLatency("", 40*time.Millisecond)
		emu.SetRateLimit(30, 1000)
	}

	cfg := Defaults()
	cfg.DataDir = b.TempDir()
	cfg.Telegram.Token, cfg.Telegram.APIURL = emu.Token(), emu.URL()
	cfg.Telegram.BroadcastWorkers, cfg.Telegram.PaidBroadcast = workers, paid
	cfg.Telegram.Pace.Disabled = unpaced
	cfg.Log = Log{Level: "error", Format: "json"}
	cfg.HTTPAddr = ""
	setup := time.Now()
	seedUsers(b, cfg.DataDir, users)
	b.Logf("%d accounts created in %s", users, time.Since(setup).Round(time.Millisecond))

	m := NewMain(cfg, io.Discard)
	ctx := context.Background()
	if err := m.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer m.Close()

	b.ResetTimer()
	for i := range b.N {
		seq := 0
		if evs := emu.Events(); len(evs) > 0 {
			seq = evs[len(evs)-1].Seq
		}
		n, err := m.DB.CreateNotice(valex.Notice{Kind: valex.NoticePolicyUpdate, Text: strconv.Itoa(i + 2), CreatedAt: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		m.Desk.Service.Broadcast(ctx, n, 0)
		m.Desk.Wait()
		elapsed := time.Since(start)
		done, err := m.DB.Notice(n.ID)
		if err != nil {
			b.Fatal(err)
		}
		if got := done.Totals[valex.DeliveryDelivered]; got != users || done.FinishedAt.IsZero() {
			b.Fatalf("totals %v, want %d delivered", done.Totals, users)
		}

		var sent []time.Time
		var refused int
		for _, e := range emu.Events() {
			switch {
			case e.Seq <= seq || e.Method != "sendMessage":
			case e.ErrorCode == 429:
				refused++
			case e.OK():
				sent = append(sent, e.At)
			}
		}
		b.ReportMetric(float64(users)/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(steadyRate(sent), "steady_msgs/s")
		b.ReportMetric(float64(refused), "429s")
	}
}

// steadyRate is the messages per second after the first second.
func steadyRate(at []time.Time) float64 {
	if len(at) < 2 {
		return 0
	}
	from := at[0].Add(time.Second)
	n := 0
	var first time.Time
	for _, t := range at {
		if t.Before(from) {
			continue
		}
		if n == 0 {
			first = t
		}
		n++
	}
	last := at[len(at)-1]
	if n < 2 || !last.After(first) {
		return 0
	}
	return float64(n-1) / last.Sub(first).Seconds()
}
