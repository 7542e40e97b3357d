package main

// The AI chat load run (issue 11): users each send their messages at once
// to a bot that streams every answer from an OpenAI-compatible provider.
// Both emulators run in this process — bot/bottest for Telegram, ai/aitest
// for the provider (SSE streaming, no delays) — and the contestants run in
// child processes: the real `valex run` binary (default config, pacing off,
// ai.max_concurrent = the floor's concurrency) and the bare streaming floor
// (aifloor.go). A message counts as answered when a message or an edit in
// its chat shows the whole answer; latency is from sending it to then.
// Then the burst: many chats sending one message each at the same moment,
// with the child's peak RSS (VmHWM) and the most goroutines its /metrics
// showed.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot/bottest"
)

type aiResult struct {
	rate       float64 // answers per second
	cpuPerMsg  float64 // microseconds of the child's CPU per answer
	p50, p99   time.Duration
	peakRSS    int64 // kB, VmHWM over the measured window
	goroutines int   // the most go_goroutines seen (valex only)
	// The most RssAnon (heap, stacks) and RssFile (mapped files: the
	// bbolt file, the binary) seen, kB: what the peak is made of.
	anon, file int64
	// files is what RssFile was made of when it was highest: each mapped
	// file's resident share (from /proc/PID/smaps), largest first.
	files   string
	commits float64 // store commits per answer (valex only)
	// perRequest is the chat messages (history and question) each request
	// to the provider carried: both sides send the same conversation.
	perRequest float64
	// emulators is this process's CPU per answer (both emulators, the
	// load generator): the machine's other cost, which bounds the rate.
	emulators float64
}

// aiChatBench runs the throughput comparison count times, alternated (none
// when count is 0), then the same with a provider that takes latency before
// its first chunk (latencyEach messages per user; none when latency or
// latencyEach is 0), then the burst of one message from each of burst chats.
func aiChatBench(valexBin string, users, each, count, burst int, latency time.Duration, latencyEach int) error {
	if count > 0 && users > 0 && each > 0 {
		fmt.Printf("\nAI chat: %d users × %d messages, streamed, pacing off, %d runs each\n", users, each, count)
		if err := aiChatRuns(valexBin, users, each, count, aitest.Step{}, true); err != nil {
			return err
		}
	}
	if count > 0 && users > 0 && latency > 0 && latencyEach > 0 {
		// Both sides now wait on the provider, as with a real one: the
		// rates tell whether valex adds waits of its own to a turn.
		fmt.Printf("\nAI chat with a slow provider (%s before the first chunk, then a chunk every %s): %d users × %d messages, %d runs each\n",
			latency, latencyChunk, users, latencyEach, count)
		if err := aiChatRuns(valexBin, users, latencyEach, count, aitest.Step{Delay: latency, TokenDelay: latencyChunk}, false); err != nil {
			return err
		}
	}
	if burst <= 0 {
		return nil
	}
	return aiBurst(valexBin, burst)
}

// latencyChunk is the pause between chunks of the slow provider's stream.
const latencyChunk = 20 * time.Millisecond

