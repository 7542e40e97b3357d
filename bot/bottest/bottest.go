// Package bottest is a wire-compatible Telegram Bot API emulator. It serves
// the Bot API over real HTTP on 127.0.0.1 so the real client (tgbotapi) runs
// against it unchanged: end-to-end tests, benchmarks and `valex demo` use it.
//
// Users act through methods like SendText and PressButton, which queue
// updates for getUpdates. Everything the bot calls is recorded as an Event
// and reflected in the chat state returned by Messages.
package bottest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"golang.org/x/time/rate"
)

// Options configure a Server. Zero values take the defaults.
type Options struct {
	Token       string           // default "123456:TEST-token"
	BotID       int64            // default 1000
	BotUsername string           // default "valex_bot"
	Clock       func() time.Time // default time.Now; message dates and event times
	// FirstUpdateID is the first update_id handed out (default 1): a bot
	// restarted on the same data keeps ids above the ones it stored.
	FirstUpdateID int
	// Topics makes getMe report the bot's forum topic mode in private
	// chats (has_topics_enabled, allows_users_to_create_topics). Topics
	// work in any chat either way: CreateTopic, Chat.Thread.
	Topics bool
	// NoDrafts makes the server a Bot API before 9.5: sendMessageDraft
	// answers 404 Not Found, as for any method it does not know.
	NoDrafts bool
}

// maxFormBody caps non-multipart request bodies; Telegram's own limits on
// text fields are far below it.
const maxFormBody = 10 << 20

// Server is a running emulator. All methods are safe for concurrent use.
type Server struct {
	token      string
	bot        wireUser
	topics     bool // Options.Topics
	clock      func() time.Time
	url        string
	methodPath string // "/bot<token>/"
	filePath   string // "/file/bot<token>/"
	srv        *http.Server
	done       chan struct{} // closed by Close; ends long polls and waits
	closeOnce  sync.Once
	closeErr   error
	noDrafts   bool

	// One mutex guards all state below: every lock section is a few map and
	// slice operations, so contention stays negligible at 10k calls/s.
	mu sync.Mutex

	// Updates not yet confirmed by an offset, in update_id order.
	queue        []pendingUpdate
	lastUpdateID int
	confirmed    int
	allowed      map[string]bool // nil: Telegram's default set
	pollGen      int             // incremented by every getUpdates call
	polling      int             // getUpdates calls blocked in a long poll
	pollWake     chan struct{}   // closed on a new update or poll; nil if nobody waits
	webhook      string

	chats   map[int64]*chatState
	blocked map[int64]bool
	missing map[int64]bool // chats that answer "chat not found" (deleted accounts, wrong ids)

	files       map[string]*storedFile // by file_id
	filesByPath map[string]*storedFile
	fileSeq     int

	querySeq     int64
	callbacks    map[string]bool // callback_query id → answered
	preCheckouts map[string]bool // pre_checkout_query id → answered
	starCharges  map[string]starCharge
	invoiceLinks int

	commands map[commandKey][]tgbotapi.BotCommand

	events    []Event
	seq       int
	counts    map[string]int
	record    bool
	subs      map[*subscriber]struct{}
	countWake chan struct{} // closed on the next event; nil if nobody waits

	fails   []failRule
	floods  []flood
	latency map[string]time.Duration
	limits  *sendLimits // nil: no rate limits (SetRateLimit)
}

type failRule struct {
	method     string // "" = any
	left       int
	code       int // 0 = close the connection
	retryAfter int
}

// flood is a window in which Telegram refuses calls with 429.
type flood struct {
	method     string // "" = any
	until      time.Time
	retryAfter []int // seconds, handed out in turn
	next       int
}

type commandKey struct{ scope, lang string }

