// Command valexbench is the load run of `make bench`: it pushes updates
// through the whole bot pipeline against the Bot API emulator and prints
// throughput, CPU per update and reply latency, next to a bare tgbotapi echo
// loop as the floor.
//
// The emulator runs in a child process for the throughput runs, so the CPU
// figures are the bot's own (getrusage of this process), not the emulator's.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/bot/tghtml"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/store"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "emulate" {
		if err := emulate(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "valexbench emulate:", err)
			os.Exit(1)
		}
		return
	}
	n := flag.Int("n", 20000, "updates per throughput run")
	chats := flag.Int("chats", 200, "chats the updates are spread over")
	slow := flag.Int("slow", 500, "chats in the slow-handler run (handler sleeps 1s)")
	flag.Parse()
	if err := bench(*n, *chats, *slow); err != nil {
		fmt.Fprintln(os.Stderr, "valexbench:", err)
		os.Exit(1)
	}
}

func bench(n, chats, slow int) error {
	fmt.Printf("valexbench: %d updates over %d chats, GOMAXPROCS=%d, %s/%s\n", n, chats, runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	floor, err := throughput(n, chats, func(ctx context.Context, url, token string) error {
		return bottest.EchoFloor(ctx, url, token, n)
	})
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	pipe, err := throughput(n, chats, func(ctx context.Context, url, token string) error {
		return echoPipeline(ctx, url, token, n)
	})
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	p50, p99, max, err := slowChats(slow)
	if err != nil {
		return fmt.Errorf("slow chats: %w", err)
	}
	fmt.Println()
	fmt.Printf("%-34s %12s %16s\n", "run", "updates/s", "CPU µs/update")
	fmt.Printf("%-34s %12.0f %16.1f\n", "floor: bare tgbotapi echo loop", floor.rate, floor.cpuPerUpdate)
	fmt.Printf("%-34s %12.0f %16.1f\n", "valex pipeline, echo handler", pipe.rate, pipe.cpuPerUpdate)
	fmt.Printf("pipeline CPU / floor CPU: %.2fx (target ≤ 2x); pipeline rate target ≥ 2000/s\n", pipe.cpuPerUpdate/floor.cpuPerUpdate)
	fmt.Printf("%d chats, handler sleeps 1s: reply p50 %s, p99 %s, max %s (target p99 < 1.5s)\n",
		slow, p50.Round(time.Millisecond), p99.Round(time.Millisecond), max.Round(time.Millisecond))
	return nil
}

type result struct {
	rate         float64 // updates per second
	cpuPerUpdate float64 // microseconds of this process's CPU per update
}

// throughput starts an emulator child preloaded with n updates and measures
// run, which must return once it has answered all of them.
func throughput(n, chats int, run func(ctx context.Context, url, token string) error) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(self, "emulate", strconv.Itoa(n), strconv.Itoa(chats))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return result{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return result{}, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return result{}, fmt.Errorf("emulator did not start: %w", err)
	}
	url, token, _ := strings.Cut(strings.TrimSpace(line), " ")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	runtime.GC()
	cpu0, t0 := cpuTime(), time.Now()
	if err := run(ctx, url, token); err != nil {
		return result{}, err
	}
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	return result{rate: float64(n) / elapsed.Seconds(), cpuPerUpdate: float64(cpu.Microseconds()) / float64(n)}, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// emulate is the child: an emulator holding n text updates, serving until
// its stdin closes.
func emulate(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: emulate N CHATS")
	}
	n, _ := strconv.Atoi(args[0])
	chats, _ := strconv.Atoi(args[1])
	emu, err := bottest.New(bottest.Options{Token: "123456789:BENCH-emulator-token-0000000000"})
	if err != nil {
		return err
	}
	defer emu.Close()
	emu.SetRecord(false)
	for i := 0; i < n; i++ {
		u := bottest.User{ID: int64(100000 + i%chats), FirstName: "bench", LanguageCode: "en"}
		emu.SendText(bottest.PrivateChat(u), u, "hello "+strconv.Itoa(i))
	}
	fmt.Println(emu.URL(), emu.Token())
	_, err = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	return err
}

// echoPipeline runs the real bot core (client, durable inbox in bbolt,
// dispatcher, router with middleware, outbox) with an echo handler until it
// has answered n updates.
func echoPipeline(ctx context.Context, url, token string, n int) error {
	dir, err := os.MkdirTemp("", "valexbench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(dir+"/valex.db", store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	var answered atomic.Int64
	done := make(chan struct{})
	b, err := newBot(ctx, db, url, token, func(ctx context.Context, out *bot.Outbox, r *bot.Request) error {
		_, err := out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: tghtml.Escape(r.Text)})
		if answered.Add(1) == int64(n) {
			close(done)
		}
		return err
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(runCtx) }()
	select {
	case <-done:
	case <-ctx.Done():
		stop()
		<-runErr
		return fmt.Errorf("answered %d of %d: %w", answered.Load(), n, ctx.Err())
	}
	stop()
	return <-runErr
}

type echoFunc func(ctx context.Context, out *bot.Outbox, r *bot.Request) error

func newBot(ctx context.Context, db *store.DB, url, token string, h echoFunc) (*bot.Bot, error) {
	client, err := bot.NewClient(ctx, url, token, nil)
	if err != nil {
		return nil, err
	}
	tr, err := locales.Load()
	if err != nil {
		return nil, err
	}
	log := zerolog.Nop()
	out := bot.NewOutbox(client, bot.OutboxConfig{Pace: bot.PaceConfig{Disabled: true}}, log)
	rt := bot.NewRouter(bot.NewSigner([]byte(token)))
	rt.Use(bot.Recover(), bot.Logging(log, valex.Pseudonymizer{}), bot.Identity(
		func(context.Context, bot.From) string { return "en" },
		func(int64) valex.Role { return valex.RoleUser }))
	rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error { return h(ctx, out, r) })
	return bot.New(client, out, db, rt, tr, valex.SystemClock{}, log, bot.Config{PollTimeout: time.Second}), nil
}

// slowChats measures reply times when every handler takes a second: 500
// chats each send one message at the same moment.
func slowChats(chats int) (p50, p99, max time.Duration, err error) {
	emu, err := bottest.New(bottest.Options{Token: "123456789:BENCH-emulator-token-0000000000"})
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
	b, err := newBot(ctx, db, emu.URL(), emu.Token(), func(ctx context.Context, out *bot.Outbox, r *bot.Request) error {
		time.Sleep(time.Second)
		_, err := out.Send(ctx, bot.Message{ChatID: r.ChatID, Text: "done"})
		return err
	})
	if err != nil {
		return
	}
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
