package bottest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Button is one keyboard button: inline (Data or URL) or reply (Text,
// RequestContact).
type Button struct {
	Text           string
	Data           string // callback_data
	URL            string
	RequestContact bool
}

// Event is one Bot API call the bot made, successful or not.
type Event struct {
	Seq       int
	At        time.Time // from Options.Clock
	Method    string    // canonical name, e.g. "sendMessage"
	ChatID    int64
	ThreadID  int    // message_thread_id of a send: the topic it went to
	MessageID int    // the message created, edited or deleted
	Text      string // text or caption as the user sees it: tags stripped, entities decoded
	Raw       string // text or caption as sent (with markup)
	ParseMode string
	Keyboard  [][]Button // inline or reply keyboard of reply_markup
	// RemoveKeyboard is set when reply_markup removed the reply keyboard.
	RemoveKeyboard bool
	ReplyTo        int
	// PaidBroadcast is set when the call carried allow_paid_broadcast=true
	// (a paid broadcast: past the broadcast limit, charged in Stars).
	PaidBroadcast bool

	// Uploads (sendDocument, sendPhoto, sendVoice, sendAudio).
	FileName string
	FileData []byte
	FileMIME string

	// answerCallbackQuery; CallbackID also holds answerPreCheckoutQuery's
	// query id (with its error_message in Text).
	CallbackID   string
	CallbackText string
	ShowAlert    bool

	Action string // sendChatAction

	// sendMessageDraft: the draft's id and whether it showed a stop button
	// (its topic is ThreadID). Text and Raw are the draft's text.
	DraftID int64
	CanStop bool

	// Params are the raw parameters of the call. Shared with other copies of
	// the event: read, don't modify.
	Params url.Values

	// ErrorCode and Error are set when the call failed (Error alone for a
	// connection closed by FailNext with code 0).
	ErrorCode int
	Error     string
	// RetryAfter is the answer's parameters.retry_after in seconds (sent
	// with 429): no call to this chat (or, without a chat, none at all)
	// should come before At plus RetryAfter.
	RetryAfter int
}

// OK reports whether the call succeeded.
func (e Event) OK() bool { return e.ErrorCode == 0 && e.Error == "" }

func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s", e.Seq, e.Method)
	if e.ChatID != 0 {
		fmt.Fprintf(&b, " chat=%d", e.ChatID)
	}
	if e.ThreadID != 0 {
		fmt.Fprintf(&b, " thread=%d", e.ThreadID)
	}
	if e.MessageID != 0 {
		fmt.Fprintf(&b, " msg=%d", e.MessageID)
	}
	if e.Text != "" {
		t := e.Text
		if len(t) > 60 {
			t = t[:60] + "…"
		}
		fmt.Fprintf(&b, " %q", t)
	}
	if !e.OK() {
		fmt.Fprintf(&b, " error=%d %s", e.ErrorCode, e.Error)
	}
	return b.String()
}

// emit records an event. Callers that change state emit inside their own
// lock section (emitLocked) so event order equals state order.
func (s *Server) emit(ev Event) {
	s.mu.Lock()
	s.emitLocked(ev)
	s.mu.Unlock()
}

func (s *Server) emitLocked(ev Event) {
	s.seq++
	ev.Seq = s.seq
	ev.At = s.clock()
	s.counts[ev.Method]++
	if s.record {
		s.events = append(s.events, ev)
	}
	for sub := range s.subs {
		sub.push(ev)
	}
	if s.countWake != nil {
		close(s.countWake)
		s.countWake = nil
	}
}

// SetRecord switches storing events on or off. Off (for benchmarks), calls
// are still counted and delivered to subscribers but not kept for Events,
// EventsFor or the past part of WaitFor.
func (s *Server) SetRecord(on bool) {
	s.mu.Lock()
	s.record = on
	s.mu.Unlock()
}

// Events returns a copy of all recorded events in order.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// EventsFor returns the recorded events addressed to chatID.
func (s *Server) EventsFor(chatID int64) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	for _, e := range s.events {
		if e.ChatID == chatID {
			out = append(out, e)
		}
	}
	return out
}

// Count is how many times method was called, failed calls included.
func (s *Server) Count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[method]
}

