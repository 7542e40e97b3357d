// Command valexbench is the load run of `make bench`. Every figure compares
// like with like, in the same run:
//
//   - floor: a concurrent bare tgbotapi echo loop (one getUpdates loop, as
//     many senders as chats), in a child process;
//   - valex: the real `valex run` binary in a child process — store and
//     key store, user lookup, abuse limiter, router with every route,
//     translations, the desk's look at private text — answering /help, with
//     pacing off so both run as fast as they can;
//   - paced: the same binary with Telegram's pacing on, fed 30 updates a
//     second: CPU per update and store commits per second (from its
//     /metrics);
//   - slow chats: the bot core in this process with a handler that sleeps a
//     second, 500 chats at once: reply latency.
//
// The Bot API emulator runs in this process; CPU is read from the child's
// /proc/PID/stat over the measured window only (start-up and shutdown are
// left out for both). Each throughput run is repeated -count times and
// reported as the median with the min–max.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/store"
)

const benchToken = "123456789:BENCH-emulator-token-0000000000"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "aifloor" {
		if err := aiFloorChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "valexbench aifloor:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "floor" {
		if err := floorChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "valexbench floor:", err)
			os.Exit(1)
		}
		return
	}
	valexBin := flag.String("valex", "bin/valex", "the valex binary to measure (make bench builds it)")
	n := flag.Int("n", 10000, "updates per throughput run")
	chats := flag.Int("chats", 200, "chats the updates are spread over (and the floor's senders)")
	count := flag.Int("count", 5, "runs of each throughput measurement")
	paced := flag.Duration("paced", 20*time.Second, "length of the paced run (30 updates/s; 0: skip)")
	slow := flag.Int("slow", 500, "chats in the slow-handler run (handler sleeps 1s; 0: skip)")
	aiUsers := flag.Int("ai-users", envInt("VALEX_BENCH_AI_USERS", 50), "AI chat run: users, each sending -ai-messages at once")
	aiEach := flag.Int("ai-messages", envInt("VALEX_BENCH_AI_MESSAGES", 2000), "AI chat run: messages per user")
	aiBurst := flag.Int("ai-burst", envInt("VALEX_BENCH_AI_BURST", 10000), "AI burst: chats sending one message each at once (0: skip)")
	aiLatency := flag.Duration("ai-latency", 300*time.Millisecond, "AI chat run with a slow provider: its wait before the first chunk (0: skip)")
	aiLatencyEach := flag.Int("ai-latency-messages", envInt("VALEX_BENCH_AI_LATENCY_MESSAGES", 100), "AI chat run with a slow provider: messages per user (0: skip)")
	aiOnly := flag.Bool("ai-only", false, "run only the AI chat runs")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of this process (the emulators, the load) to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "valexbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if !*aiOnly {
		if err := bench(*valexBin, *n, *chats, *count, *paced, *slow); err != nil {
			fmt.Fprintln(os.Stderr, "valexbench:", err)
			os.Exit(1)
		}
	}
	bin, err := filepath.Abs(*valexBin)
	if err == nil {
		err = aiChatBench(bin, *aiUsers, *aiEach, *count, *aiBurst, *aiLatency, *aiLatencyEach)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "valexbench:", err)
		os.Exit(1)
	}
}

