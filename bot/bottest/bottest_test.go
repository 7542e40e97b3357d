package bottest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/valex-ai/valex/bot/bottest"
)

var (
	ann  = bottest.User{ID: 42, Username: "ann", FirstName: "Ann", LanguageCode: "en"}
	chat = bottest.PrivateChat(ann)
)

// start runs an emulator and connects the real tgbotapi client to it.
func start(t *testing.T, opts bottest.Options) (*bottest.Server, *tgbotapi.BotAPI) {
	t.Helper()
	s, err := bottest.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	api, err := tgbotapi.NewBotAPIWithClient(s.Token(), s.URL()+"/bot%s/%s", &http.Client{})
	if err != nil {
		t.Fatalf("NewBotAPIWithClient: %v", err)
	}
	return s, api
}

// apiError returns the Bot API error in err, failing the test if there is none.
func apiError(t *testing.T, err error) *tgbotapi.Error {
	t.Helper()
	var e *tgbotapi.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a Bot API error, got %v", err)
	}
	return e
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil polls cond; only tests poll, the server never does.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGetMe(t *testing.T) {
	s, api := start(t, bottest.Options{BotUsername: "test_bot", BotID: 777})
	if api.Self.UserName != "test_bot" || api.Self.ID != 777 || !api.Self.IsBot {
		t.Fatalf("Self = %+v", api.Self)
	}
	if s.Count("getMe") != 1 {
		t.Fatalf("getMe count = %d, want 1", s.Count("getMe"))
	}
}

func TestWrongTokenAndUnknownMethod(t *testing.T) {
	s, api := start(t, bottest.Options{})
	_, err := tgbotapi.NewBotAPIWithClient("999:wrong", s.URL()+"/bot%s/%s", &http.Client{})
	if e := apiError(t, err); e.Code != 401 || e.Message != "Unauthorized" {
		t.Fatalf("wrong token: %d %q", e.Code, e.Message)
	}
	_, err = api.MakeRequest("sendTelepathy", nil)
	if e := apiError(t, err); e.Code != 404 || e.Message != "Not Found" {
		t.Fatalf("unknown method: %d %q", e.Code, e.Message)
	}
	// Method names are case-insensitive on Telegram.
	if _, err := api.MakeRequest("getme", nil); err != nil {
		t.Fatalf("getme: %v", err)
	}
}

func TestLongPollTimesOutWhenEmpty(t *testing.T) {
	_, api := start(t, bottest.Options{})
	began := time.Now()
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 1})
	took := time.Since(began)
	if err != nil || len(ups) != 0 {
		t.Fatalf("GetUpdates = %v, %v", ups, err)
	}
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Fatalf("empty long poll took %v, want about 1s", took)
	}
}

func TestLongPollWakesOnUpdate(t *testing.T) {
	s, api := start(t, bottest.Options{})
	type result struct {
		ups  []tgbotapi.Update
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		began := time.Now()
		ups, err := api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
		done <- result{ups, err, time.Since(began)}
	}()
	waitUntil(t, "the poll to block", s.Polling)
	sent := time.Now()
	id := s.SendText(chat, ann, "hello")
	r := <-done
	if r.err != nil || len(r.ups) != 1 {
		t.Fatalf("GetUpdates = %v, %v", r.ups, r.err)
	}
	if wake := time.Since(sent); wake > time.Second {
		t.Fatalf("poll woke %v after the update", wake)
	}
	u := r.ups[0]
	if u.UpdateID != id || u.Message == nil || u.Message.Text != "hello" {
		t.Fatalf("update = %+v", u)
	}
	m := u.Message
	if m.From.ID != ann.ID || m.From.UserName != "ann" || m.From.LanguageCode != "en" || m.Chat.ID != ann.ID || m.Chat.Type != "private" {
		t.Fatalf("message = %+v from %+v chat %+v", m, m.From, m.Chat)
	}
}

func TestOffsetConfirms(t *testing.T) {
	s, api := start(t, bottest.Options{})
	ids := []int{s.SendText(chat, ann, "1"), s.SendText(chat, ann, "2"), s.SendText(chat, ann, "3")}
	for round := 0; round < 2; round++ { // unconfirmed updates come again
		ups, err := api.GetUpdates(tgbotapi.UpdateConfig{})
		if err != nil || len(ups) != 3 || ups[0].UpdateID != ids[0] || ups[2].UpdateID != ids[2] {
			t.Fatalf("round %d: %v, %v", round, ups, err)
		}
	}
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{Offset: ids[1] + 1})
	if err != nil || len(ups) != 1 || ups[0].Message.Text != "3" {
		t.Fatalf("after offset: %v, %v", ups, err)
	}
	if s.Confirmed() != ids[1] || s.Pending() != 1 {
		t.Fatalf("Confirmed = %d, Pending = %d", s.Confirmed(), s.Pending())
	}
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{Limit: 1, Offset: ids[2] + 1})
	if len(ups) != 0 || s.Confirmed() != ids[2] {
		t.Fatalf("after confirming all: %d updates, Confirmed = %d", len(ups), s.Confirmed())
	}
	// limit
	for i := 0; i < 5; i++ {
		s.SendText(chat, ann, "x")
	}
	if ups, _ := api.GetUpdates(tgbotapi.UpdateConfig{Limit: 2}); len(ups) != 2 {
		t.Fatalf("limit 2 gave %d", len(ups))
	}
}