// WaitCalls blocks until method has been called at least n times (failed
// calls included). It works with recording off, for benchmarks.
func (s *Server) WaitCalls(ctx context.Context, method string, n int) error {
	for {
		s.mu.Lock()
		got := s.counts[method]
		if got >= n {
			s.mu.Unlock()
			return nil
		}
		if s.countWake == nil {
			s.countWake = make(chan struct{})
		}
		wake := s.countWake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("bottest: %s called %d of %d times: %w", method, got, n, ctx.Err())
		case <-s.done:
			return fmt.Errorf("bottest: server closed while waiting for %s", method)
		}
	}
}

// WaitFor returns the first event, past or future, that match accepts.
// match sees failed calls too; check Event.OK when that matters.
func (s *Server) WaitFor(ctx context.Context, match func(Event) bool) (Event, error) {
	evs, err := s.WaitCount(ctx, 1, match)
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// WaitCount returns the first n events, past or future, that match accepts
// (nil accepts all). On timeout the error lists the last events seen, which
// is usually what explains a failing end-to-end test.
func (s *Server) WaitCount(ctx context.Context, n int, match func(Event) bool) ([]Event, error) {
	if n <= 0 {
		return nil, nil
	}
	if match == nil {
		match = func(Event) bool { return true }
	}
	// Snapshot the past and subscribe to the future in one lock section so
	// no event falls in between. The log is append-only, so the snapshot's
	// elements can be read after unlocking.
	s.mu.Lock()
	past := s.events
	sub := s.subscribeLocked()
	s.mu.Unlock()
	defer s.unsubscribe(sub)

	var got []Event
	var seen []Event // the last few events, for the timeout message
	consider := func(e Event) bool {
		seen = append(seen, e)
		if len(seen) > 8 {
			seen = seen[1:]
		}
		if match(e) {
			got = append(got, e)
		}
		return len(got) >= n
	}
	for _, e := range past {
		if consider(e) {
			return got, nil
		}
	}
	for {
		select {
		case e, ok := <-sub.out:
			if !ok {
				return got, fmt.Errorf("bottest: server closed after %d of %d matching events", len(got), n)
			}
			if consider(e) {
				return got, nil
			}
		case <-ctx.Done():
			var b strings.Builder
			for _, e := range seen {
				b.WriteString("\n\t")
				b.WriteString(e.String())
			}
			return got, fmt.Errorf("bottest: got %d of %d matching events: %w; last events:%s", len(got), n, ctx.Err(), b.String())
		}
	}
}

// Subscribe delivers every future event in order. Each subscriber has an
// unbounded queue, so a slow reader never blocks the server and loses
// nothing. cancel ends the subscription and closes the channel.
func (s *Server) Subscribe() (<-chan Event, func()) {
	s.mu.Lock()
	sub := s.subscribeLocked()
	s.mu.Unlock()
	return sub.out, func() { s.unsubscribe(sub) }
}

func (s *Server) subscribeLocked() *subscriber {
	sub := &subscriber{
		signal: make(chan struct{}, 1),
		out:    make(chan Event),
		done:   make(chan struct{}),
	}
	select {
	case <-s.done:
		close(sub.done) // server closed: the pump closes out at once
	default:
		s.subs[sub] = struct{}{}
	}
	go sub.pump()
	return sub
}

func (s *Server) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
	sub.stop()
}

// subscriber queues events for one reader; pump moves them to out.
type subscriber struct {
	mu       sync.Mutex
	queue    []Event
	signal   chan struct{} // capacity 1: "queue is not empty"
	out      chan Event
	done     chan struct{}
	stopOnce sync.Once
}

func (sub *subscriber) push(ev Event) {
	sub.mu.Lock()
	sub.queue = append(sub.queue, ev)
	sub.mu.Unlock()
	select {
	case sub.signal <- struct{}{}:
	default: // already signalled
	}
}

func (sub *subscriber) stop() {
	sub.stopOnce.Do(func() { close(sub.done) })
}

func (sub *subscriber) pump() {
	defer close(sub.out)
	for {
		sub.mu.Lock()
		batch := sub.queue
		sub.queue = nil
		sub.mu.Unlock()
		for _, ev := range batch {
			select {
			case sub.out <- ev:
			case <-sub.done:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-sub.signal:
		case <-sub.done:
			return
		}
	}
}