// New starts an emulator listening on 127.0.0.1 on a free port.
func New(opts Options) (*Server, error) {
	if opts.Token == "" {
		opts.Token = "123456:TEST-token"
	}
	if opts.BotID == 0 {
		opts.BotID = 1000
	}
	if opts.BotUsername == "" {
		opts.BotUsername = "valex_bot"
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{
		token:        opts.Token,
		bot:          wireUser{ID: opts.BotID, IsBot: true, FirstName: "Valex", Username: opts.BotUsername},
		topics:       opts.Topics,
		clock:        opts.Clock,
		url:          "http://" + ln.Addr().String(),
		methodPath:   "/bot" + opts.Token + "/",
		filePath:     "/file/bot" + opts.Token + "/",
		done:         make(chan struct{}),
		chats:        make(map[int64]*chatState),
		blocked:      make(map[int64]bool),
		missing:      make(map[int64]bool),
		files:        make(map[string]*storedFile),
		filesByPath:  make(map[string]*storedFile),
		querySeq:     4_200_000_000_000_000_000, // callback ids look like Telegram's long numbers
		callbacks:    make(map[string]bool),
		preCheckouts: make(map[string]bool),
		starCharges:  make(map[string]starCharge),
		commands:     make(map[commandKey][]tgbotapi.BotCommand),
		counts:       make(map[string]int),
		record:       true,
		subs:         make(map[*subscriber]struct{}),
		latency:      make(map[string]time.Duration),
		noDrafts:     opts.NoDrafts,
	}
	if opts.FirstUpdateID > 1 {
		s.lastUpdateID = opts.FirstUpdateID - 1
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is the base URL: methods at {URL}/bot{token}/{method}, files at
// {URL}/file/bot{token}/{file_path}.
func (s *Server) URL() string { return s.url }

// Token is the bot token the server accepts.
func (s *Server) Token() string { return s.token }

// Close stops the server, ends blocked long polls and closes subscriptions.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.srv.Close()
		s.mu.Lock()
		for sub := range s.subs {
			sub.stop()
		}
		s.subs = map[*subscriber]struct{}{}
		s.mu.Unlock()
	})
	return s.closeErr
}

// FailNext makes the next n calls of method ("" = any method) fail with code:
// 429 answers "Too Many Requests: retry after N" with parameters.retry_after,
// other codes a JSON error with Telegram's description for them, and code 0
// closes the connection without answering (a network error). n <= 0 removes
// the rules for method.
func (s *Server) FailNext(method string, n int, code int, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		kept := s.fails[:0]
		for _, f := range s.fails {
			if f.method != method {
				kept = append(kept, f)
			}
		}
		s.fails = kept
		return
	}
	s.fails = append(s.fails, failRule{method: method, left: n, code: code, retryAfter: retryAfter})
}

// Flood refuses every call of method ("" = any method, getUpdates and getMe
// included) until d has passed on the server's clock, like a Telegram flood
// storm: each answer is 429 "Too Many Requests: retry after N" with
// parameters.retry_after N taken in turn from retryAfter (seconds; 1 when
// empty). FailNext rules are served first.
func (s *Server) Flood(method string, d time.Duration, retryAfter ...int) {
	if len(retryAfter) == 0 {
		retryAfter = []int{1}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.floods = append(s.floods, flood{method: method, until: s.clock().Add(d), retryAfter: append([]int(nil), retryAfter...)})
}

// SetLatency delays every call of method ("" = any method without its own
// latency) by d before it is handled; 0 removes the delay.
func (s *Server) SetLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, method)
		return
	}
	s.latency[method] = d
}

// sendLimits are Telegram's broadcast limits as SetRateLimit set them.
type sendLimits struct {
	free, paid *rate.Limiter // paid: calls with allow_paid_broadcast=true
}

// SetRateLimit makes the server enforce Telegram's broadcast limits on the
// messages a bot sends (every send* method but sendChatAction and
// sendMessageDraft, which send no message): beyond
// perSecond a second over all chats the answer is 429 "Too Many Requests:
// retry after 1". Paid broadcasts (allow_paid_broadcast=true) are not held
// to perSecond but to paidPerSecond (Telegram's 1,000). Each limit is a
// token bucket holding one second's worth, on the wall clock whatever
// Options.Clock says. perSecond <= 0 removes the limits.
func (s *Server) SetRateLimit(perSecond, paidPerSecond float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		s.limits = nil
		return
	}
	bucket := func(r float64) *rate.Limiter {
		if r <= 0 {
			return rate.NewLimiter(rate.Inf, 0)
		}
		return rate.NewLimiter(rate.Limit(r), max(1, int(r)))
	}
	s.limits = &sendLimits{free: bucket(perSecond), paid: bucket(paidPerSecond)}
}