func TestAllowedUpdatesFilterAndPersist(t *testing.T) {
	s, api := start(t, bottest.Options{})
	m, err := api.Send(withKeyboard(tgbotapi.NewMessage(chat.ID, "pick"), "yes"))
	if err != nil {
		t.Fatal(err)
	}
	s.SendText(chat, ann, "text is filtered")
	cb := s.PressButton(chat, ann, m.MessageID, "yes")
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{AllowedUpdates: []string{"callback_query"}})
	if err != nil || len(ups) != 1 || ups[0].UpdateID != cb || ups[0].CallbackQuery == nil {
		t.Fatalf("filtered poll: %+v, %v", ups, err)
	}
	// tgbotapi sends allowed_updates=null when unset: the list is remembered.
	s.SendText(chat, ann, "still filtered")
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{Offset: cb + 1})
	if len(ups) != 0 {
		t.Fatalf("remembered filter let through %+v", ups[0])
	}
	// An empty list restores the default.
	id := s.SendText(chat, ann, "back")
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{AllowedUpdates: []string{}})
	if len(ups) != 1 || ups[0].UpdateID != id {
		t.Fatalf("after reset: %+v", ups)
	}
	// chat_member is outside the default set, as on Telegram.
	s.SendRaw(json.RawMessage(`{"chat_member":{"chat":{"id":1,"type":"group"}}}`))
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{Offset: id + 1})
	if len(ups) != 0 {
		t.Fatalf("chat_member delivered by default")
	}
}

func TestConcurrentPollConflict(t *testing.T) {
	s, api := start(t, bottest.Options{})
	first := make(chan error, 1)
	go func() {
		_, err := api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 10})
		first <- err
	}()
	waitUntil(t, "the first poll to block", s.Polling)
	// The newer request wins; the one waiting is terminated with 409.
	if _, err := api.GetUpdates(tgbotapi.UpdateConfig{}); err != nil {
		t.Fatalf("second poll: %v", err)
	}
	select {
	case err := <-first:
		e := apiError(t, err)
		if e.Code != 409 || !strings.HasPrefix(e.Message, "Conflict: terminated by other getUpdates request") {
			t.Fatalf("first poll: %d %q", e.Code, e.Message)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("first poll was not terminated")
	}
}

func withKeyboard(m tgbotapi.MessageConfig, data ...string) tgbotapi.MessageConfig {
	var row []tgbotapi.InlineKeyboardButton
	for _, d := range data {
		row = append(row, tgbotapi.NewInlineKeyboardButtonData(strings.ToUpper(d), d))
	}
	m.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(row)
	return m
}