// envInt is the environment variable's integer value, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func bench(valexBin string, n, chats, count int, paced time.Duration, slow int) error {
	valexBin, err := filepath.Abs(valexBin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(valexBin); err != nil {
		return fmt.Errorf("%w (build it first: make build)", err)
	}
	fmt.Printf("valexbench: %d updates over %d chats, %d runs each, GOMAXPROCS=%d, %d CPUs, %s/%s\n",
		n, chats, count, runtime.GOMAXPROCS(0), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	if floorReply, err = helpReply(valexBin); err != nil {
		return fmt.Errorf("valex's /help: %w", err)
	}
	var floor, pipe []result
	for i := 0; i < count; i++ { // alternated, so drift on the machine hits both
		f, err := throughput("floor", valexBin, n, chats)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		p, err := throughput("valex", valexBin, n, chats)
		if err != nil {
			return fmt.Errorf("valex: %w", err)
		}
		floor, pipe = append(floor, f), append(pipe, p)
		fmt.Printf("  run %d: floor %.0f/s %.1f µs, valex %.0f/s %.1f µs\n", i+1, f.rate, f.cpuPerUpdate, p.rate, p.cpuPerUpdate)
	}
	var pfs, prs []pacedResult
	for i := 0; paced > 0 && i < max(count, 1); i++ { // alternated like the throughput runs
		pf, err := pacedRun("floor", valexBin, paced)
		if err != nil {
			return fmt.Errorf("paced floor: %w", err)
		}
		pr, err := pacedRun("valex", valexBin, paced)
		if err != nil {
			return fmt.Errorf("paced: %w", err)
		}
		pfs, prs = append(pfs, pf), append(prs, pr)
		fmt.Printf("  paced run %d: floor %.0f µs/update (kernel %.0f), valex %.0f µs/update (kernel %.0f), %.1f commits/s\n",
			i+1, pf.cpuPerUpdate, pf.sysPerUpdate, pr.cpuPerUpdate, pr.sysPerUpdate, pr.commitsPerSec)
	}
	var p50, p99, worst time.Duration
	if slow > 0 {
		if p50, p99, worst, err = slowChats(slow); err != nil {
			return fmt.Errorf("slow chats: %w", err)
		}
	}
	fmt.Println()
	if count > 0 { // -count 0 runs the paced and slow-chat runs alone
		fmt.Printf("%-44s %22s %22s\n", "run (median, min–max)", "updates/s", "CPU µs/update")
		fmt.Printf("%-44s %22s %22s\n", "floor: concurrent bare tgbotapi echo", stat(floor, rate), stat(floor, cpu))
		fmt.Printf("%-44s %22s %22s\n", "valex run, /help, pacing off", stat(pipe, rate), stat(pipe, cpu))
	}
	ratios := make([]result, len(floor))
	for i := range floor {
		ratios[i] = result{rate: pipe[i].rate / floor[i].rate, cpuPerUpdate: pipe[i].cpuPerUpdate / floor[i].cpuPerUpdate}
	}
	if len(ratios) > 0 {
		fmt.Printf("valex / floor, same run: CPU %s (target ≤ 1.2×), rate %s (target ≥ 0.8×)\n", statX(ratios, cpu), statX(ratios, rate))
		warm := func(r result) float64 { return r.warmUp }
		fmt.Printf("warm-up before each run (one update from each of the %d chats at once, right after the start; not in the figures above), CPU µs/update: valex %s, floor %s\n",
			chats, stat(pipe, warm), stat(floor, warm))
	}
	pcpu := func(r pacedResult) float64 { return r.cpuPerUpdate }
	psys := func(r pacedResult) float64 { return r.sysPerUpdate }
	pcommits := func(r pacedResult) float64 { return r.commitsPerSec }
	if len(prs) > 0 {
		fmt.Printf("paced 30 updates/s for %s, %d runs: valex CPU %s µs/update (target ≤ 600; kernel %s), %s store commits/s (target ≤ 40)\n",
			paced, len(prs), pacedStat(prs, pcpu), pacedStat(prs, psys), pacedStat(prs, pcommits))
		fmt.Printf("  the floor at the same pace (bare tgbotapi echo, nothing stored): CPU %s µs/update (kernel %s)\n", pacedStat(pfs, pcpu), pacedStat(pfs, psys))
	}
	if slow > 0 {
		fmt.Printf("%d chats, handler sleeps 1s (bot core in-process): reply p50 %s, p99 %s, max %s (target p99 < 1.5s)\n",
			slow, p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond))
	}
	return nil
}

// floorReply is the HTML text valex answers /help with; the floor answers
// every update with it, so both send the same bytes (an echo of "/help"
// would make the floor's Telegram calls a fraction of valex's).
var floorReply string