// aiChatRuns compares valex with the floor count times, alternated.
// provider is how the AI emulator answers; targets prints the issue's
// targets beside the ratios (they are set for an instant provider).
func aiChatRuns(valexBin string, users, each, count int, provider aitest.Step, targets bool) error {
	var floor, valex []aiResult
	for i := 0; i < count; i++ {
		f, err := aiLoad("aifloor", valexBin, users, each, users, provider)
		if err != nil {
			return fmt.Errorf("ai floor: %w", err)
		}
		v, err := aiLoad("valex", valexBin, users, each, users, provider)
		if err != nil {
			return fmt.Errorf("ai valex: %w", err)
		}
		floor, valex = append(floor, f), append(valex, v)
		fmt.Printf("  run %d: floor %.1f msgs/s %.0f µs/msg p99 %s; valex %.1f msgs/s %.0f µs/msg p99 %s, %.2f store commits/msg; messages per provider request: floor %.1f, valex %.1f; emulators µs/msg: floor %.0f, valex %.0f\n", i+1,
			f.rate, f.cpuPerMsg, f.p99.Round(time.Millisecond), v.rate, v.cpuPerMsg, v.p99.Round(time.Millisecond), v.commits, f.perRequest, v.perRequest, f.emulators, v.emulators)
	}
	rate := func(r aiResult) float64 { return r.rate }
	cpu := func(r aiResult) float64 { return r.cpuPerMsg }
	p99 := func(r aiResult) float64 { return r.p99.Seconds() }
	fmt.Printf("%-44s %22s %22s %22s\n", "run (median, min–max)", "msgs/s", "CPU µs/msg", "p99 s")
	fmt.Printf("%-44s %22s %22s %22s\n", "floor: tgbotapi + go-openai streaming", aiStat(floor, rate, 1), aiStat(floor, cpu, 0), aiStat(floor, p99, 2))
	fmt.Printf("%-44s %22s %22s %22s\n", "valex run, AI chat, pacing off", aiStat(valex, rate, 1), aiStat(valex, cpu, 0), aiStat(valex, p99, 2))
	ratios := make([]aiResult, len(floor))
	for i := range floor {
		ratios[i] = aiResult{rate: valex[i].rate / floor[i].rate, cpuPerMsg: valex[i].cpuPerMsg / floor[i].cpuPerMsg}
	}
	if targets {
		fmt.Printf("valex / floor, same run: rate %s× (target ≥ 0.8×), CPU %s× (target ≤ 2×)\n", aiStat(ratios, rate, 2), aiStat(ratios, cpu, 2))
	} else {
		fmt.Printf("valex / floor, same run: rate %s×, CPU %s×\n", aiStat(ratios, rate, 2), aiStat(ratios, cpu, 2))
	}
	return nil
}

// aiBurst has burst chats send one message each at the same moment: valex
// with its default ai.max_concurrent, the floor answering all at once.
func aiBurst(valexBin string, burst int) error {
	f, err := aiLoad("aifloor", valexBin, burst, 1, 64, aitest.Step{})
	if err != nil {
		return fmt.Errorf("ai floor burst: %w", err)
	}
	v, err := aiLoad("valex", valexBin, burst, 1, 0, aitest.Step{})
	if err != nil {
		return fmt.Errorf("ai valex burst: %w", err)
	}
	fmt.Printf("%d chats × 1 message at once: valex peak RSS %.1f MB (target ≤ 64; sampled every 250 ms: RssAnon up to %.1f MB, RssFile up to %.1f MB), at most %d goroutines, %.0f msgs/s, p99 %s; floor peak RSS %.1f MB, %.0f msgs/s\n",
		burst, float64(v.peakRSS)/1024, float64(v.anon)/1024, float64(v.file)/1024, v.goroutines, v.rate, v.p99.Round(time.Millisecond), float64(f.peakRSS)/1024, f.rate)
	fmt.Printf("  valex's RssFile at its highest, by mapped file: %s\n", v.files)
	return nil
}

func aiStat(rs []aiResult, f func(aiResult) float64, prec int) string {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, v[len(v)/2], prec, v[0], prec, v[len(v)-1])
}

// aiLoad is one measured run. slots is valex's ai.max_concurrent (0: its
// default); the floor answers every chat at once. provider is how the AI
// emulator answers each request.
func aiLoad(kind, valexBin string, users, each, slots int, provider aitest.Step) (res aiResult, err error) {
	// The emulators' goroutines inherit the label, so -cpuprofile tells
	// the cost of serving each side apart (pprof -tagfocus side=valex).
	pprof.Do(context.Background(), pprof.Labels("side", kind), func(context.Context) {
		res, err = aiLoadLabelled(kind, valexBin, users, each, slots, provider)
	})
	return res, err
}