func TestSendMessageHTML(t *testing.T) {
	s, api := start(t, bottest.Options{})
	type ent struct {
		typ         string
		off, length int
		extra       string // url or language
	}
	tests := []struct {
		name     string
		html     string
		text     string // rendered text; "" when an error is expected
		entities []ent
		err      string // substring of the description
	}{
		{name: "bold", html: "<b>bold</b> text", text: "bold text", entities: []ent{{"bold", 0, 4, ""}}},
		{name: "upper-case tags", html: "<B>x</B><STRONG>y</STRONG>", text: "xy", entities: []ent{{"bold", 0, 1, ""}, {"bold", 1, 1, ""}}},
		{name: "all simple tags", html: "<i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del><code>c</code>",
			text: "ieunskdc", entities: []ent{{"italic", 0, 1, ""}, {"italic", 1, 1, ""}, {"underline", 2, 1, ""}, {"underline", 3, 1, ""},
				{"strikethrough", 4, 1, ""}, {"strikethrough", 5, 1, ""}, {"strikethrough", 6, 1, ""}, {"code", 7, 1, ""}}},
		{name: "entities decoded", html: "a &lt; b &amp;&amp; c &gt; d &quot;q&quot; &#65;&#x42;", text: `a < b && c > d "q" AB`},
		{name: "bare >", html: "a > b", text: "a > b"},
		{name: "link", html: `<a href="https://x.example/?a=1&amp;b=2">link</a>`, text: "link", entities: []ent{{"text_link", 0, 4, "https://x.example/?a=1&b=2"}}},
		{name: "unquoted href", html: `<a href=Example.COM>l</a>`, text: "l", entities: []ent{{"text_link", 0, 1, "example.com"}}},
		{name: "pre with language", html: `<pre><code class="language-go">x := 1</code></pre>`, text: "x := 1", entities: []ent{{"pre", 0, 6, "go"}}},
		{name: "spoilers", html: `<tg-spoiler>s</tg-spoiler> <span class="tg-spoiler">t</span>`, text: "s t", entities: []ent{{"spoiler", 0, 1, ""}, {"spoiler", 2, 1, ""}}},
		{name: "blockquote", html: "<blockquote>q</blockquote><blockquote expandable>e</blockquote>", text: "qe", entities: []ent{{"blockquote", 0, 1, ""}, {"expandable_blockquote", 1, 1, ""}}},
		{name: "expandable blockquote above an answer", html: "<BLOCKQUOTE  expandable >💭 r &amp; s</blockquote>\n<b>a</b>", text: "💭 r & s\na", entities: []ent{{"expandable_blockquote", 0, 8, ""}, {"bold", 9, 1, ""}}},
		{name: "nested", html: "<b>a<i>b</i></b>", text: "ab", entities: []ent{{"bold", 0, 2, ""}, {"italic", 1, 1, ""}}},
		{name: "utf16 offsets", html: "😀 <i>x</i>", text: "😀 x", entities: []ent{{"italic", 3, 1, ""}}},
		{name: "short end tag", html: "<b>x</>", text: "x", entities: []ent{{"bold", 0, 1, ""}}},
		{name: "trimmed", html: "  <b> hi</b>\n", text: "hi", entities: []ent{{"bold", 0, 2, ""}}},

		{name: "bare <", html: "a < b", err: `can't parse entities: Unsupported start tag "" at byte offset 2`},
		{name: "unclosed", html: "<b>x", err: `Can't find end tag corresponding to start tag "b"`},
		{name: "misnested", html: "<b><i>x</b></i>", err: `Unmatched end tag at byte offset 7, expected "</i>", found "</b>"`},
		{name: "unexpected end", html: "x</b>", err: "Unexpected end tag at byte offset 1"},
		{name: "br", html: "a<br>b", err: `Unsupported start tag "br" at byte offset 1`},
		{name: "br self-closing", html: "a<br/>b", err: `Unsupported start tag "br/"`},
		{name: "bare &", html: "AT&T", err: "Unsupported HTML entity at byte offset 2"},
		{name: "named entity", html: "a&nbsp;b", err: "Unsupported HTML entity"},
		{name: "entity without ;", html: "a &lt b", err: "Unsupported HTML entity"},
		{name: "& in href", html: `<a href="https://x?a=1&b=2">l</a>`, err: "Unsupported HTML entity"},
		{name: "span without class", html: "<span>x</span>", err: `Tag "span" must have class "tg-spoiler"`},
		{name: "attribute without value", html: "<a href>x</a>", err: `Expected equal sign in declaration of an attribute of the tag "a"`},
		{name: "unclosed start tag", html: "<b", err: "Unclosed start tag at byte offset 0"},
		{name: "unclosed quote", html: `<a href="x>y</a>`, err: "Unclosed start tag at byte offset 0"},
		{name: "unclosed end tag", html: "<b>x</b", err: "Unclosed end tag at byte offset 4"},
		{name: "bad name token", html: "<a href=x/y>z</a>", err: "Unexpected end of name token at byte offset 9"},
		{name: "unquoted URL", html: "<a href=https://x.example>z</a>", err: "Unexpected end of name token at byte offset 13"},
		{name: "empty after tags", html: "<b> </b>", err: "Bad Request: message text is empty"},
		{name: "blockquote with another attribute", html: "<blockquote expandible>q</blockquote>", err: `Expected equal sign in declaration of an attribute of the tag "blockquote"`},
		{name: "expandable on another tag", html: "<b expandable>q</b>", err: `Expected equal sign in declaration of an attribute of the tag "b"`},
		{name: "unclosed expandable blockquote", html: "<blockquote expandable>q", err: `Can't find end tag corresponding to start tag "blockquote"`},
		{name: "misnested expandable blockquote", html: "<blockquote expandable><b>q</blockquote></b>", err: `Unmatched end tag`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tgbotapi.NewMessage(chat.ID, tc.html)
			cfg.ParseMode = tgbotapi.ModeHTML
			m, err := api.Send(cfg)
			if tc.err != "" {
				e := apiError(t, err)
				if e.Code != 400 || !strings.Contains(e.Message, tc.err) {
					t.Fatalf("error = %d %q, want 400 containing %q", e.Code, e.Message, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if m.Text != tc.text {
				t.Fatalf("text = %q, want %q", m.Text, tc.text)
			}
			var got []ent
			for _, e := range m.Entities {
				extra := e.URL
				if e.Language != "" {
					extra = e.Language
				}
				got = append(got, ent{e.Type, e.Offset, e.Length, extra})
			}
			if len(got) != len(tc.entities) {
				t.Fatalf("entities = %+v, want %+v", got, tc.entities)
			}
			for i := range got {
				if got[i] != tc.entities[i] {
					t.Fatalf("entities = %+v, want %+v", got, tc.entities)
				}
			}
		})
	}
	// The failures are recorded with their error.
	failed := 0
	for _, e := range s.EventsFor(chat.ID) {
		if e.Method == "sendMessage" && e.ErrorCode == 400 {
			failed++
		}
	}
	want := 0
	for _, tc := range tests {
		if tc.err != "" {
			want++
		}
	}
	if failed != want {
		t.Fatalf("recorded %d failed sendMessage calls, want %d", failed, want)
	}
}

func TestMessageLength(t *testing.T) {
	_, api := start(t, bottest.Options{})
	tests := []struct {
		name string
		text string
		mode string
		ok   bool
	}{
		{"4096 ascii", strings.Repeat("a", 4096), "", true},
		{"4097 ascii", strings.Repeat("a", 4097), "", false},
		{"4096 after tags", "<b>" + strings.Repeat("a", 4096) + "</b>", "HTML", true},
		{"4096 after entities", strings.Repeat("&amp;", 4096), "HTML", true},
		{"4096 cyrillic", strings.Repeat("я", 4096), "", true},
		// UTF-16 counting: 2049 emoji are 2049 runes but 4098 code units.
		{"2048 emoji", strings.Repeat("😀", 2048), "", true},
		{"2049 emoji", strings.Repeat("😀", 2049), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tgbotapi.NewMessage(chat.ID, tc.text)
			cfg.ParseMode = tc.mode
			_, err := api.Send(cfg)
			if tc.ok && err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !tc.ok {
				if e := apiError(t, err); e.Code != 400 || e.Message != "Bad Request: message is too long" {
					t.Fatalf("error = %d %q", e.Code, e.Message)
				}
			}
		})
	}
}

func TestEditAndDelete(t *testing.T) {
	s, api := start(t, bottest.Options{})
	m, err := api.Send(withKeyboard(tgbotapi.NewMessage(chat.ID, "v1"), "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	kb := tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData("A", "a"), tgbotapi.NewInlineKeyboardButtonData("B", "b")))

	same := tgbotapi.NewEditMessageTextAndMarkup(chat.ID, m.MessageID, "v1", kb)
	_, err = api.Send(same)
	if e := apiError(t, err); e.Code != 400 || !strings.HasPrefix(e.Message, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same") {
		t.Fatalf("identical edit: %d %q", e.Code, e.Message)
	}
	// Same text, formatting changed: modified.
	bold := tgbotapi.NewEditMessageTextAndMarkup(chat.ID, m.MessageID, "<b>v1</b>", kb)
	bold.ParseMode = tgbotapi.ModeHTML
	if _, err := api.Send(bold); err != nil {
		t.Fatalf("formatting edit: %v", err)
	}
	// Leaving reply_markup out removes the keyboard: modified.
	edited, err := api.Send(tgbotapi.NewEditMessageText(chat.ID, m.MessageID, "v1"))
	if err != nil || edited.ReplyMarkup != nil || edited.EditDate == 0 {
		t.Fatalf("edit without markup: %+v, %v", edited, err)
	}
	if s.PressButton(chat, ann, m.MessageID, "a") != 0 {
		t.Fatal("pressed a button that was removed")
	}
	if _, err := api.Send(tgbotapi.NewEditMessageReplyMarkup(chat.ID, m.MessageID, kb)); err != nil {
		t.Fatalf("editMessageReplyMarkup: %v", err)
	}
	_, err = api.Send(tgbotapi.NewEditMessageReplyMarkup(chat.ID, m.MessageID, kb))
	if e := apiError(t, err); !strings.Contains(e.Message, "message is not modified") {
		t.Fatalf("identical markup edit: %q", e.Message)
	}
	_, err = api.Send(tgbotapi.NewEditMessageText(chat.ID, 999, "x"))
	if e := apiError(t, err); e.Message != "Bad Request: message to edit not found" {
		t.Fatalf("unknown message: %q", e.Message)
	}
	s.SendText(chat, ann, "mine")
	_, err = api.Send(tgbotapi.NewEditMessageText(chat.ID, m.MessageID+1, "x"))
	if e := apiError(t, err); e.Message != "Bad Request: message can't be edited" {
		t.Fatalf("user message: %q", e.Message)
	}

	if _, err := api.Request(tgbotapi.NewDeleteMessage(chat.ID, m.MessageID)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = api.Request(tgbotapi.NewDeleteMessage(chat.ID, m.MessageID))
	if e := apiError(t, err); e.Message != "Bad Request: message to delete not found" {
		t.Fatalf("second delete: %q", e.Message)
	}
	msgs := s.Messages(chat.ID)
	if len(msgs) != 1 {
		t.Fatalf("Messages = %+v", msgs)
	}
	got := msgs[0]
	if got.Text != "v1" || got.Edits != 3 || !got.Deleted || len(got.Keyboard) != 1 || got.Keyboard[0][1].Data != "b" {
		t.Fatalf("message state = %+v", got)
	}
}

func TestRateLimitRetryAfter(t *testing.T) {
	s, api := start(t, bottest.Options{})
	s.FailNext("sendMessage", 1, 429, 7)
	_, err := api.Send(tgbotapi.NewMessage(chat.ID, "hi"))
	e := apiError(t, err)
	if e.Code != 429 || e.RetryAfter != 7 || e.Message != "Too Many Requests: retry after 7" {
		t.Fatalf("429: code %d retry_after %d %q", e.Code, e.RetryAfter, e.Message)
	}
	if _, err := api.Send(tgbotapi.NewMessage(chat.ID, "hi")); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
	if n := s.Count("sendMessage"); n != 2 {
		t.Fatalf("Count = %d, want 2", n)
	}
	evs := s.Events()
	last := evs[len(evs)-2:]
	if last[0].OK() || last[0].ErrorCode != 429 || !last[1].OK() {
		t.Fatalf("events = %v", last)
	}
}

func TestFloodRefusesForAWindow(t *testing.T) {
	var mu sync.Mutex
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
	s, api := start(t, bottest.Options{Clock: now})
	s.Flood("sendMessage", 10*time.Second, 1, 2)
	for i, want := range []int{1, 2, 1} {
		_, err := api.Send(tgbotapi.NewMessage(chat.ID, "x"))
		if e := apiError(t, err); e.Code != 429 || e.RetryAfter != want || e.Message != fmt.Sprintf("Too Many Requests: retry after %d", want) {
			t.Fatalf("call %d: code %d retry_after %d %q, want 429 retry after %d", i+1, e.Code, e.RetryAfter, e.Message, want)
		}
	}
	if _, err := api.GetMe(); err != nil {
		t.Fatalf("another method during the flood: %v", err)
	}
	mu.Lock()
	at = at.Add(10 * time.Second)
	mu.Unlock()
	if _, err := api.Send(tgbotapi.NewMessage(chat.ID, "x")); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	var got []int
	for _, e := range s.EventsFor(chat.ID) {
		got = append(got, e.RetryAfter)
	}
	if fmt.Sprint(got) != "[1 2 1 0]" {
		t.Fatalf("recorded retry_after = %v, want [1 2 1 0]", got)
	}
}

func TestServerErrorAnyMethod(t *testing.T) {
	s, api := start(t, bottest.Options{})
	s.FailNext("", 2, 500, 0)
	_, err := api.GetMe()
	if e := apiError(t, err); e.Code != 500 || e.Message != "Internal Server Error" {
		t.Fatalf("500: %d %q", e.Code, e.Message)
	}
	_, err = api.Send(tgbotapi.NewMessage(chat.ID, "x"))
	if e := apiError(t, err); e.Code != 500 {
		t.Fatalf("second: %d", e.Code)
	}
	if _, err := api.GetMe(); err != nil {
		t.Fatalf("third: %v", err)
	}
}

func TestConnectionClose(t *testing.T) {
	s, api := start(t, bottest.Options{})
	s.FailNext("sendMessage", 1, 0, 0)
	_, err := api.Send(tgbotapi.NewMessage(chat.ID, "x"))
	if err == nil {
		t.Fatal("want a network error")
	}
	var e *tgbotapi.Error
	if errors.As(err, &e) {
		t.Fatalf("want a network error, got Bot API error %v", e)
	}
	if _, err := api.Send(tgbotapi.NewMessage(chat.ID, "x")); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
	if msgs := s.Messages(chat.ID); len(msgs) != 1 {
		t.Fatalf("the dropped call created a message: %+v", msgs)
	}
	evs := s.Events()
	if dropped := evs[len(evs)-2]; dropped.Error != "connection closed" || dropped.ErrorCode != 0 || dropped.OK() {
		t.Fatalf("dropped call event = %v", dropped)
	}
}

func TestLatency(t *testing.T) {
	s, api := start(t, bottest.Options{})
	s.SetLatency("sendMessage", 150*time.Millisecond)
	began := time.Now()
	if _, err := api.Send(tgbotapi.NewMessage(chat.ID, "x")); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 150*time.Millisecond {
		t.Fatalf("took %v", took)
	}
}

func download(t *testing.T, s *bottest.Server, filePath string) []byte {
	t.Helper()
	resp, err := http.Get(s.URL() + "/file/bot" + s.Token() + "/" + filePath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("download %s: %d %v", filePath, resp.StatusCode, err)
	}
	return b
}

func TestSendDocumentRoundTrip(t *testing.T) {
	s, api := start(t, bottest.Options{})
	data := bytes.Repeat([]byte("report\x00\xff"), 1000)
	doc := tgbotapi.NewDocument(chat.ID, tgbotapi.FileBytes{Name: "report.pdf", Bytes: data})
	doc.Caption = "<b>Your</b> report"
	doc.ParseMode = tgbotapi.ModeHTML
	m, err := api.Send(doc)
	if err != nil {
		t.Fatalf("sendDocument: %v", err)
	}
	if m.Document == nil || m.Document.FileName != "report.pdf" || m.Document.FileSize != len(data) || m.Document.MimeType != "application/pdf" || m.Caption != "Your report" {
		t.Fatalf("message = %+v, document %+v", m, m.Document)
	}
	ev, err := s.WaitFor(ctxTimeout(t, time.Second), func(e bottest.Event) bool { return e.Method == "sendDocument" })
	if err != nil || !bytes.Equal(ev.FileData, data) || ev.FileName != "report.pdf" || ev.Text != "Your report" || ev.MessageID != m.MessageID {
		t.Fatalf("event = %v, %v", ev, err)
	}
	f, err := api.GetFile(tgbotapi.FileConfig{FileID: m.Document.FileID})
	if err != nil || f.FileSize != len(data) {
		t.Fatalf("getFile: %+v, %v", f, err)
	}
	if got := download(t, s, f.FilePath); !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes, want %d", len(got), len(data))
	}
	// Resending by file_id uploads nothing and keeps the file.
	again, err := api.Send(tgbotapi.NewDocument(chat.ID, tgbotapi.FileID(m.Document.FileID)))
	if err != nil || again.Document.FileID != m.Document.FileID {
		t.Fatalf("resend by file_id: %+v, %v", again.Document, err)
	}
	_, err = api.Send(tgbotapi.NewDocument(chat.ID, tgbotapi.FileID("nope")))
	if e := apiError(t, err); e.Message != "Bad Request: wrong file identifier/HTTP URL specified" {
		t.Fatalf("unknown file_id: %q", e.Message)
	}
}

func TestUploadsOfEveryKind(t *testing.T) {
	s, api := start(t, bottest.Options{})
	voice := tgbotapi.NewVoice(chat.ID, tgbotapi.FileBytes{Name: "a.ogg", Bytes: []byte("OggS")})
	voice.Duration = 3
	if m, err := api.Send(voice); err != nil || m.Voice == nil || m.Voice.Duration != 3 || m.Voice.MimeType != "audio/ogg" {
		t.Fatalf("sendVoice: %+v, %v", m.Voice, err)
	}
	if m, err := api.Send(tgbotapi.NewPhoto(chat.ID, tgbotapi.FileBytes{Name: "p.jpg", Bytes: []byte("not really")})); err != nil || len(m.Photo) != 2 {
		t.Fatalf("sendPhoto: %+v, %v", m.Photo, err)
	}
	if m, err := api.Send(tgbotapi.NewAudio(chat.ID, tgbotapi.FileBytes{Name: "s.mp3", Bytes: []byte("ID3")})); err != nil || m.Audio == nil || m.Audio.FileName != "s.mp3" {
		t.Fatalf("sendAudio: %+v, %v", m.Audio, err)
	}
	// tgbotapi's UploadFiles drops error_code; the description still arrives.
	long := tgbotapi.NewDocument(chat.ID, tgbotapi.FileBytes{Name: "x.txt", Bytes: []byte("x")})
	long.Caption = strings.Repeat("c", 1025)
	_, err := api.Send(long)
	if e := apiError(t, err); e.Message != "Bad Request: message caption is too long" {
		t.Fatalf("long caption: %q", e.Message)
	}
	for _, method := range []string{"sendVoice", "sendPhoto", "sendAudio", "sendDocument"} {
		if n := s.Count(method); n != 1 { // the failed sendDocument counts too
			t.Fatalf("%s count = %d", method, n)
		}
	}
}

func TestUserFilesAndGetFile(t *testing.T) {
	s, api := start(t, bottest.Options{})
	photo := []byte("\xff\xd8 fake jpeg")
	s.SendPhoto(chat, ann, "look", photo)
	s.SendVoice(chat, ann, []byte("OggS voice"), 4)
	s.SendDocument(chat, ann, []byte("%PDF"), "cv.pdf", "application/pdf")
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(ups) != 3 {
		t.Fatalf("updates: %v, %v", ups, err)
	}
	p := ups[0].Message
	if len(p.Photo) != 2 || p.Caption != "look" || p.Photo[1].Width < p.Photo[0].Width {
		t.Fatalf("photo message = %+v", p)
	}
	f, err := api.GetFile(tgbotapi.FileConfig{FileID: p.Photo[1].FileID})
	if err != nil {
		t.Fatal(err)
	}
	if got := download(t, s, f.FilePath); !bytes.Equal(got, photo) {
		t.Fatalf("photo bytes = %q", got)
	}
	if v := ups[1].Message.Voice; v == nil || v.Duration != 4 || v.MimeType != "audio/ogg" {
		t.Fatalf("voice = %+v", v)
	}
	if d := ups[2].Message.Document; d == nil || d.FileName != "cv.pdf" || d.MimeType != "application/pdf" {
		t.Fatalf("document = %+v", d)
	}

	big := s.AddFileSized(25<<20, "documents/big.zip")
	_, err = api.GetFile(tgbotapi.FileConfig{FileID: big})
	if e := apiError(t, err); e.Message != "Bad Request: file is too big" {
		t.Fatalf("big file: %q", e.Message)
	}
	_, err = api.GetFile(tgbotapi.FileConfig{FileID: "nope"})
	if e := apiError(t, err); e.Message != "Bad Request: invalid file_id" {
		t.Fatalf("unknown file: %q", e.Message)
	}
	id := s.AddFile([]byte("hello"), "documents/hello.txt")
	f, err = api.GetFile(tgbotapi.FileConfig{FileID: id})
	if err != nil || f.FilePath != "documents/hello.txt" || string(download(t, s, f.FilePath)) != "hello" {
		t.Fatalf("AddFile: %+v, %v", f, err)
	}
}

func TestUserDocumentsWithCaptionAndSize(t *testing.T) {
	s, api := start(t, bottest.Options{})
	pdf := []byte("%PDF-1.4 tiny")
	s.SendDocumentCaption(chat, ann, pdf, "report.pdf", "application/pdf", "summarise this")
	s.SendDocumentSized(chat, ann, 25<<20, "huge.pdf", "application/pdf", "")
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(ups) != 2 {
		t.Fatalf("updates: %v, %v", ups, err)
	}
	m := ups[0].Message
	d := m.Document
	if d == nil || m.Caption != "summarise this" || d.FileName != "report.pdf" || d.MimeType != "application/pdf" ||
		d.FileSize != len(pdf) || d.FileID == "" || d.FileUniqueID == "" || d.FileID == d.FileUniqueID {
		t.Fatalf("document message = %+v, document %+v", m, d)
	}
	f, err := api.GetFile(tgbotapi.FileConfig{FileID: d.FileID})
	if err != nil || f.FileSize != len(pdf) || !strings.HasSuffix(f.FilePath, ".pdf") {
		t.Fatalf("getFile = %+v, %v", f, err)
	}
	if got := download(t, s, f.FilePath); !bytes.Equal(got, pdf) {
		t.Fatalf("document bytes = %q", got)
	}
	big := ups[1].Message.Document
	if big == nil || big.FileSize != 25<<20 {
		t.Fatalf("big document = %+v", big)
	}
	_, err = api.GetFile(tgbotapi.FileConfig{FileID: big.FileID})
	if e := apiError(t, err); e.Message != "Bad Request: file is too big" || e.Code != 400 {
		t.Fatalf("big document getFile: %d %q", e.Code, e.Message)
	}
}

func TestWaitFor(t *testing.T) {
	s, api := start(t, bottest.Options{})
	if _, err := api.Send(tgbotapi.NewMessage(chat.ID, "past")); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 5*time.Second)
	ev, err := s.WaitFor(ctx, func(e bottest.Event) bool { return e.Text == "past" })
	if err != nil || ev.Method != "sendMessage" || ev.ChatID != chat.ID {
		t.Fatalf("past: %v, %v", ev, err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		api.Send(tgbotapi.NewMessage(chat.ID, "future 1"))
		api.Send(tgbotapi.NewMessage(chat.ID, "future 2"))
	}()
	evs, err := s.WaitCount(ctx, 2, func(e bottest.Event) bool { return strings.HasPrefix(e.Text, "future") })
	if err != nil || evs[0].Text != "future 1" || evs[1].Text != "future 2" || evs[0].Seq >= evs[1].Seq {
		t.Fatalf("future: %v, %v", evs, err)
	}
	short := ctxTimeout(t, 50*time.Millisecond)
	_, err = s.WaitFor(short, func(e bottest.Event) bool { return e.Text == "never" })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `"future 2"`) {
		t.Fatalf("timeout error = %v", err)
	}
	if err := s.WaitCalls(ctx, "sendMessage", 3); err != nil {
		t.Fatal(err)
	}
}

func TestCallbackQuery(t *testing.T) {
	s, api := start(t, bottest.Options{})
	m, err := api.Send(withKeyboard(tgbotapi.NewMessage(chat.ID, "Continue?"), "yes", "no"))
	if err != nil {
		t.Fatal(err)
	}
	if s.PressButton(chat, ann, m.MessageID, "maybe") != 0 {
		t.Fatal("pressed a button that does not exist")
	}
	id := s.PressButton(chat, ann, m.MessageID, "yes")
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(ups) != 1 || ups[0].UpdateID != id {
		t.Fatalf("updates: %v, %v", ups, err)
	}
	cq := ups[0].CallbackQuery
	if cq == nil || cq.Data != "yes" || cq.From.ID != ann.ID || cq.Message == nil || cq.Message.MessageID != m.MessageID || cq.Message.Text != "Continue?" {
		t.Fatalf("callback = %+v", cq)
	}
	if _, err := api.Request(tgbotapi.NewCallbackWithAlert(cq.ID, "Done")); err != nil {
		t.Fatalf("answer: %v", err)
	}
	_, err = api.Request(tgbotapi.NewCallback(cq.ID, ""))
	if e := apiError(t, err); !strings.Contains(e.Message, "query is too old") {
		t.Fatalf("second answer: %q", e.Message)
	}
	ev, err := s.WaitFor(ctxTimeout(t, time.Second), func(e bottest.Event) bool { return e.Method == "answerCallbackQuery" && e.OK() })
	if err != nil || ev.CallbackID != cq.ID || ev.CallbackText != "Done" || !ev.ShowAlert {
		t.Fatalf("event = %+v, %v", ev, err)
	}

	// Invalid inline keyboards are rejected like Telegram does.
	bad := tgbotapi.NewMessage(chat.ID, "x")
	bad.ReplyMarkup = tgbotapi.NewInlineKeyboardMarkup(tgbotapi.NewInlineKeyboardRow(
		tgbotapi.NewInlineKeyboardButtonData("long", strings.Repeat("d", 65))))
	_, err = api.Send(bad)
	if e := apiError(t, err); e.Message != "Bad Request: BUTTON_DATA_INVALID" {
		t.Fatalf("65-byte callback_data: %q", e.Message)
	}
}

func TestReplyAndReplyKeyboard(t *testing.T) {
	s, api := start(t, bottest.Options{})
	ask := tgbotapi.NewMessage(chat.ID, "Share your phone")
	ask.ReplyMarkup = tgbotapi.NewReplyKeyboard(tgbotapi.NewKeyboardButtonRow(tgbotapi.NewKeyboardButtonContact("Share")))
	m, err := api.Send(ask)
	if err != nil {
		t.Fatal(err)
	}
	kb := s.ReplyKeyboard(chat.ID)
	if len(kb) != 1 || !kb[0][0].RequestContact || kb[0][0].Text != "Share" {
		t.Fatalf("reply keyboard = %+v", kb)
	}
	s.SendContact(chat, ann, "+100", ann.ID)
	id := s.SendReply(chat, ann, "answer", m.MessageID)
	if s.SendReply(chat, ann, "x", 999) != 0 {
		t.Fatal("replied to a missing message")
	}
	ups, _ := api.GetUpdates(tgbotapi.UpdateConfig{})
	if len(ups) != 2 || ups[0].Message.Contact == nil || ups[0].Message.Contact.UserID != ann.ID {
		t.Fatalf("contact update = %+v", ups)
	}
	r := ups[1].Message
	if ups[1].UpdateID != id || r.ReplyToMessage == nil || r.ReplyToMessage.MessageID != m.MessageID || r.ReplyToMessage.Text != "Share your phone" {
		t.Fatalf("reply = %+v", r)
	}
	rm := tgbotapi.NewMessage(chat.ID, "thanks")
	rm.ReplyMarkup = tgbotapi.NewRemoveKeyboard(false)
	rm.ReplyToMessageID = r.MessageID
	sent, err := api.Send(rm)
	if err != nil || sent.ReplyToMessage == nil || sent.ReplyToMessage.Text != "answer" || s.ReplyKeyboard(chat.ID) != nil {
		t.Fatalf("remove keyboard: %+v, %v", sent, err)
	}
	rm.ReplyToMessageID = 999
	_, err = api.Send(rm)
	if e := apiError(t, err); e.Message != "Bad Request: message to be replied not found" {
		t.Fatalf("reply to missing: %q", e.Message)
	}
}

func TestCommandsAndEntities(t *testing.T) {
	s, api := start(t, bottest.Options{})
	cmds := []tgbotapi.BotCommand{{Command: "start", Description: "Start"}, {Command: "help", Description: "Help"}}
	if _, err := api.Request(tgbotapi.NewSetMyCommands(cmds...)); err != nil {
		t.Fatal(err)
	}
	ru := tgbotapi.NewSetMyCommands(tgbotapi.BotCommand{Command: "start", Description: "Начать"})
	ru.LanguageCode = "ru"
	if _, err := api.Request(ru); err != nil {
		t.Fatal(err)
	}
	if got := s.Commands(""); len(got) != 2 || got[1].Command != "help" {
		t.Fatalf("default commands = %+v", got)
	}
	if got := s.Commands("ru"); len(got) != 1 || got[0].Description != "Начать" {
		t.Fatalf("ru commands = %+v", got)
	}
	_, err := api.Request(tgbotapi.NewSetMyCommands(tgbotapi.BotCommand{Command: "Bad-Cmd", Description: "x"}))
	if e := apiError(t, err); e.Message != "Bad Request: BOT_COMMAND_INVALID" {
		t.Fatalf("invalid command: %q", e.Message)
	}

	s.SendText(chat, ann, "/start@valex_bot ref_1")
	ups, _ := api.GetUpdates(tgbotapi.UpdateConfig{})
	m := ups[0].Message
	if !m.IsCommand() || m.Command() != "start" || m.CommandArguments() != "ref_1" || m.Entities[0].Length != 16 {
		t.Fatalf("command message = %+v", m)
	}
}

func TestPayments(t *testing.T) {
	s, api := start(t, bottest.Options{})
	inv := tgbotapi.NewInvoice(chat.ID, "Pro", "Pro plan for a month", "plan:pro:42", "tok", "", "USD",
		[]tgbotapi.LabeledPrice{{Label: "Pro", Amount: 500}})
	inv.SuggestedTipAmounts = []int{}
	m, err := api.Send(inv)
	if err != nil || m.Invoice == nil || m.Invoice.TotalAmount != 500 || m.Invoice.Title != "Pro" {
		t.Fatalf("sendInvoice: %+v, %v", m, err)
	}
	noProvider := inv
	noProvider.ProviderToken = ""
	_, err = api.Send(noProvider)
	if e := apiError(t, err); e.Message != "Bad Request: PAYMENT_PROVIDER_INVALID" {
		t.Fatalf("no provider: %q", e.Message)
	}
	q := s.SendPreCheckout(ann, "plan:pro:42", "USD", 500)
	ups, _ := api.GetUpdates(tgbotapi.UpdateConfig{})
	pc := ups[0].PreCheckoutQuery
	if ups[0].UpdateID != q || pc == nil || pc.InvoicePayload != "plan:pro:42" || pc.TotalAmount != 500 || pc.From.ID != ann.ID {
		t.Fatalf("pre-checkout = %+v", pc)
	}
	if _, err := api.Request(tgbotapi.PreCheckoutConfig{PreCheckoutQueryID: pc.ID, OK: true}); err != nil {
		t.Fatalf("answer: %v", err)
	}
	paid := s.SendSuccessfulPayment(chat, ann, "plan:pro:42", "USD", 500, "prov-1")
	ups, _ = api.GetUpdates(tgbotapi.UpdateConfig{Offset: q + 1})
	sp := ups[0].Message.SuccessfulPayment
	if ups[0].UpdateID != paid || sp == nil || sp.ProviderPaymentChargeID != "prov-1" || sp.TelegramPaymentChargeID == "" {
		t.Fatalf("payment = %+v", sp)
	}
}

func TestSendRawEditedMessage(t *testing.T) {
	s, api := start(t, bottest.Options{})
	id := s.SendRaw(json.RawMessage(`{"update_id": 5, "edited_message": {"message_id": 1, "date": 1, "chat": {"id": 42, "type": "private"}, "text": "fixed"}}`))
	ups, err := api.GetUpdates(tgbotapi.UpdateConfig{})
	if err != nil || len(ups) != 1 || ups[0].UpdateID != id || ups[0].EditedMessage == nil || ups[0].EditedMessage.Text != "fixed" {
		t.Fatalf("raw update: %+v, %v", ups, err)
	}
	if s.SendRaw(json.RawMessage(`not json`)) != 0 {
		t.Fatal("invalid JSON was queued")
	}
}

func TestClockAndBlocked(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s, api := start(t, bottest.Options{Clock: func() time.Time { return at }})
	m, err := api.Send(tgbotapi.NewMessage(chat.ID, "x"))
	if err != nil || int64(m.Date) != at.Unix() {
		t.Fatalf("date = %d, %v", m.Date, err)
	}
	if evs := s.Events(); !evs[len(evs)-1].At.Equal(at) {
		t.Fatalf("event time = %v", evs[len(evs)-1].At)
	}
	s.SetBlocked(chat.ID, true)
	_, err = api.Send(tgbotapi.NewMessage(chat.ID, "x"))
	if e := apiError(t, err); e.Code != 403 || e.Message != "Forbidden: bot was blocked by the user" {
		t.Fatalf("blocked: %d %q", e.Code, e.Message)
	}
}

func TestSubscribeLosesNothing(t *testing.T) {
	s, api := start(t, bottest.Options{})
	events, cancel := s.Subscribe()
	defer cancel()
	const n = 300
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < n/3; j++ {
				api.Send(tgbotapi.NewMessage(chat.ID, "x"))
			}
		}()
	}
	wg.Wait() // nobody read yet: the queue absorbed everything
	prev := 0
	for i := 0; i < n; i++ {
		e := <-events
		if e.Seq != prev+1 && prev != 0 {
			t.Fatalf("event %d has seq %d after %d", i, e.Seq, prev)
		}
		prev = e.Seq
	}
	// Message ids follow event order within the chat.
	msgs := s.Messages(chat.ID)
	for i, m := range msgs {
		if m.ID != i+1 {
			t.Fatalf("message %d has id %d", i, m.ID)
		}
	}
	cancel()
	if _, ok := <-events; ok {
		t.Fatal("channel still open after cancel")
	}
}