// helpReply asks a fresh valex child for /help and returns its answer as
// sent (with markup).
func helpReply(valexBin string) (string, error) {
	emu, err := bottest.New(bottest.Options{Token: benchToken})
	if err != nil {
		return "", err
	}
	defer emu.Close()
	c, err := startChild("valex", valexBin, emu, 1, 1, false)
	if err != nil {
		return "", err
	}
	defer c.stop()
	u := bottest.User{ID: 99999, FirstName: "bench", LanguageCode: "en"}
	emu.SendText(bottest.PrivateChat(u), u, "/help")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := emu.WaitFor(ctx, func(e bottest.Event) bool { return e.Method == "sendMessage" })
	if err != nil {
		return "", err
	}
	if e.ParseMode != "HTML" || e.Raw == "" {
		return "", fmt.Errorf("/help answered with parse mode %q and %d bytes", e.ParseMode, len(e.Raw))
	}
	return e.Raw, nil
}

type result struct {
	rate         float64 // updates per second
	cpuPerUpdate float64 // microseconds of the child's CPU per update
	// warmUp is the CPU per update of the warm-up, one update from each
	// chat at once right after the start.
	warmUp float64
}

func rate(r result) float64 { return r.rate }
func cpu(r result) float64  { return r.cpuPerUpdate }

// stat is "median (min–max)" of one field.
func stat(rs []result, f func(result) float64) string {
	med, lo, hi := spread(rs, f)
	return fmt.Sprintf("%.0f (%.0f–%.0f)", med, lo, hi)
}

func statX(rs []result, f func(result) float64) string {
	med, lo, hi := spread(rs, f)
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", med, lo, hi)
}

func spread(rs []result, f func(result) float64) (med, lo, hi float64) {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2], v[0], v[len(v)-1]
}

// child is a process under measurement, talking to emu.
type child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	metrics string // the valex child's /metrics URL, "" for the floor
	dir     string
}

// startChild starts the floor or the valex binary against emu and waits
// until it polls.
func startChild(kind, valexBin string, emu *bottest.Server, n, chats int, pace bool) (*child, error) {
	return startChildWith(kind, valexBin, emu, func(c *child) error {
		if kind == "floor" {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			c.cmd.Path, c.cmd.Args = self, []string{self, "floor", emu.URL(), emu.Token(), strconv.Itoa(n), strconv.Itoa(chats)}
			c.cmd.Env = append(c.cmd.Env, "VALEX_BENCH_FLOOR_REPLY="+floorReply)
			return nil
		}
		toml := fmt.Sprintf("[telegram]\nconcurrency = 1024\nuser_messages_per_minute = 0\n[telegram.pace]\ndisabled = %v\n", !pace)
		return os.WriteFile(filepath.Join(c.dir, "valex.toml"), []byte(toml), 0o600)
	})
}