func aiLoadLabelled(kind, valexBin string, users, each, slots int, provider aitest.Step) (aiResult, error) {
	emu, err := bottest.New(bottest.Options{Token: benchToken})
	if err != nil {
		return aiResult{}, err
	}
	defer emu.Close()
	emu.SetRecord(false)
	aisv := aitest.New()
	defer aisv.Close()
	aisv.SetRecord(false)
	aisv.SetDefault(provider)

	var us []bottest.User
	for i := 0; i < users; i++ {
		us = append(us, bottest.User{ID: int64(300000 + i), FirstName: "bench", LanguageCode: "en"})
	}
	// Every answer is "echo: " and its question (aitest's default).
	var mu sync.Mutex
	sentAt := map[string]time.Time{}
	var lat []time.Duration
	var answered atomic.Int64
	events, unsubscribe := emu.Subscribe()
	defer unsubscribe()
	go func() {
		for e := range events {
			if e.Method != "sendMessage" && e.Method != "editMessageText" {
				continue
			}
			mu.Lock()
			if at, ok := sentAt[e.Text]; ok {
				delete(sentAt, e.Text)
				lat = append(lat, e.At.Sub(at))
				answered.Add(1)
			}
			mu.Unlock()
		}
	}()
	ask := func(u bottest.User, q string) {
		mu.Lock()
		sentAt["echo: "+q] = time.Now()
		mu.Unlock()
		emu.SendText(bottest.PrivateChat(u), u, q)
	}
	waitAnswers := func(n int64, d time.Duration) error {
		deadline := time.Now().Add(d)
		for answered.Load() < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d answers after %s", answered.Load(), n, d)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}

	c, err := startAIChild(kind, valexBin, emu, aisv, users+users*each, slots)
	if err != nil {
		return aiResult{}, err
	}
	defer c.stop()
	// Warm-up, not measured: valex's users register and agree to the AI
	// transfer (their held first question is then answered); the floor's
	// answer one question each. Connections are open for both.
	if kind == "valex" {
		for _, u := range us {
			emu.SendText(bottest.PrivateChat(u), u, "/start")
			ask(u, fmt.Sprintf("warm %d", u.ID))
		}
		if err := pressConsent(emu, us); err != nil {
			return aiResult{}, err
		}
	} else {
		for _, u := range us {
			ask(u, fmt.Sprintf("warm %d", u.ID))
		}
	}
	if err := waitAnswers(int64(users), 10*time.Minute); err != nil {
		return aiResult{}, fmt.Errorf("warm-up: %w", err)
	}
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()
	answered.Store(0)
	resetPeakRSS(c.cmd.Process.Pid)

	var most, anon, file atomic.Int64
	var files atomic.Value // string: the breakdown at the highest RssFile
	files.Store("")
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // the valex child's goroutines, from its /metrics
		defer close(sampled)
		for {
			if c.metrics != "" {
				if g, err := metric(c.metrics, "go_goroutines"); err == nil && int64(g) > most.Load() {
					most.Store(int64(g))
				}
			}
			a, f := statusKB(c.cmd.Process.Pid, "RssAnon:"), statusKB(c.cmd.Process.Pid, "RssFile:")
			if a > anon.Load() {
				anon.Store(a)
			}
			if f > file.Load() {
				file.Store(f)
				files.Store(mappedFiles(c.cmd.Process.Pid))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(250 * time.Millisecond): // a scrape costs the child CPU: not too often
			}
		}
	}()

	n := users * each
	storeCommits := func() float64 { // the floor stores nothing
		v, _ := metric(c.metrics, "valex_store_commits_total")
		return v
	}
	var commits0 float64
	if c.metrics != "" {
		commits0 = storeCommits()
	}
	reqs0, msgs0 := aisv.Count(), aisv.Messages()
	cpu0, self0, t0 := procCPU(c.cmd.Process.Pid), procCPU(os.Getpid()), time.Now()
	for i := 0; i < each; i++ {
		for _, u := range us {
			ask(u, fmt.Sprintf("u%d m%d how are you", u.ID, i))
		}
	}
	err = waitAnswers(int64(n), 60*time.Minute)
	elapsed, cpu1, self1 := time.Since(t0), procCPU(c.cmd.Process.Pid), procCPU(os.Getpid())
	close(stopSampling)
	<-sampled
	if err != nil {
		return aiResult{}, err
	}
	mu.Lock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	r := aiResult{
		rate: float64(n) / elapsed.Seconds(), cpuPerMsg: float64((cpu1 - cpu0).Microseconds()) / float64(n),
		p50: pct(0.50), p99: pct(0.99), peakRSS: peakRSS(c.cmd.Process.Pid), goroutines: int(most.Load()),
		anon: anon.Load(), file: file.Load(), files: files.Load().(string), emulators: float64((self1 - self0).Microseconds()) / float64(n),
	}
	if reqs := aisv.Count() - reqs0; reqs > 0 {
		r.perRequest = float64(aisv.Messages()-msgs0) / float64(reqs)
	}
	if c.metrics != "" {
		r.commits = (storeCommits() - commits0) / float64(n)
	}
	if os.Getenv("VALEX_BENCH_CALLS") != "" { // which Bot API calls the run made
		for _, m := range []string{"getUpdates", "sendMessage", "sendMessageDraft", "editMessageText", "sendChatAction", "deleteMessage", "editMessageReplyMarkup"} {
			fmt.Fprintf(os.Stderr, "  %s %s: %d\n", kind, m, emu.Count(m))
		}
	}
	mu.Unlock()
	return r, nil
}