func TestRecordOff(t *testing.T) {
	s, api := start(t, bottest.Options{})
	s.SetRecord(false)
	for i := 0; i < 10; i++ {
		if _, err := api.Send(tgbotapi.NewMessage(chat.ID, "x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WaitCalls(ctxTimeout(t, time.Second), "sendMessage", 10); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Events()); n != 1 { // only the getMe before SetRecord
		t.Fatalf("recorded %d events", n)
	}
}

func TestCloseEndsLongPoll(t *testing.T) {
	s, api := start(t, bottest.Options{})
	done := make(chan struct{})
	go func() {
		api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 30})
		close(done)
	}()
	waitUntil(t, "the poll to block", s.Polling)
	s.Close()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("long poll survived Close")
	}
}

// BenchmarkSendMessage measures sendMessage throughput through the real
// client with recording off, as load benchmarks run it.
func BenchmarkSendMessage(b *testing.B) {
	s, err := bottest.New(bottest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.SetRecord(false)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	api, err := tgbotapi.NewBotAPIWithClient(s.Token(), s.URL()+"/bot%s/%s", hc)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8) // a bot's outbox sends from many goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cfg := tgbotapi.NewMessage(chat.ID, "Hello, <b>world</b> &amp; friends")
		cfg.ParseMode = tgbotapi.ModeHTML
		for pb.Next() {
			if _, err := api.Send(cfg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