// startChildWith starts `valex run` against emu with its data, config and
// /metrics in a fresh directory, after setup has written the config (or
// turned the command into a floor's), and waits until it polls.
func startChildWith(kind, valexBin string, emu *bottest.Server, setup func(*child) error) (*child, error) {
	dir, err := os.MkdirTemp("", "valexbench-*")
	if err != nil {
		return nil, err
	}
	c := &child{dir: dir}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.cmd = exec.Command(valexBin, "run")
	c.cmd.Env = append(os.Environ(),
		"VALEX_CONFIG="+filepath.Join(dir, "valex.toml"),
		"VALEX_DATA_DIR="+filepath.Join(dir, "data"),
		"VALEX_TELEGRAM_TOKEN="+emu.Token(),
		"VALEX_TELEGRAM_API_URL="+emu.URL(),
		"VALEX_HTTP_ADDR="+port,
		"VALEX_LOG_LEVEL=error",
	)
	if kind == "valex" {
		c.metrics = "http://" + port + "/metrics"
	}
	if err := setup(c); err != nil {
		return nil, err
	}
	c.cmd.Stderr = os.Stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for !emu.Polling() {
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("%s never polled", kind)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c, nil
}

// stop ends the child (SIGTERM for valex, stdin closed for the floor) and
// removes its data.
func (c *child) stop() {
	_ = c.stdin.Close()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
	_ = os.RemoveAll(c.dir)
}

// throughput measures one run: n text updates over chats, answered as fast
// as the child can, after a warm-up in which each chat sends one update
// (both sides: connections opened, every path used once, the heap grown),
// so the measured window is the steady state of a running bot; the
// warm-up's own cost is reported apart (warmUp).
func throughput(kind, valexBin string, n, chats int) (result, error) {
	emu, err := bottest.New(bottest.Options{Token: benchToken})
	if err != nil {
		return result{}, err
	}
	defer emu.Close()
	emu.SetRecord(false)
	c, err := startChild(kind, valexBin, emu, chats+n, chats, false)
	if err != nil {
		return result{}, err
	}
	defer c.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	send := func(count int) {
		for i := 0; i < count; i++ {
			u := bottest.User{ID: int64(100000 + i%chats), FirstName: "bench", LanguageCode: "en"}
			emu.SendText(bottest.PrivateChat(u), u, "/help")
		}
	}
	cpuW := procCPU(c.cmd.Process.Pid)
	send(chats)
	if err := emu.WaitCalls(ctx, "sendMessage", chats); err != nil {
		return result{}, fmt.Errorf("warm-up: %w", err)
	}
	cpu0, t0 := procCPU(c.cmd.Process.Pid), time.Now()
	send(n)
	if err := emu.WaitCalls(ctx, "sendMessage", chats+n); err != nil {
		return result{}, err
	}
	elapsed, cpu1 := time.Since(t0), procCPU(c.cmd.Process.Pid)
	if got := emu.Count("sendMessage"); got > chats+n {
		return result{}, fmt.Errorf("%d messages for %d updates: not one answer each", got, chats+n)
	}
	return result{
		rate:         float64(n) / elapsed.Seconds(),
		cpuPerUpdate: float64((cpu1 - cpu0).Microseconds()) / float64(n),
		warmUp:       float64((cpu0 - cpuW).Microseconds()) / float64(chats),
	}, nil
}

// pacedStat is the median and min–max of f over rs.
func pacedStat(rs []pacedResult, f func(pacedResult) float64) string {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return fmt.Sprintf("%.0f (%.0f–%.0f)", v[len(v)/2], v[0], v[len(v)-1])
}

type pacedResult struct {
	updates       float64
	cpuPerUpdate  float64
	sysPerUpdate  float64 // the kernel's share of cpuPerUpdate
	commitsPerSec float64
}

// pacedRun feeds the valex child 30 updates a second over 150 chats (each
// chat once every 5 s, within Telegram's per-chat limit) with pacing on,
// after a warm-up in which each chat sends one update (see throughput), so
// no measured update is a chat's first.
func pacedRun(kind, valexBin string, d time.Duration) (pacedResult, error) {
	const perSecond, chats = 30, 150
	emu, err := bottest.New(bottest.Options{Token: benchToken})
	if err != nil {
		return pacedResult{}, err
	}
	defer emu.Close()
	emu.SetRecord(false)
	c, err := startChild(kind, valexBin, emu, chats+int(d.Seconds()*perSecond)+perSecond, chats, true)
	if err != nil {
		return pacedResult{}, err
	}
	defer c.stop()
	user := func(n int) bottest.User {
		return bottest.User{ID: int64(200000 + n%chats), FirstName: "paced", LanguageCode: "en"}
	}
	for i := 0; i < chats; i++ {
		emu.SendText(bottest.PrivateChat(user(i)), user(i), "/help")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+d)
	defer cancel()
	if err := emu.WaitCalls(ctx, "sendMessage", chats); err != nil { // valex paces these: ~5 s
		return pacedResult{}, fmt.Errorf("warm-up: %w", err)
	}
	commits := func() (float64, error) { // the floor stores nothing
		if c.metrics == "" {
			return 0, nil
		}
		return metric(c.metrics, "valex_store_commits_total")
	}
	commits0, err := commits()
	if err != nil {
		return pacedResult{}, err
	}
	user0, sys0 := procUserSys(c.cmd.Process.Pid)
	t0 := time.Now()
	tick := time.NewTicker(time.Second / perSecond)
	n := 0
	for time.Since(t0) < d {
		<-tick.C
		emu.SendText(bottest.PrivateChat(user(n)), user(n), "/help")
		n++
	}
	tick.Stop()
	if err := emu.WaitCalls(ctx, "sendMessage", chats+n); err != nil {
		return pacedResult{}, err
	}
	elapsed := time.Since(t0)
	user1, sys1 := procUserSys(c.cmd.Process.Pid)
	commits1, err := commits()
	if err != nil {
		return pacedResult{}, err
	}
	perUpdate := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	return pacedResult{
		updates:       float64(n),
		cpuPerUpdate:  perUpdate(user1 - user0 + sys1 - sys0),
		sysPerUpdate:  perUpdate(sys1 - sys0),
		commitsPerSec: (commits1 - commits0) / elapsed.Seconds(),
	}, nil
}

// floorChild runs the floor against the emulator at args[0] and stays up
// until its stdin closes, so it is measured like the valex child.
func floorChild(args []string) error {
	if len(args) != 4 {
		return fmt.Errorf("usage: floor URL TOKEN N WORKERS")
	}
	n, _ := strconv.Atoi(args[2])
	workers, _ := strconv.Atoi(args[3])
	if err := bottest.EchoFloor(context.Background(), args[0], args[1], n, workers, os.Getenv("VALEX_BENCH_FLOOR_REPLY")); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, os.Stdin)
	return err
}

