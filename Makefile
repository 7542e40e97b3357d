# Valex — see README.md. Every target works on a fresh machine with Go installed.
GO      ?= go
BIN     := bin/valex
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/valex-ai/valex.Version=$(VERSION)

.PHONY: build demo run test bench lint fuzz clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/valex

demo: build
	./$(BIN) demo

run: build
	./$(BIN) run

test:
	$(GO) test -race -count=1 ./...

# Go benchmarks (5 runs each), then the load runs of the real binary against the
# emulators beside bare floors: /help beside a tgbotapi echo loop, and AI chat
# (VALEX_BENCH_AI_USERS × VALEX_BENCH_AI_MESSAGES, default 50 × 2,000; the same
# users × VALEX_BENCH_AI_LATENCY_MESSAGES, default 100, with a provider that
# takes 300 ms to start answering; then a burst of VALEX_BENCH_AI_BURST chats,
# default 10,000) beside a bare tgbotapi + go-openai streaming bot (figures in
# docs/BENCHMARKS.md).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count=5 ./...
	$(GO) run ./cmd/valexbench -valex $(BIN) -count 5

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzMarkdownToHTML -fuzztime 30s ./bot/tghtml
	$(GO) test -run '^$$' -fuzz FuzzSplit -fuzztime 30s ./bot/tghtml
	$(GO) test -run '^$$' -fuzz FuzzParseUpdate -fuzztime 30s ./bot
	$(GO) test -run '^$$' -fuzz FuzzSignerParse -fuzztime 30s ./bot
	$(GO) test -run '^$$' -fuzz FuzzParseHTML -fuzztime 30s ./bot/bottest
	$(GO) test -run '^$$' -fuzz FuzzOggDuration -fuzztime 30s ./ai
	$(GO) test -run '^$$' -fuzz FuzzExtract -fuzztime 60s ./doctext
	$(GO) test -run '^$$' -fuzz FuzzConfigNeverMute -fuzztime 60s ./cmd/valex

clean:
	rm -rf bin