// startAIChild starts the floor or `valex run` against both emulators.
func startAIChild(kind, valexBin string, emu *bottest.Server, aisv *aitest.Server, n, slots int) (*child, error) {
	if kind == "valex" {
		return startChildWith(kind, valexBin, emu, func(c *child) error {
			ai := ""
			if slots > 0 {
				ai = fmt.Sprintf("[ai]\nmax_concurrent = %d\n", slots)
			}
			toml := "[telegram]\nconcurrency = 1024\nuser_messages_per_minute = 0\n[telegram.pace]\ndisabled = true\n" +
				"[payments]\nfree_daily_credits = 1000000\n" + ai
			if err := os.WriteFile(filepath.Join(c.dir, "valex.toml"), []byte(toml), 0o600); err != nil {
				return err
			}
			c.cmd.Env = append(c.cmd.Env, "OPENAI_BASE_URL="+aisv.URL()+"/v1", "OPENAI_API_KEY=sk-bench")
			return nil
		})
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startChildWith(kind, valexBin, emu, func(c *child) error {
		c.cmd.Path, c.cmd.Args = self, []string{self, "aifloor", emu.URL(), emu.Token(), aisv.URL() + "/v1", strconv.Itoa(n)}
		return nil
	})
}

// pressConsent presses "I agree" in every user's chat once the bot asked.
func pressConsent(emu *bottest.Server, us []bottest.User) error {
	deadline := time.Now().Add(10 * time.Minute)
	left := us
	for len(left) > 0 {
		var still []bottest.User
		for _, u := range left {
			id, data := consentButton(emu, u)
			if id == 0 {
				still = append(still, u)
				continue
			}
			emu.PressButton(bottest.PrivateChat(u), u, id, data)
		}
		left = still
		if len(left) > 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d users never asked for consent", len(left))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func consentButton(emu *bottest.Server, u bottest.User) (int, string) {
	for _, m := range emu.Messages(u.ID) {
		for _, row := range m.Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, "I agree") {
					return m.ID, b.Data
				}
			}
		}
	}
	return 0, ""
}

// resetPeakRSS makes VmHWM start again from the current RSS ("5" to
// clear_refs), so the warm-up's peak is not counted.
func resetPeakRSS(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// statusKB reads one "Name: N kB" line of /proc/PID/status (0 if absent).
func statusKB(pid int, name string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// mappedFiles sums the resident kB of each file the process maps, from
// /proc/PID/smaps, as "valex.db 20.1 MB, valex 14.5 MB, …" (largest first;
// the binary and the bbolt files are most of a bot's RssFile).
func mappedFiles(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return ""
	}
	defer f.Close()
	kb := map[string]int64{}
	var path string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fields := strings.Fields(line); len(fields) >= 5 && strings.Contains(fields[0], "-") {
			path = "" // a mapping's header: address range, perms, offset, device, inode [path]
			if len(fields) >= 6 && strings.HasPrefix(fields[5], "/") {
				path = filepath.Base(fields[5])
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && path != "" {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			kb[path] += n
		}
	}
	names := make([]string, 0, len(kb))
	for name := range kb {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return kb[names[i]] > kb[names[j]] })
	parts := make([]string, 0, len(names))
	for _, name := range names {
		if kb[name] >= 100 {
			parts = append(parts, fmt.Sprintf("%s %.1f MB", name, float64(kb[name])/1024))
		}
	}
	return strings.Join(parts, ", ")
}

// peakRSS is VmHWM in kB.
func peakRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