// withinLimits takes a token for a message from the limit it falls under;
// false means the call is over it.
func (s *Server) withinLimits(method string, p url.Values) bool {
	if !strings.HasPrefix(method, "send") || method == "sendChatAction" || method == "sendMessageDraft" {
		return true
	}
	s.mu.Lock()
	l := s.limits
	s.mu.Unlock()
	if l == nil {
		return true
	}
	if p.Get("allow_paid_broadcast") == "true" {
		return l.paid.Allow()
	}
	return l.free.Allow()
}

// SetBlocked makes every bot call addressed to chatID answer 403 "Forbidden:
// bot was blocked by the user", as when a user blocks the bot.
func (s *Server) SetBlocked(chatID int64, blocked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if blocked {
		s.blocked[chatID] = true
	} else {
		delete(s.blocked, chatID)
	}
}

// SetChatMissing makes every bot call addressed to chatID answer 400 "Bad
// Request: chat not found", as for a deleted account.
func (s *Server) SetChatMissing(chatID int64, missing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if missing {
		s.missing[chatID] = true
	} else {
		delete(s.missing, chatID)
	}
}

// request is one Bot API call.
type request struct {
	ctx    context.Context
	method string
	params url.Values
	files  map[string][]*multipart.FileHeader
}

// handler serves one method. On success it records ev itself, inside the
// same lock section that changes state, so event order equals state order;
// on failure the dispatcher records ev with the error.
type handler func(s *Server, req *request, ev *Event) (any, *apiError)

// ServeHTTP serves the Bot API and file downloads. Exported so the emulator
// can also be mounted on another server; New already serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/file/bot") {
		s.serveFile(w, r)
		return
	}
	rest, ok := strings.CutPrefix(path, "/bot")
	if !ok {
		writeError(w, errNotFound)
		return
	}
	token, name, ok := strings.Cut(rest, "/")
	if !ok || name == "" {
		writeError(w, errNotFound)
		return
	}
	if token != s.token {
		writeError(w, errUnauthorized)
		return
	}
	params, files, err := readParams(r)
	if err != nil {
		writeError(w, badRequest(err.Error()))
		return
	}
	m, known := lookupMethod(name)
	ev := Event{Method: m.name, Params: params}
	// Injected failures are recorded against their chat too, so tests can
	// check the timing of retries per chat.
	ev.ChatID, _ = strconv.ParseInt(params.Get("chat_id"), 10, 64)
	if !known {
		s.fail(w, ev, errNotFound)
		return
	}
	if !s.delay(r.Context(), m.name) {
		return // client gone or server closed while waiting
	}
	if rule, ok := s.takeFailure(m.name); ok {
		if rule.code == 0 {
			s.hangUp(w, ev)
			return
		}
		s.fail(w, ev, injectedError(rule.code, rule.retryAfter))
		return
	}
	if retryAfter, ok := s.flooded(m.name); ok {
		s.fail(w, ev, errTooManyRequests(retryAfter))
		return
	}
	if !s.withinLimits(m.name, params) {
		s.fail(w, ev, errTooManyRequests(1))
		return
	}
	req := &request{ctx: r.Context(), method: m.name, params: params, files: files}
	result, aerr := m.fn(s, req, &ev)
	if aerr != nil {
		s.fail(w, ev, aerr)
		return
	}
	var b []byte
	if raw, ok := result.(json.RawMessage); ok {
		b = raw // pre-encoded (getUpdates)
	} else if b, err = json.Marshal(result); err != nil {
		writeError(w, &apiError{code: 500, desc: "Internal Server Error: " + err.Error()})
		return
	}
	writeResult(w, b)
}

// fail records the failed call and answers with the error.
func (s *Server) fail(w http.ResponseWriter, ev Event, e *apiError) {
	ev.ErrorCode, ev.Error, ev.RetryAfter = e.code, e.desc, e.retryAfter
	s.emit(ev)
	writeError(w, e)
}