// procCPU is the user+system CPU a process has used, from /proc (clock ticks
// of 10 ms: runs are long enough for that to be fine).
func procCPU(pid int) time.Duration {
	user, sys := procUserSys(pid)
	return user + sys
}

// procUserSys is procCPU split into user and system (kernel: syscalls,
// fsync) time.
func procUserSys(pid int) (user, sys time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime) * 10 * time.Millisecond, time.Duration(stime) * 10 * time.Millisecond
}

// metric reads one unlabelled series from a Prometheus text endpoint.
func metric(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", url, name)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// slowChats measures reply times when every handler takes a second: 500
// chats each send one message at the same moment.
func slowChats(chats int) (p50, p99, worst time.Duration, err error) {
	emu, err := bottest.New(bottest.Options{Token: benchToken})
	if err != nil {
		return
	}
	defer emu.Close()
	dir, err := os.MkdirTemp("", "valexbench-*")
	if err != nil {
		return
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(dir+"/valex.db", store.Options{})
	if err != nil {
		return
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := bot.NewClient(ctx, emu.URL(), emu.Token(), nil)
	if err != nil {
		return
	}
	tr, err := locales.Load()
	if err != nil {
		return
	}
	log := zerolog.Nop()
	out := bot.NewOutbox(client, bot.OutboxConfig{Pace: bot.PaceConfig{Disabled: true}}, log)
	rt := bot.NewRouter(bot.NewSigner([]byte(emu.Token())))
	rt.Use(bot.Recover(), bot.Logging(log, valex.Pseudonymizer{}), bot.Identity(
		func(context.Context, bot.From) string { return "en" },
		func(int64) valex.Role { return valex.RoleUser }))
	rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error {
		time.Sleep(time.Second)
		_, err := out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: "done"})
		return err
	})
	b := bot.New(client, out, db, rt, tr, valex.SystemClock{}, log, bot.Config{PollTimeout: time.Second})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go b.Run(runCtx)

	sentAt := make(map[int64]time.Time, chats)
	for i := 0; i < chats; i++ {
		u := bottest.User{ID: int64(500000 + i), FirstName: "slow"}
		sentAt[u.ID] = time.Now()
		emu.SendText(bottest.PrivateChat(u), u, "work")
	}
	events, err := emu.WaitCount(ctx, chats, func(e bottest.Event) bool { return e.Method == "sendMessage" && e.OK() })
	if err != nil {
		return
	}
	lat := make([]time.Duration, 0, len(events))
	for _, e := range events {
		lat = append(lat, e.At.Sub(sentAt[e.ChatID]))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	return pct(0.50), pct(0.99), lat[len(lat)-1], nil
}