// hangUp closes the connection without an answer, like a network failure.
func (s *Server) hangUp(w http.ResponseWriter, ev Event) {
	ev.Error = "connection closed"
	s.emit(ev)
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // net/http closes the connection on this panic
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func (s *Server) takeFailure(method string) (failRule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.fails {
		f := &s.fails[i]
		if f.method != "" && f.method != method {
			continue
		}
		rule := *f
		f.left--
		if f.left == 0 {
			s.fails = append(s.fails[:i], s.fails[i+1:]...)
		}
		return rule, true
	}
	return failRule{}, false
}

// flooded reports whether a Flood window refuses method now, and the
// retry_after to answer with.
func (s *Server) flooded(method string) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	kept := s.floods[:0]
	for _, f := range s.floods {
		if now.Before(f.until) {
			kept = append(kept, f)
		}
	}
	s.floods = kept
	for i := range s.floods {
		f := &s.floods[i]
		if f.method != "" && f.method != method {
			continue
		}
		ra := f.retryAfter[f.next%len(f.retryAfter)]
		f.next++
		return ra, true
	}
	return 0, false
}

// delay waits out the configured latency; false if the wait was cut short.
func (s *Server) delay(ctx context.Context, method string) bool {
	s.mu.Lock()
	d, ok := s.latency[method]
	if !ok {
		d = s.latency[""]
	}
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// readParams collects parameters the ways the Bot API accepts them: query
// string, urlencoded form, multipart form (with files) or a JSON object.
func readParams(r *http.Request) (url.Values, map[string][]*multipart.FileHeader, error) {
	ct := r.Header.Get("Content-Type")
	var params url.Values
	var files map[string][]*multipart.FileHeader
	switch {
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBody))
		if err != nil {
			return nil, nil, fmt.Errorf("read body: %w", err)
		}
		if params, err = url.ParseQuery(string(body)); err != nil {
			return nil, nil, fmt.Errorf("can't parse form: %w", err)
		}
	case strings.HasPrefix(ct, "multipart/form-data"):
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return nil, nil, fmt.Errorf("can't parse multipart form: %w", err)
		}
		params, files = r.MultipartForm.Value, r.MultipartForm.File
	case strings.HasPrefix(ct, "application/json"):
		var obj map[string]json.RawMessage
		if err := json.NewDecoder(io.LimitReader(r.Body, maxFormBody)).Decode(&obj); err != nil && !errors.Is(err, io.EOF) {
			return nil, nil, fmt.Errorf("can't parse JSON object: %w", err)
		}
		params = make(url.Values, len(obj))
		for k, v := range obj {
			var str string
			switch {
			case string(v) == "null":
				continue
			case len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &str) == nil:
				params.Set(k, str)
			default:
				params.Set(k, string(v)) // numbers, booleans, nested JSON as text
			}
		}
	}
	if r.URL.RawQuery != "" {
		if params == nil {
			params = url.Values{}
		}
		for k, vs := range r.URL.Query() {
			if _, ok := params[k]; !ok {
				params[k] = vs
			}
		}
	}
	if params == nil {
		params = url.Values{}
	}
	return params, files, nil
}

// starCharge is a Stars payment refundStarPayment can refund.
type starCharge struct {
	user     int64
	amount   int
	refunded bool
	canceled bool // a subscription's renewal was cancelled
}

// AddStarCharge makes a Stars payment known to the emulator (as one sent
// with SendSuccessfulPayment is), so refundStarPayment can refund it.
func (s *Server) AddStarCharge(userID int64, chargeID string, amount int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starCharges[chargeID] = starCharge{user: userID, amount: amount}
}

// StarRefunded reports whether a Stars payment was refunded.
func (s *Server) StarRefunded(chargeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starCharges[chargeID].refunded
}

// StarSubscriptionCanceled reports whether the subscription a charge
// belongs to was cancelled with editUserStarSubscription.
func (s *Server) StarSubscriptionCanceled(chargeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starCharges[chargeID].canceled
}
