package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/desk"
	"github.com/valex-ai/valex/locales"
	"github.com/valex-ai/valex/privacy"
	"github.com/valex-ai/valex/store"
)

// The desk's handlers against a real store, the real router (roles,
// signed buttons), locales and outbox, with a fake clock; the outbox talks
// to the Bot API emulator, which records what each chat received.
// cmd/valex/desk_test.go runs the same flows end to end over the Bot API
// emulator.

const (
	deskUser    int64 = 501
	deskUser2   int64 = 502
	deskStaff   int64 = 601
	deskStaff2  int64 = 602
	deskAdmin   int64 = 701
	deskDayTest       = 24 * time.Hour
)

var deskT0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

type deskClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *deskClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *deskClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// deskSent is one message as a chat received it, read back from the Bot
// API emulator.
type deskSent struct {
	ID       int
	ChatID   int64
	Text     string // as the user sees it: tags stripped
	Keyboard [][]bot.Button
	Edit     bool
	File     []byte
}

// deskOut is the real outbox over the Bot API emulator; what each chat
// received is read back from the emulator's record. before runs ahead of
// every outgoing message (a test's hook into the middle of a broadcast).
type deskOut struct {
	*bot.Outbox
	emu *bottest.Server

	mu     sync.Mutex
	before func(chatID int64)
	base   int // events up to this sequence number are forgotten (reset)
}

func newDeskOut(tb testing.TB) *deskOut {
	tb.Helper()
	emu, err := bottest.New(bottest.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { emu.Close() })
	c, err := bot.NewClient(context.Background(), emu.URL(), emu.Token(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	out := bot.NewOutbox(c, bot.OutboxConfig{Pace: bot.PaceConfig{Disabled: true}}, zerolog.Nop())
	return &deskOut{Outbox: out, emu: emu}
}

func (o *deskOut) runBefore(chatID int64) {
	o.mu.Lock()
	before := o.before
	o.mu.Unlock()
	if before != nil {
		before(chatID)
	}
}

func (o *deskOut) Send(ctx context.Context, m bot.Message) (int, error) {
	o.runBefore(m.ChatID)
	return o.Outbox.Send(ctx, m)
}

func (o *deskOut) Edit(ctx context.Context, chatID int64, messageID int, text string, kb [][]bot.Button) error {
	o.runBefore(chatID)
	return o.Outbox.Edit(ctx, chatID, messageID, text, kb)
}

func (o *deskOut) SendFile(ctx context.Context, f bot.FileMessage) (int, error) {
	o.runBefore(f.ChatID)
	return o.Outbox.SendFile(ctx, f)
}

// block makes chat answer like a user who blocked the bot; missing like a
// deleted account ("chat not found").
func (o *deskOut) block(chat int64, on bool)   { o.emu.SetBlocked(chat, on) }
func (o *deskOut) missing(chat int64, on bool) { o.emu.SetChatMissing(chat, on) }

// reset forgets what was sent so far.
func (o *deskOut) reset() {
	evs := o.emu.Events()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(evs) > 0 {
		o.base = evs[len(evs)-1].Seq
	}
}

// delivered is every message that reached a chat since the last reset.
func (o *deskOut) delivered() []deskSent {
	o.mu.Lock()
	base := o.base
	o.mu.Unlock()
	var out []deskSent
	for _, e := range o.emu.Events() {
		if e.Seq <= base || !e.OK() {
			continue
		}
		switch e.Method {
		case "sendMessage", "editMessageText", "sendDocument", "sendPhoto", "sendVoice", "sendAudio":
		default:
			continue
		}
		var kb [][]bot.Button
		for _, row := range e.Keyboard {
			var r []bot.Button
			for _, b := range row {
				r = append(r, bot.Button{Text: b.Text, Data: b.Data, URL: b.URL})
			}
			kb = append(kb, r)
		}
		out = append(out, deskSent{ID: e.MessageID, ChatID: e.ChatID, Text: e.Text, Keyboard: kb,
			Edit: e.Method == "editMessageText", File: e.FileData})
	}
	return out
}

// to returns what chat got, in order.
func (o *deskOut) to(chat int64) []deskSent {
	var out []deskSent
	for _, s := range o.delivered() {
		if s.ChatID == chat {
			out = append(out, s)
		}
	}
	return out
}

func (o *deskOut) last(tb testing.TB, chat int64) deskSent {
	tb.Helper()
	all := o.to(chat)
	if len(all) == 0 {
		tb.Fatalf("nothing sent to %d", chat)
	}
	return all[len(all)-1]
}

func (o *deskOut) count() int { return len(o.delivered()) }

type deskHarness struct {
	t     testing.TB
	db    *store.DB
	out   *deskOut
	clock *deskClock
	desk  *Desk
	rt    *bot.Router
	cb    *bot.Signer
	chats []string // plain messages the desk left for the chat
	mu    sync.Mutex
}

func newDeskHarness(tb testing.TB) *deskHarness {
	tb.Helper()
	dir := tb.TempDir()
	keys, err := store.OpenKeys(filepath.Join(dir, "keys.db"), make([]byte, store.MasterKeyLen), store.KeysOptions{Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "valex.db"), store.Options{Codec: keys})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close(); keys.Close() })
	tr, err := locales.Load()
	if err != nil {
		tb.Fatal(err)
	}
	x := &deskHarness{t: tb, db: db, out: newDeskOut(tb),
		clock: &deskClock{t: deskT0}, cb: bot.NewSigner([]byte("desk-test"))}
	h := &Handlers{Users: db, Out: x.out, Tr: tr, CB: x.cb, Clock: x.clock,
		Roles: Roles{Admins: map[int64]bool{deskAdmin: true}, Support: map[int64]bool{deskStaff: true, deskStaff2: true}},
		Log:   zerolog.Nop()}
	x.desk = &Desk{Handlers: h, Store: db, Files: x.out, SLA: valex.DefaultSLAPolicy(),
		Policy: PolicyInfo{Version: "2025-01", URL: "https://valex-ai.io/privacy", SupportURL: "https://t.me/supprtbots"},
		Eraser: &privacy.Eraser{Store: db, Keys: keys, Log: zerolog.Nop()}}
	x.desk.Service = &desk.Service{Store: db, Tickets: db, Roster: h.Roles.Roster(), Eraser: x.desk.Eraser, Clock: x.clock,
		SLA: x.desk.SLA, Log: zerolog.Nop()}
	x.desk.Service.Notify = x.desk.Notifier()
	x.rt = bot.NewRouter(x.cb)
	x.rt.UseDialogs(bot.DialogConfig{Store: db, Clock: x.clock, Ended: h.DialogEnded})
	x.desk.Register(x.rt)
	// As main wires it: the desk's middleware first, then whoever
	// handles text (here a stand-in for the chat) and the profile screen.
	x.rt.Use(x.desk.Intercept)
	x.rt.Use(x.desk.RetryBreaches)
	x.rt.Callback(cbProfile, valex.RoleUser, h.ProfileButton)
	x.rt.Dialog(dialogProfileField, valex.RoleUser, h.ProfileAnswer, bot.DialogOptions{Buttons: []bot.CallbackRoute{cbProfile}})
	x.rt.Command("cancel", valex.RoleUser, "cmd.cancel", h.Cancel)
	x.rt.On(bot.KindText, func(ctx context.Context, r *bot.Request) error {
		x.mu.Lock()
		x.chats = append(x.chats, r.Text)
		x.mu.Unlock()
		return nil
	})
	for _, id := range []int64{deskUser, deskUser2, deskStaff, deskStaff2, deskAdmin} {
		if err := db.PutUser(valex.User{ID: id, Nickname: fmt.Sprintf("nick%d", id), Language: "en", CreatedAt: deskT0, LastActiveAt: deskT0}); err != nil {
			tb.Fatal(err)
		}
	}
	return x
}

func (x *deskHarness) role(id int64) valex.Role { return x.desk.Roles.Of(id) }

// breachForm fills in /breach's form as admin up to the audience question,
// and answers that too unless audience is "".
func (x *deskHarness) breachForm(admin int64, nature, audience string) {
	x.t.Helper()
	x.cmd(admin, "breach", nature)
	answers := []string{"email addresses", "about 3", "phishing emails", "passwords reset", "-"}
	if audience != "" {
		answers = append(answers, audience)
	}
	for _, a := range answers {
		if err := x.text(admin, a, 0); err != nil {
			x.t.Fatalf("breach form answer %q: %v", a, err)
		}
	}
}

// handle routes a request like the bot does and returns the handler's error.
func (x *deskHarness) handle(r *bot.Request) error {
	r.Lang = "en"
	r.Role = x.role(r.From.ID)
	if r.ChatType == "" {
		r.ChatType = bot.ChatPrivate
	}
	if r.ChatID == 0 {
		r.ChatID = r.From.ID
	}
	return x.rt.Handle(context.Background(), r)
}

// cmd runs /name args as id and fails the test on an error.
func (x *deskHarness) cmd(id int64, name, args string) {
	x.t.Helper()
	if err := x.cmdErr(id, name, args); err != nil {
		x.t.Fatalf("/%s %s as %d: %v", name, args, id, err)
	}
}

func (x *deskHarness) cmdErr(id int64, name, args string) error {
	return x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCommand, From: bot.From{ID: id}, Command: name, Args: args}})
}

// text sends a plain message; replyTo is a bot message id or 0.
func (x *deskHarness) text(id int64, text string, replyTo int) error {
	return x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindText, From: bot.From{ID: id}, Text: text,
		ReplyTo: replyTo, ReplyToBot: replyTo != 0}})
}

// press presses the button labelled label on the latest message to id
// that has one.
func (x *deskHarness) press(id int64, label string) error {
	x.t.Helper()
	msgs := x.out.to(id)
	for i := len(msgs) - 1; i >= 0; i-- {
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, label) && b.Data != "" {
					return x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCallback, From: bot.From{ID: id},
						MessageID: msgs[i].ID, CallbackData: b.Data}})
				}
			}
		}
	}
	x.t.Fatalf("no button %q for %d", label, id)
	return nil
}

// hasButton reports whether the latest message to id with a keyboard has
// a button labelled label.
func (x *deskHarness) hasButton(id int64, label string) bool {
	msgs := x.out.to(id)
	for i := len(msgs) - 1; i >= 0; i-- {
		if len(msgs[i].Keyboard) == 0 {
			continue
		}
		for _, row := range msgs[i].Keyboard {
			for _, b := range row {
				if strings.Contains(b.Text, label) {
					return true
				}
			}
		}
		return false
	}
	return false
}

func (x *deskHarness) mustPress(id int64, label string) {
	x.t.Helper()
	if err := x.press(id, label); err != nil {
		x.t.Fatalf("press %q as %d: %v", label, id, err)
	}
}

func userErrKey(err error) string {
	if ue, ok := valex.AsUserError(err); ok {
		return ue.Key
	}
	return fmt.Sprint(err)
}

func wantText(tb testing.TB, s deskSent, want ...string) {
	tb.Helper()
	for _, w := range want {
		if !strings.Contains(s.Text, w) {
			tb.Fatalf("message to %d is %q, want it to contain %q", s.ChatID, s.Text, w)
		}
	}
}

// onlyTicket returns the user's single ticket.
func (x *deskHarness) onlyTicket(user int64) valex.Request {
	x.t.Helper()
	ts, err := x.db.UserTickets(user)
	if err != nil || len(ts) != 1 {
		x.t.Fatalf("tickets of %d = %+v, %v", user, ts, err)
	}
	return ts[0]
}

func TestSupportTicketStaffFlow(t *testing.T) {
	x := newDeskHarness(t)
	x.cmd(deskUser, "support", "my invoice is wrong, order-Xy7")
	tk := x.onlyTicket(deskUser)
	if tk.Kind != valex.KindSupport || tk.Text != "my invoice is wrong, order-Xy7" || !tk.DueAt.Equal(deskT0.Add(30*deskDayTest)) {
		t.Fatalf("ticket = %+v", tk)
	}
	wantText(t, x.out.last(t, deskUser), fmt.Sprintf("#%d", tk.ID), "2026-02-04")
	// Every staff member hears of it; the text stays in the ticket.
	for _, s := range []int64{deskStaff, deskStaff2, deskAdmin} {
		m := x.out.last(t, s)
		wantText(t, m, fmt.Sprintf("#%d", tk.ID), "support")
		if strings.Contains(m.Text, "order-Xy7") {
			t.Errorf("new-ticket alert carries the text: %q", m.Text)
		}
	}

	// Staff see it in /requests and open it.
	x.clock.Add(2 * deskDayTest)
	x.cmd(deskStaff, "requests", "")
	wantText(t, x.out.last(t, deskStaff), "Open requests: 1", fmt.Sprintf("#%d", tk.ID), "28 days left", "received 2 days ago", "unassigned")
	x.mustPress(deskStaff, fmt.Sprintf("#%d", tk.ID))
	wantText(t, x.out.last(t, deskStaff), "order-Xy7", "nick501", "Due: 2026-02-04")
	x.mustPress(deskStaff, "Take it")
	if got, _ := x.db.Ticket(tk.ID); got.Status != valex.StatusInProgress || got.AssigneeID != deskStaff {
		t.Fatalf("after take: %+v", got)
	}
	wantText(t, x.out.last(t, deskUser), fmt.Sprintf("Request #%d", tk.ID), "in progress", "Due 2026-02-04")

	// Reply: the next message of the staff member goes to the user.
	x.mustPress(deskStaff, "Reply")
	if err := x.text(deskStaff, "Which order number exactly?", 0); err != nil {
		t.Fatal(err)
	}
	relay := x.out.last(t, deskUser)
	wantText(t, relay, "Which order number exactly?", fmt.Sprintf("#%d", tk.ID))
	if got, _ := x.db.Ticket(tk.ID); got.Status != valex.StatusWaitingUser || len(got.Messages) != 1 || !got.Messages[0].FromStaff {
		t.Fatalf("after reply: %+v", got)
	}
	if st, _ := x.db.State(deskStaff); st != "" {
		t.Fatalf("staff dialog left: %q", st)
	}
	// The user answers by replying to the relayed message: back to staff.
	if err := x.text(deskUser, "It is order 7781", relay.ID); err != nil {
		t.Fatal(err)
	}
	wantText(t, x.out.last(t, deskUser), "Added to request", "in progress")
	wantText(t, x.out.last(t, deskStaff), "It is order 7781")
	if len(x.out.to(deskStaff2)) != 1 {
		t.Errorf("the user's message reached staff who do not have the ticket")
	}
	// While the ticket is back with staff, a plain message that is not a
	// reply to a ticket message is the chat's.
	if err := x.text(deskUser, "what is the capital of France?", 0); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(x.chats, []string{"what is the capital of France?"}) {
		t.Fatalf("chat got %q", x.chats)
	}
	// And the staff member can answer with a Telegram reply too.
	if err := x.text(deskStaff, "Fixed it.", x.out.last(t, deskStaff).ID); err != nil {
		t.Fatal(err)
	}
	wantText(t, x.out.last(t, deskUser), "Fixed it.")
	got, _ := x.db.Ticket(tk.ID)
	if len(got.Messages) != 3 || got.Messages[1].Text != "It is order 7781" || got.Messages[1].FromStaff || got.Messages[2].Text != "Fixed it." {
		t.Fatalf("thread = %+v", got.Messages)
	}
	// Now the ticket waits for the user. A plain message is still the
	// chat's (a private question never reaches staff by accident); a reply
	// to the staff's message joins the ticket, and the user is told so.
	if err := x.text(deskUser, "what about my other order?", 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.db.Ticket(tk.ID); len(got.Messages) != 3 || len(x.chats) != 2 {
		t.Fatalf("a plain message joined the waiting ticket: %+v, chat %q", got.Messages, x.chats)
	}
	if err := x.text(deskUser, "Thanks!", x.out.last(t, deskUser).ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.db.Ticket(tk.ID); len(got.Messages) != 4 || got.Status != valex.StatusInProgress || len(x.chats) != 2 {
		t.Fatalf("reply while waiting: %+v, chat %q", got, x.chats)
	}
	wantText(t, x.out.last(t, deskUser), "Added to request")

	// Extend: once, with a reason; the user is told the new date.
	x.mustPress(deskStaff, "Extend")
	if err := x.text(deskStaff, "10 waiting for the payment provider", 0); err != nil {
		t.Fatal(err)
	}
	wantText(t, x.out.last(t, deskUser), "2026-02-14", "waiting for the payment provider", "2026-02-04")
	if err := x.cmdErr(deskStaff, "extend", fmt.Sprintf("%d 5 again", tk.ID)); userErrKey(err) != "desk.already_extended" {
		t.Fatalf("second extension: %v", err)
	}
	// Reject: a reason is required.
	if err := x.cmdErr(deskStaff, "reject", fmt.Sprint(tk.ID)); userErrKey(err) != "desk.reason_required" {
		t.Fatalf("rejection without a reason: %v", err)
	}
	x.mustPress(deskStaff, "Reject")
	if err := x.text(deskStaff, "   ", 0); userErrKey(err) != "desk.reason_required" {
		t.Fatalf("blank reason: %v", err)
	}
	if st, _ := x.db.State(deskStaff); st == "" {
		t.Fatal("the reject dialog ended on a blank reason")
	}
	if err := x.text(deskStaff, "not an invoice of ours", 0); err != nil {
		t.Fatal(err)
	}
	wantText(t, x.out.last(t, deskUser), "refused", "not an invoice of ours", "supervisory authority")
	if got, _ := x.db.Ticket(tk.ID); got.Status != valex.StatusRejected || got.RejectReason != "not an invoice of ours" {
		t.Fatalf("after reject: %+v", got)
	}
	// Closed: no more replies, no more list entry.
	if err := x.text(deskUser, "but why?", relay.ID); userErrKey(err) != "desk.closed_reply" {
		t.Fatalf("reply to a closed ticket: %v", err)
	}
	x.cmd(deskStaff, "requests", "")
	wantText(t, x.out.last(t, deskStaff), "Open requests: 0")

	// Every step is in the audit trail, which verifies.
	rep, err := x.db.VerifyAudit()
	if err != nil || !rep.OK() || rep.Entries < 8 {
		t.Fatalf("audit: %+v, %v", rep, err)
	}
}

func TestStaffCommandsRefusePlainUsers(t *testing.T) {
	x := newDeskHarness(t)
	x.cmd(deskUser, "support", "hello")
	tk := x.onlyTicket(deskUser)
	for _, c := range []string{"requests", "request", "extend", "reject", "hold", "policy_update", "breach", "marketing"} {
		err := x.cmdErr(deskUser, c, fmt.Sprintf("%d reason", tk.ID))
		if k := userErrKey(err); k != "error.staff_only" && k != "error.admin_only" {
			t.Errorf("/%s as a user: %v", c, err)
		}
	}
	// A forged-free but foreign button: staff buttons check the role too.
	data := x.cb.Data("tk", "take", fmt.Sprint(tk.ID))
	err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCallback, From: bot.From{ID: deskUser}, CallbackData: data}})
	if userErrKey(err) != "error.staff_only" {
		t.Fatalf("staff button pressed by a user: %v", err)
	}
	if got, _ := x.db.Ticket(tk.ID); got.AssigneeID != 0 {
		t.Fatal("a user took a ticket")
	}
	// Support staff may not broadcast.
	if err := x.cmdErr(deskStaff, "marketing", "buy now"); userErrKey(err) != "error.admin_only" {
		t.Fatalf("/marketing as support: %v", err)
	}
}

func TestDeskRefusesGroups(t *testing.T) {
	x := newDeskHarness(t)
	for _, c := range []string{"privacy", "mydata", "forget", "consent", "support"} {
		err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCommand, From: bot.From{ID: deskUser}, ChatID: -100, ChatType: bot.ChatGroup, Command: c, Args: "x"}})
		if userErrKey(err) != "error.private_only" { // the router keeps every personal screen out of groups
			t.Errorf("/%s in a group: %v", c, err)
		}
	}
	if n := x.out.count(); n != 0 {
		t.Fatalf("%d messages sent for group commands", n)
	}
	// A pending desk question is not answered from a group.
	x.cmd(deskUser, "support", "")
	err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindText, From: bot.From{ID: deskUser}, ChatID: -100,
		ChatType: bot.ChatGroup, Text: "my secret problem", Mentioned: true}})
	if err != nil || len(x.chats) != 1 {
		t.Fatalf("group message: %v, chat got %q", err, x.chats)
	}
	if ts, _ := x.db.UserTickets(deskUser); len(ts) != 0 {
		t.Fatal("a group message became a ticket")
	}
}

// The SLA rules on a fake clock, through the handlers: reminders at 7, 3
// and 1 days and when overdue, each exactly once, to the assignee or every
// staff member; a reminder that reaches nobody is tried again.
func TestRemindersOnFakeClock(t *testing.T) {
	x := newDeskHarness(t)
	// With nothing open, the digest stays quiet.
	if sent, err := x.desk.Service.SendDigest(context.Background()); sent != 0 || err != nil || x.out.count() != 0 {
		t.Fatalf("empty digest: sent %d, %v", sent, err)
	}
	x.cmd(deskUser, "support", "one")
	x.cmd(deskUser2, "support", "two")
	t1, t2 := x.onlyTicket(deskUser), x.onlyTicket(deskUser2)
	if _, err := x.db.UpdateTicket(t2.ID, deskStaff2, deskT0, func(r *valex.Request) ([]valex.AuditEntry, error) {
		r.AssigneeID = deskStaff2
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	pass := func() (visited, sent int) {
		t.Helper()
		v, s, err := x.desk.Service.Reminders(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return v, s
	}
	before := map[int64]int{deskStaff: len(x.out.to(deskStaff)), deskStaff2: len(x.out.to(deskStaff2)), deskAdmin: len(x.out.to(deskAdmin))}
	if v, s := pass(); v != 0 || s != 0 {
		t.Fatalf("day 0: visited %d, sent %d", v, s)
	}
	x.clock.Add(23 * deskDayTest) // 7 days before due
	if v, s := pass(); v != 2 || s != 2 {
		t.Fatalf("7 days before: visited %d, sent %d", v, s)
	}
	if v, s := pass(); v != 2 || s != 0 {
		t.Fatalf("7 days before, again: visited %d, sent %d", v, s)
	}
	// Unassigned t1 went to every staff member, t2 to its assignee only.
	wantText(t, x.out.last(t, deskAdmin), fmt.Sprintf("#%d", t1.ID), "7 days left")
	if got := len(x.out.to(deskStaff)) - before[deskStaff]; got != 1 {
		t.Errorf("staff %d got %d reminders, want 1", deskStaff, got)
	}
	if got := len(x.out.to(deskStaff2)) - before[deskStaff2]; got != 2 {
		t.Errorf("staff %d got %d reminders, want 2 (t1 and its own t2)", deskStaff2, got)
	}

	// Nobody reachable: the 3-day reminder of t2 is kept for the next pass.
	x.clock.Add(4 * deskDayTest)
	x.out.mu.Lock()
	x.out.block(deskStaff2, true)
	x.out.mu.Unlock()
	if _, _, err := x.desk.Service.Reminders(context.Background()); err == nil || !strings.Contains(err.Error(), "reached no staff") {
		t.Fatalf("undeliverable reminder: %v", err)
	}
	x.out.mu.Lock()
	x.out.block(deskStaff2, false)
	x.out.mu.Unlock()
	if _, s := pass(); s != 1 {
		t.Fatalf("retry sent %d, want 1", s)
	}
	wantText(t, x.out.last(t, deskStaff2), fmt.Sprintf("#%d", t2.ID), "3 days left")
	x.clock.Add(3*deskDayTest + time.Minute) // overdue
	if _, s := pass(); s != 2 {
		t.Fatalf("overdue sent %d, want 2", s)
	}
	wantText(t, x.out.last(t, deskStaff2), "overdue", "overdue by 1 day")
	// Each reminder is in the audit trail exactly once.
	trail, _ := x.db.Audit(t2.ID)
	var reminded []string
	for _, e := range trail {
		if e.Action == valex.AuditReminded {
			reminded = append(reminded, e.Detail[:strings.Index(e.Detail, "@")])
		}
	}
	if !slices.Equal(reminded, []string{"d7", "d3", "overdue"}) {
		t.Fatalf("reminders in the audit = %v", reminded)
	}

	// /requests puts the overdue first and marks them.
	x.cmd(deskStaff, "requests", "")
	wantText(t, x.out.last(t, deskStaff), "⚠️", "overdue by 1 day")
	// The digest names both, with the counts.
	x.clock.Add(time.Hour)
	if _, err := x.desk.Service.SendDigest(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantText(t, x.out.last(t, deskStaff2), "2 open requests, 2 overdue", fmt.Sprintf("#%d", t2.ID), "yours")
}

func TestExtensionRules(t *testing.T) {
	x := newDeskHarness(t)
	x.cmd(deskUser, "support", "slow one")
	tk := x.onlyTicket(deskUser)
	tests := []struct {
		args string
		want string
	}{
		{fmt.Sprintf("%d 90 too far", tk.ID), "desk.extend_too_far"},
		{fmt.Sprintf("%d 0 zero", tk.ID), "desk.bad_days"},
		{fmt.Sprintf("%d", tk.ID), "desk.reason_required"},
		{"x12 why", "desk.bad_id"},
		{"999 why", "desk.no_such_ticket"},
	}
	for _, tt := range tests {
		if err := x.cmdErr(deskStaff, "extend", tt.args); userErrKey(err) != tt.want {
			t.Errorf("/extend %s: %v, want %s", tt.args, err, tt.want)
		}
	}
	x.cmd(deskStaff, "extend", fmt.Sprintf("%d complex case", tk.ID)) // default 30 days
	if got, _ := x.db.Ticket(tk.ID); !got.DueAt.Equal(tk.DueAt.Add(30*deskDayTest)) || got.ExtendReason != "complex case" {
		t.Fatalf("after extension: %+v", got)
	}
	// After the original deadline nothing can be extended, even unextended.
	x.cmd(deskUser2, "support", "late one")
	t2 := x.onlyTicket(deskUser2)
	x.clock.Add(31 * deskDayTest)
	if err := x.cmdErr(deskStaff, "extend", fmt.Sprintf("%d 5 late", t2.ID)); userErrKey(err) != "desk.extend_too_late" {
		t.Fatalf("extension after the deadline: %v", err)
	}
}

// The marketing consent is read for each user right before their message:
// a withdrawal made while the broadcast runs is honoured.
func TestMarketingChecksConsentAtSendTime(t *testing.T) {
	x := newDeskHarness(t)
	// One worker: users are served in id order, so the withdrawal made
	// while the first is served comes before the second one's check.
	x.desk.Service.Broadcasts.Workers = 1
	for _, u := range []int64{deskUser, deskUser2, deskStaff} {
		x.cmd(u, "consent", "")
		x.mustPress(u, "Get news")
	}
	var once sync.Once
	x.out.mu.Lock()
	x.out.before = func(chat int64) {
		if chat == deskUser { // while the first recipient is served, the second withdraws
			once.Do(func() {
				if err := x.db.AddConsent(valex.ConsentEvent{UserID: deskUser2, Kind: valex.ConsentMarketing, At: x.clock.Now(), PolicyVersion: "2025-01"}); err != nil {
					t.Error(err)
				}
			})
		}
	}
	x.out.mu.Unlock()
	x.cmd(deskAdmin, "marketing", "Spring sale <b>50%</b>")
	wantText(t, x.out.last(t, deskAdmin), "Preview", "to 3 users", "Spring sale <b>50%</b>")
	x.mustPress(deskAdmin, "Send")
	x.desk.Wait()
	wantText(t, x.out.last(t, deskUser), "Spring sale <b>50%</b>", "/consent")
	wantText(t, x.out.last(t, deskAdmin), "2 delivered", "0 blocked", "0 failed", "3 skipped")
	for _, u := range []int64{deskUser2, deskAdmin} {
		for _, m := range x.out.to(u) {
			if strings.Contains(m.Text, "Spring sale") && !strings.Contains(m.Text, "Preview") {
				t.Errorf("%d got the marketing message", u)
			}
		}
	}
	n, err := x.db.Notice(1)
	if err != nil {
		t.Fatal(err)
	}
	// deskUser2 withdrew, deskAdmin and deskStaff2 never opted in; deskStaff
	// was served after the withdrawal too.
	if n.Totals[valex.DeliveryDelivered] != 2 || n.Totals[valex.DeliverySkipped] != 3 || n.FinishedAt.IsZero() {
		t.Fatalf("totals = %+v", n.Totals)
	}
}

func TestBreachNoticeDeliveries(t *testing.T) {
	x := newDeskHarness(t)
	x.out.block(deskUser2, true)
	x.out.missing(deskStaff, true)
	x.breachForm(deskAdmin, "Your email may have leaked.", "")
	if err := x.text(deskAdmin, "1,x", 0); userErrKey(err) != "notice.bad_ids" {
		t.Fatalf("bad ids: %v", err)
	}
	if err := x.text(deskAdmin, fmt.Sprintf("%d,%d,%d,999", deskUser, deskUser2, deskStaff), 0); err != nil {
		t.Fatal(err)
	}
	wantText(t, x.out.last(t, deskAdmin), "Preview", "to 3 users", "1 of the listed ids have no account", "Your email may have leaked.",
		"Likely consequences: phishing emails", "What we are doing: passwords reset", "Where to ask: https://t.me/supprtbots")
	x.desk.Wait()
	if len(x.out.to(deskUser)) != 0 {
		t.Fatal("the breach notice went out before Send")
	}
	x.mustPress(deskAdmin, "Send")
	x.desk.Wait()
	wantText(t, x.out.last(t, deskUser), "security incident", "Your email may have leaked.")
	if len(x.out.to(deskStaff2)) != 0 {
		t.Fatal("a user outside the list got the breach notice")
	}
	ds, err := x.db.Deliveries(1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]valex.DeliveryStatus{}
	for _, d := range ds {
		got[d.UserID] = d.Status
	}
	want := map[int64]valex.DeliveryStatus{deskUser: valex.DeliveryDelivered, deskUser2: valex.DeliveryBlocked,
		deskStaff: valex.DeliveryFailed} // 999 has no account: nothing is recorded about it
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deliveries = %v, want %v", got, want)
	}
	wantText(t, x.out.last(t, deskAdmin), "1 delivered, 1 blocked the bot, 1 failed")

	// A stop mid-way leaves the notice unfinished; resuming skips who has it
	// and retries who failed.
	x.out.missing(deskStaff, false)
	n, _ := x.db.CreateNotice(valex.Notice{Kind: valex.NoticeBreach, Text: "again", UserIDs: []int64{deskUser, deskStaff}, CreatedAt: x.clock.Now(), CreatedBy: deskAdmin})
	if err := x.db.RecordDelivery(valex.Delivery{NoticeID: n.ID, UserID: deskUser, Status: valex.DeliveryDelivered, At: x.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	before := len(x.out.to(deskUser))
	if err := x.desk.Service.ResumeBroadcasts(context.Background()); err != nil {
		t.Fatal(err)
	}
	x.desk.Wait()
	if len(x.out.to(deskUser)) != before {
		t.Error("resume sent the notice twice")
	}
	wantText(t, x.out.last(t, deskStaff), "again")
	if n, _ = x.db.Notice(n.ID); n.FinishedAt.IsZero() || n.Totals[valex.DeliveryDelivered] != 2 {
		t.Fatalf("resumed notice = %+v", n)
	}
}

func TestPolicyUpdate(t *testing.T) {
	x := newDeskHarness(t)
	for _, bad := range []string{"two words", "abc", "2026-", "v2", "2026--02"} {
		if err := x.cmdErr(deskAdmin, "policy_update", bad); userErrKey(err) != "notice.bad_version" {
			t.Fatalf("bad version %q: %v", bad, err)
		}
	}
	x.cmd(deskAdmin, "policy_update", "2026-02")
	wantText(t, x.out.last(t, deskAdmin), "Preview", "to 5 users", "version 2026-02")
	if x.desk.PolicyVersion() == "2026-02" || len(x.out.to(deskUser)) != 0 {
		t.Fatal("the version was published before Send")
	}
	preview := x.out.last(t, deskAdmin)
	x.mustPress(deskAdmin, "Send")
	x.desk.Wait()
	// Send again on the same preview (a double tap, a replayed update):
	// nothing more goes out.
	if err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCallback, From: bot.From{ID: deskAdmin}, MessageID: preview.ID,
		CallbackData: preview.Keyboard[0][0].Data}}); userErrKey(err) != "notice.draft_gone" {
		t.Fatalf("second Send: %v", err)
	}
	// Not newer: refused.
	for _, old := range []string{"2026-02", "2026-01", "2025-12"} {
		if err := x.cmdErr(deskAdmin, "policy_update", old); userErrKey(err) != "notice.version_not_newer" {
			t.Fatalf("version %s after 2026-02: %v", old, err)
		}
	}
	// Cancel drops the draft.
	x.cmd(deskAdmin, "policy_update", "2026-10")
	x.mustPress(deskAdmin, "Cancel")
	wantText(t, x.out.last(t, deskAdmin), "not sent")
	if x.desk.PolicyVersion() != "2026-02" {
		t.Fatalf("a cancelled version was published: %q", x.desk.PolicyVersion())
	}
	for _, u := range []int64{deskUser, deskUser2, deskStaff, deskStaff2, deskAdmin} {
		found := false
		for _, m := range x.out.to(u) {
			found = found || strings.Contains(m.Text, "version 2026-02")
		}
		if !found {
			t.Errorf("%d was not told about the policy update", u)
		}
	}
	// Consents given from now on carry the new version.
	x.cmd(deskUser, "consent", "")
	x.mustPress(deskUser, "Get news")
	cs, _, _ := x.db.ConsentEvents(deskUser)
	if len(cs) != 1 || cs[0].PolicyVersion != "2026-02" || !cs[0].At.Equal(deskT0) {
		t.Fatalf("consent = %+v", cs)
	}
	if x.desk.PolicyVersion() != "2026-02" {
		t.Fatalf("PolicyVersion = %q", x.desk.PolicyVersion())
	}
}

func TestConsentTogglesAreRecordedAndTicketed(t *testing.T) {
	x := newDeskHarness(t)
	x.cmd(deskUser, "consent", "")
	wantText(t, x.out.last(t, deskUser), "not given", "allowed")
	x.mustPress(deskUser, "Allow AI providers")
	wantText(t, x.out.last(t, deskUser), "given on 2026-01-05 (policy 2025-01)")
	x.clock.Add(time.Hour)
	x.mustPress(deskUser, "Withdraw consent: AI providers") // a withdrawal is a rights request
	wantText(t, x.out.last(t, deskUser), "consent withdrawal", "complete")
	x.mustPress(deskUser, "Stop AI processing")    // restriction
	x.mustPress(deskUser, "Object to analytics")   // objection
	x.mustPress(deskUser, "Allow analytics again") // lifting is no request
	st, err := x.db.ConsentState(deskUser)
	if err != nil || st.Granted(valex.ConsentAITransfer) || !st.Restricted(valex.RestrictAI) || st.Restricted(valex.RestrictAnalytics) {
		t.Fatalf("state = %+v, %v", st, err)
	}
	cs, rs, _ := x.db.ConsentEvents(deskUser)
	if len(cs) != 2 || len(rs) != 3 || rs[0].PolicyVersion != "2025-01" || !cs[1].At.Equal(deskT0.Add(time.Hour)) {
		t.Fatalf("events = %+v %+v", cs, rs)
	}
	ts, _ := x.db.UserTickets(deskUser)
	var kinds []valex.RequestKind
	for _, tk := range ts {
		if tk.Status != valex.StatusDone {
			t.Errorf("ticket %d is %s", tk.ID, tk.Status)
		}
		kinds = append(kinds, tk.Kind)
	}
	if !slices.Equal(kinds, []valex.RequestKind{valex.KindConsentWithdrawal, valex.KindRestriction, valex.KindObjection}) {
		t.Fatalf("tickets = %v", kinds)
	}
	// An old button pressed again changes nothing.
	n := len(cs) + len(rs)
	if err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCallback, From: bot.From{ID: deskUser}, MessageID: 1,
		CallbackData: x.cb.Data("cs", "r", "restrict_ai", "1")}}); err != nil {
		t.Fatal(err)
	}
	if cs, rs, _ := x.db.ConsentEvents(deskUser); len(cs)+len(rs) != n {
		t.Fatal("a repeated toggle recorded an event")
	}
}

// /mydata: the export holds every category, with the sections other
// features register, and the ticket records what was sent.
func TestMyDataExport(t *testing.T) {
	x := newDeskHarness(t)
	x.desk.Export = []ExportSection{func(userID int64) (map[string]any, map[string]int, error) {
		return map[string]any{"conversations": []string{fmt.Sprintf("turn of %d", userID), "another"}},
			map[string]int{"conversations": 2}, nil
	}}
	x.cmd(deskUser, "support", "ticket-Qq1")
	x.cmd(deskUser2, "support", "ticket-of-the-other")
	x.cmd(deskUser, "mydata", "")
	var file deskSent
	for _, m := range x.out.to(deskUser) {
		if m.File != nil {
			file = m
		}
	}
	var doc struct {
		Format     string                     `json:"format"`
		TelegramID int64                      `json:"telegram_id"`
		RequestID  uint64                     `json:"request_id"`
		Counts     map[string]int             `json:"counts"`
		Data       map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(file.File, &doc); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	if doc.Format != exportFormat || doc.TelegramID != deskUser || doc.Counts["conversations"] != 2 || doc.Counts["requests"] != 2 {
		t.Fatalf("export header = %+v", doc)
	}
	if !strings.Contains(string(file.File), "ticket-Qq1") || strings.Contains(string(file.File), "ticket-of-the-other") ||
		!strings.Contains(string(file.File), "turn of 501") {
		t.Fatalf("export content wrong:\n%s", file.File)
	}
	summary := x.out.last(t, deskUser)
	wantText(t, summary, fmt.Sprintf("#%d", doc.RequestID), "complete", "2 requests to us", "2 AI conversation items")
	tk, _ := x.db.Ticket(doc.RequestID)
	if tk.Kind != valex.KindAccess || tk.Status != valex.StatusDone || !strings.Contains(tk.Resolution, "conversations=2") {
		t.Fatalf("access ticket = %+v", tk)
	}
	trail, _ := x.db.Audit(tk.ID)
	found := false
	for _, e := range trail {
		if e.Action == valex.AuditExported {
			found = strings.Contains(e.Detail, "requests=2") && !strings.Contains(e.Detail, "Qq1")
		}
	}
	if !found {
		t.Fatalf("no export audit entry with counts: %+v", trail)
	}
}

func TestForgetErasesAfterConfirmation(t *testing.T) {
	x := newDeskHarness(t)
	x.cmd(deskUser, "support", "ticket-Zz9")
	turns := make([]valex.Turn, 4)
	for i := range turns {
		turns[i] = valex.Turn{Role: valex.TurnUser, Text: "q", At: deskT0}
	}
	if err := x.db.SaveExchange(deskUser, 1, turns, nil); err != nil {
		t.Fatal(err)
	}
	x.cmd(deskUser, "forget", "")
	wantText(t, x.out.last(t, deskUser), "Delete your account?", "5 years", "Kept")
	x.mustPress(deskUser, "No, keep")
	if _, err := x.db.User(deskUser); err != nil {
		t.Fatal("declined erasure deleted the user")
	}
	x.cmd(deskUser, "forget", "")
	x.mustPress(deskUser, "Yes, delete")
	// The support ticket and the erasure request itself.
	wantText(t, x.out.last(t, deskUser), "account is deleted", "4 AI conversation items", "2 requests to us")
	if _, err := x.db.User(deskUser); err == nil {
		t.Fatal("user still there")
	}
	if turns, _, _ := x.db.RecentTurns(deskUser, 1, 1000, 0); len(turns) != 0 {
		t.Fatalf("%d turns left", len(turns))
	}
	if ts, _ := x.db.UserTickets(deskUser); len(ts) != 0 {
		t.Fatalf("tickets still linked to the user: %+v", ts)
	}
	if rep, err := x.db.VerifyAudit(); err != nil || !rep.OK() {
		t.Fatalf("audit after erasure: %+v %v", rep, err)
	}
}

// A legal hold stops the erasure: the request waits for staff, the user is
// told why, and staff can finish it once the hold is lifted.
func TestForgetUnderLegalHold(t *testing.T) {
	x := newDeskHarness(t)
	for args, key := range map[string]string{
		"424242 lawsuit":     "desk.no_such_user", // no such account
		fmt.Sprint(deskUser): "desk.hold_reason_required",
		"abc lawsuit":        "desk.bad_user_id",
	} {
		if err := x.cmdErr(deskAdmin, "hold", args); userErrKey(err) != key {
			t.Fatalf("/hold %s: %v, want %s", args, err, key)
		}
	}
	if err := x.cmdErr(deskAdmin, "unhold", fmt.Sprint(deskUser)); userErrKey(err) != "desk.not_held" {
		t.Fatalf("/unhold with no hold: %v", err)
	}
	x.cmd(deskAdmin, "hold", fmt.Sprint(deskUser)+" court order 12/2026")
	if err := x.cmdErr(deskAdmin, "hold", fmt.Sprint(deskUser)+" again"); userErrKey(err) != "desk.already_held" {
		t.Fatalf("a second hold: %v", err)
	}
	x.cmd(deskUser, "forget", "")
	x.mustPress(deskUser, "Yes, delete")
	wantText(t, x.out.last(t, deskUser), "legal hold", "2026-02-04")
	tk := x.onlyTicket(deskUser)
	if tk.Kind != valex.KindErasure || tk.Status != valex.StatusOnHold {
		t.Fatalf("erasure ticket = %+v", tk)
	}
	if _, err := x.db.User(deskUser); err != nil {
		t.Fatal("held account erased")
	}
	wantText(t, x.out.last(t, deskStaff), fmt.Sprintf("#%d", tk.ID), "deletion")

	x.cmd(deskStaff, "request", fmt.Sprint(tk.ID))
	if x.hasButton(deskStaff, "Complete") {
		t.Fatal("a request on hold has a Complete button")
	}
	x.mustPress(deskStaff, "Resume")
	x.mustPress(deskStaff, "Complete")
	wantText(t, x.out.last(t, deskStaff), "cannot be undone")
	if err := x.press(deskStaff, "Yes, complete"); userErrKey(err) != "desk.erase_still_held" {
		t.Fatalf("complete under hold: %v", err)
	}
	x.cmd(deskAdmin, "unhold", fmt.Sprint(deskUser))
	// One tap on Complete erases nothing: it asks first.
	x.mustPress(deskStaff, "Complete")
	if _, err := x.db.User(deskUser); err != nil {
		t.Fatal("Complete erased the account without the confirmation")
	}
	x.mustPress(deskStaff, "Yes, complete")
	wantText(t, x.out.last(t, deskUser), "account is deleted")
	if _, err := x.db.User(deskUser); err == nil {
		t.Fatal("account not erased after the hold was lifted")
	}
	got, _ := x.db.Ticket(tk.ID)
	if got.Status != valex.StatusDone || got.UserID != 0 {
		t.Fatalf("erasure ticket after completion = %+v", got)
	}
	confirmed := false
	for _, c := range got.History {
		confirmed = confirmed || (c.Action == valex.ActionConfirmErasure && c.By == deskStaff)
	}
	if !confirmed {
		t.Fatalf("the history does not say who confirmed the erasure: %+v", got.History)
	}
}

// A ticket on hold (a dispute) holds the whole account.
func TestForgetBlockedByDisputedTicket(t *testing.T) {
	x := newDeskHarness(t)
	x.cmd(deskUser, "support", "I dispute this charge")
	tk := x.onlyTicket(deskUser)
	x.cmd(deskStaff, "request", fmt.Sprint(tk.ID))
	x.mustPress(deskStaff, "Take")
	x.mustPress(deskStaff, "Put on hold")
	wantText(t, x.out.last(t, deskStaff), "reason for putting request")
	if err := x.text(deskStaff, "  ", 0); userErrKey(err) != "desk.reason_required" {
		t.Fatalf("a hold without a reason: %v", err)
	}
	if err := x.text(deskStaff, "chargeback dispute open", 0); err != nil {
		t.Fatal(err)
	}
	wantText(t, x.out.last(t, deskUser), "on hold")
	got, _ := x.db.Ticket(tk.ID)
	var steps []string
	for _, c := range got.History {
		steps = append(steps, fmt.Sprintf("%s:%d:%s", c.Action+string(c.To), c.By, c.Note))
	}
	want := []string{fmt.Sprintf("takenew:%d:", deskStaff), fmt.Sprintf("in_progress:%d:", deskStaff), fmt.Sprintf("on_hold:%d:chargeback dispute open", deskStaff)}
	if !slices.Equal(steps, want) {
		t.Fatalf("history = %q, want %q", steps, want)
	}
	x.cmd(deskStaff, "request", fmt.Sprint(tk.ID))
	wantText(t, x.out.last(t, deskStaff), "taken (", "chargeback dispute open")
	x.cmd(deskUser, "forget", "")
	x.mustPress(deskUser, "Yes, delete")
	wantText(t, x.out.last(t, deskUser), "legal hold")
	if _, err := x.db.User(deskUser); err != nil {
		t.Fatal("account erased despite a disputed ticket")
	}
}

// Each right on /privacy leads where it should.
func TestPrivacyMenu(t *testing.T) {
	x := newDeskHarness(t)
	x.cmd(deskUser, "privacy", "")
	menu := x.out.last(t, deskUser)
	wantText(t, menu, "version 2025-01", "https://valex-ai.io/privacy", "Profile: 1 field", "30 calendar days")
	x.mustPress(deskUser, "Correct my data")
	tk := x.onlyTicket(deskUser)
	if tk.Kind != valex.KindRectification || tk.Status != valex.StatusWaitingUser {
		t.Fatalf("rectification ticket = %+v", tk)
	}
	rectifyMsg := x.out.to(deskUser)[len(x.out.to(deskUser))-2]
	wantText(t, rectifyMsg, "Describe it in your next message")
	wantText(t, x.out.last(t, deskUser), "Your profile")
	// The profile prompt replaces the ticket's prompt.
	x.mustPress(deskUser, "City")
	if err := x.text(deskUser, "Berlin", 0); err != nil {
		t.Fatal(err)
	}
	if u, _ := x.db.User(deskUser); u.City != "Berlin" {
		t.Fatalf("city = %q", u.City)
	}
	if got, _ := x.db.Ticket(tk.ID); len(got.Messages) != 0 {
		t.Fatal("the profile answer went to the ticket")
	}
	// With the ticket's prompt gone, the description joins as a reply to
	// the ticket's message.
	if err := x.text(deskUser, "My name is spelled wrong in an old invoice", rectifyMsg.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.db.Ticket(tk.ID); len(got.Messages) != 1 || got.Status != valex.StatusInProgress {
		t.Fatalf("rectification after the user's message = %+v", got)
	}
	x.mustPress(deskUser, "Personal Data request")
	if err := x.text(deskUser, "Which data did you share with OpenAI?", 0); err != nil {
		t.Fatal(err)
	}
	ts, _ := x.db.UserTickets(deskUser)
	if last := ts[len(ts)-1]; last.Kind != valex.KindPersonalData || last.Text != "Which data did you share with OpenAI?" {
		t.Fatalf("personal data ticket = %+v", last)
	}
	x.mustPress(deskUser, "Restrict or object")
	wantText(t, x.out.last(t, deskUser), "Restrictions and objections")
	x.mustPress(deskUser, "Consents")
	wantText(t, x.out.last(t, deskUser), "Your consents")
	x.mustPress(deskUser, "Copy of my data")
	if x.out.to(deskUser)[len(x.out.to(deskUser))-2].File == nil {
		t.Fatal("no export file")
	}
	x.mustPress(deskUser, "Delete my account")
	wantText(t, x.out.last(t, deskUser), "Delete your account?")
}

func TestSupportPersonalDataSubject(t *testing.T) {
	tests := []struct {
		in       string
		kind     valex.RequestKind
		wantText string
	}{
		{"Personal Data: delete my phone", valex.KindPersonalData, "delete my phone"},
		{"personal data — what do you keep?", valex.KindPersonalData, "what do you keep?"},
		{"Персональные данные: удалите мой телефон", valex.KindPersonalData, "удалите мой телефон"},
		{"my payment failed", valex.KindSupport, "my payment failed"},
	}
	x := newDeskHarness(t)
	for _, tt := range tests {
		k, text := x.desk.classify(tt.in)
		if k != tt.kind || text != tt.wantText {
			t.Errorf("classify(%q) = %s %q", tt.in, k, text)
		}
	}
	x.cmd(deskUser, "support", "Personal Data")
	wantText(t, x.out.last(t, deskUser), "Describe your Personal Data request")
	if err := x.text(deskUser, strings.Repeat("x", valex.MaxRequestTextLen+1), 0); userErrKey(err) != "desk.too_long" {
		t.Fatalf("too long: %v", err)
	}
	if err := x.text(deskUser, "which data do you hold?", 0); err != nil {
		t.Fatal(err)
	}
	if tk := x.onlyTicket(deskUser); tk.Kind != valex.KindPersonalData || tk.Text != "which data do you hold?" {
		t.Fatalf("ticket = %+v", tk)
	}
	x.cmd(deskUser2, "feedback", "Love it")
	if tk := x.onlyTicket(deskUser2); tk.Kind != valex.KindFeedback {
		t.Fatalf("feedback ticket = %+v", tk)
	}
}

func TestRequestsPagingAndFilters(t *testing.T) {
	x := newDeskHarness(t)
	for i := range 23 {
		x.clock.Add(time.Hour)
		kind := "support"
		if i%5 == 0 {
			kind = "feedback"
		}
		x.cmd(deskUser, kind, fmt.Sprintf("ticket %d", i))
	}
	x.cmd(deskStaff, "requests", "")
	first := x.out.last(t, deskStaff)
	wantText(t, first, "Open requests: 23", "page 1 of 3", "#1 ", "received 22 hours ago", "ticket 0", "feedback · new · no deadline")
	x.cmd(deskStaff, "request", "2")
	x.mustPress(deskStaff, "Take")
	wantText(t, x.out.last(t, deskStaff), "nick601 (601)") // staff by their Telegram first name
	x.cmd(deskStaff, "requests", "")
	first = x.out.last(t, deskStaff)
	wantText(t, first, "your")
	x.mustPress(deskStaff, "Next")
	wantText(t, x.out.last(t, deskStaff), "page 2 of 3", "#11 ")
	// Every kind and status is one tap away.
	if !x.hasButton(deskStaff, "copy of data") || !x.hasButton(deskStaff, "waiting for a reply") || !x.hasButton(deskStaff, "• All kinds") {
		t.Fatal("the list lacks a one-tap filter per kind and status")
	}
	x.mustPress(deskStaff, "support")
	wantText(t, x.out.last(t, deskStaff), "Kind: support", "Open requests: 18", "ticket 1")
	x.mustPress(deskStaff, "feedback")
	wantText(t, x.out.last(t, deskStaff), "Kind: feedback", "Open requests: 5", "page 1 of 1")
	x.mustPress(deskStaff, "new")
	wantText(t, x.out.last(t, deskStaff), "status: new", "Open requests: 5")
	x.mustPress(deskStaff, "in progress")
	wantText(t, x.out.last(t, deskStaff), "status: in progress", "Open requests: 0", "No open requests match")
	x.mustPress(deskStaff, "All statuses")
	x.mustPress(deskStaff, "All kinds")
	wantText(t, x.out.last(t, deskStaff), "Open requests: 23")
	// A tampered page number is refused, a page past the end shows the last.
	if err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCallback, From: bot.From{ID: deskStaff},
		MessageID: first.ID, CallbackData: x.cb.Data("rq", "99", "-", "-")}}); err != nil {
		t.Fatal(err)
	}
	wantText(t, x.out.last(t, deskStaff), "page 3 of 3")
	if err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCallback, From: bot.From{ID: deskStaff},
		MessageID: first.ID, CallbackData: x.cb.Data("rq", "0", "bogus", "-")}}); userErrKey(err) != "error.bad_callback" {
		t.Fatalf("bad filter: %v", err)
	}
}

// BenchmarkRequestsPage renders /requests pages over 10,000 open tickets:
// the store's index read plus the text and buttons, through the router.
func BenchmarkRequestsPage(b *testing.B) {
	x := newDeskHarness(b)
	kinds := valex.RequestKinds
	for i := range 500 { // the store takes tickets only from users with an account
		if _, _, err := x.db.EnsureUser(valex.User{ID: int64(1000 + i), Language: "en"}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 10_000 {
		r, err := valex.NewRequest(kinds[i%len(kinds)], int64(1000+i%500), "text", deskT0.Add(time.Duration(i)*time.Minute), x.desk.SLA)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := x.db.CreateTicket(r); err != nil {
			b.Fatal(err)
		}
	}
	x.clock.Add(40 * deskDayTest) // some overdue, some not
	for _, page := range []int{0, 500} {
		b.Run(fmt.Sprintf("page_%d", page), func(b *testing.B) {
			// Each run (-count) pages through a message of its own: the
			// recorder is reset after every run.
			x.cmd(deskStaff, "requests", "")
			msgID := x.out.last(b, deskStaff).ID
			data := x.cb.Data("rq", fmt.Sprint(page), "-", "-")
			for b.Loop() {
				err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCallback, From: bot.From{ID: deskStaff}, MessageID: msgID, CallbackData: data}})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if m := x.out.last(b, deskStaff); !strings.Contains(m.Text, "Open requests: 10000") {
				b.Fatalf("page = %q", m.Text)
			}
			x.out.reset()
		})
	}
}

// BenchmarkMyData is a whole /mydata for a user with 100 tickets of 100
// messages each (10,000 stored messages): ticket, export, JSON, upload
// (recorded), completion and summary.
func BenchmarkMyData(b *testing.B) {
	x := newDeskHarness(b)
	for i := range 100 {
		r, err := valex.NewRequest(valex.KindSupport, deskUser, fmt.Sprintf("ticket %d", i), deskT0, x.desk.SLA)
		if err != nil {
			b.Fatal(err)
		}
		for j := range 100 {
			r.Messages = append(r.Messages, valex.RequestMessage{At: deskT0, FromStaff: j%2 == 1, AuthorID: deskUser,
				Text: fmt.Sprintf("message %d of ticket %d, with a sentence or two of ordinary length to export", j, i)})
		}
		if _, err := x.db.CreateTicket(r); err != nil {
			b.Fatal(err)
		}
	}
	var size int
	for b.Loop() {
		x.cmd(deskUser, "mydata", "")
		b.StopTimer()
		all := x.out.to(deskUser)
		size = len(all[len(all)-2].File)
		x.out.reset()
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/1e6, "MB/export")
}

// An access request that cannot be answered at once stays open for staff.
func TestMyDataFailureLeavesTicketForStaff(t *testing.T) {
	x := newDeskHarness(t)
	x.desk.Export = []ExportSection{func(int64) (map[string]any, map[string]int, error) {
		return nil, nil, fmt.Errorf("conversations store unavailable")
	}}
	if err := x.cmdErr(deskUser, "mydata", ""); err == nil {
		t.Fatal("a failed export reported success")
	}
	tk := x.onlyTicket(deskUser)
	if tk.Kind != valex.KindAccess || tk.Status != valex.StatusNew {
		t.Fatalf("access ticket = %+v", tk)
	}
	wantText(t, x.out.last(t, deskStaff), fmt.Sprintf("#%d", tk.ID), "copy of data")
	for _, m := range x.out.to(deskUser) {
		if m.File != nil {
			t.Fatal("a file went out")
		}
	}
}

// Every category /privacy and /mydata name has its wording in every
// language (a missing one would show its key).
func TestKnownCategoriesHaveWording(t *testing.T) {
	tr, err := locales.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(knownCategories, "cat_other", "cat_none") {
		key := "privacy.cat." + c
		if strings.HasPrefix(c, "cat_") {
			key = "privacy." + c
		}
		for _, lang := range tr.Languages() {
			if !tr.Has(lang, key) {
				t.Errorf("%s: no %s", lang, key)
			}
		}
	}
	// And the store's categories are all known.
	for _, c := range []string{store.CategoryProfile, store.CategorySettings, store.CategoryConsents, store.CategoryRestrictions,
		store.CategoryRequests, store.CategoryMessages, store.CategoryAudit, store.CategoryNotices,
		store.CategoryConversations, store.CategoryAISettings, store.CategoryAIUsage} {
		if !slices.Contains(knownCategories, c) {
			t.Errorf("store category %s has no wording", c)
		}
	}
}

// Feedback is not a privacy request: no deadline in what the user is told,
// no staff alert, no deadline reminders, and a refusal without the data
// protection authority.
func TestFeedbackIsNotAPrivacyRequest(t *testing.T) {
	x := newDeskHarness(t)
	staffBefore := len(x.out.to(deskStaff))
	x.cmd(deskUser, "feedback", "the dark theme is great")
	thanks := x.out.last(t, deskUser)
	wantText(t, thanks, "Thank you", "feedback")
	if strings.Contains(thanks.Text, "answer by") || strings.Contains(thanks.Text, "2026-02-04") {
		t.Fatalf("feedback got a deadline: %q", thanks.Text)
	}
	if n := len(x.out.to(deskStaff)); n != staffBefore {
		t.Fatalf("staff were alerted about feedback (%d messages)", n-staffBefore)
	}
	tk := x.onlyTicket(deskUser)
	x.clock.Add(29 * 24 * time.Hour) // the reminders of a 30-day deadline would fire now
	if _, sent, err := x.desk.Service.Reminders(context.Background()); err != nil || sent != 0 {
		t.Fatalf("reminders about feedback: %d, %v", sent, err)
	}
	x.cmd(deskStaff, "reject", fmt.Sprintf("%d not something we plan", tk.ID))
	refusal := x.out.last(t, deskUser)
	wantText(t, refusal, "closed without action", "not something we plan")
	if strings.Contains(refusal.Text, "supervisory authority") {
		t.Fatalf("a refused feedback points to the data protection authority: %q", refusal.Text)
	}

	// A support request still runs against its deadline.
	x.cmd(deskUser, "support", "my invoice is wrong")
	wantText(t, x.out.last(t, deskUser), "answer by")
}

// Staff see the requester's profile from a correction request and correct
// a field: the user is told, the history and the audit trail name the
// field and the staff member, never the value.
func TestStaffCorrectsAFieldFromARectificationRequest(t *testing.T) {
	x := newDeskHarness(t)
	x.cmd(deskUser, "privacy", "")
	x.mustPress(deskUser, "Correct my data")
	tk := x.onlyTicket(deskUser)
	x.cmd(deskStaff, "request", fmt.Sprint(tk.ID))
	x.mustPress(deskStaff, "Requester's profile")
	wantText(t, x.out.last(t, deskStaff), "requester's profile", "nick501")
	x.mustPress(deskStaff, "Correct: City")
	wantText(t, x.out.last(t, deskStaff), "corrected value of City")
	if err := x.text(deskStaff, "Zq-Corrected-City", 0); err != nil {
		t.Fatal(err)
	}
	if u, _ := x.db.User(deskUser); u.City != "Zq-Corrected-City" {
		t.Fatalf("city = %q", u.City)
	}
	wantText(t, x.out.last(t, deskUser), "corrected", "City", "/profile")
	got, _ := x.db.Ticket(tk.ID)
	last := got.History[len(got.History)-1]
	if last.Action != valex.ActionCorrected+":city" || last.By != deskStaff {
		t.Fatalf("history = %+v", got.History)
	}
	trail, err := x.db.Audit(tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range trail {
		if strings.Contains(e.Detail, "Zq-Corrected") {
			t.Fatalf("the audit trail holds the value: %+v", e)
		}
		found = found || (e.Action == valex.AuditCorrected && e.Detail == "field=city" && e.Actor == deskStaff)
	}
	if !found {
		t.Fatalf("no audit entry for the correction: %+v", trail)
	}
	// A support ticket has no profile button, and a forged one is refused.
	x.cmd(deskUser2, "support", "hello")
	other := x.onlyTicket(deskUser2)
	if err := x.handle(&bot.Request{Update: &bot.Update{Kind: bot.KindCallback, From: bot.From{ID: deskStaff}, MessageID: 1,
		CallbackData: x.cb.Data("tk", "fix-city", fmt.Sprint(other.ID))}}); userErrKey(err) != "error.bad_callback" {
		t.Fatalf("correcting a support ticket's user: %v", err)
	}
}

// A breach incident from the form: its two notification deadlines, the
// admins' reminders (each once, at 12 h before and when overdue), marking
// each authority told (audited), and a user who had blocked the bot getting
// the notice when they come back.
func TestBreachIncidentDeadlinesAndReminders(t *testing.T) {
	x := newDeskHarness(t)
	x.out.block(deskUser2, true)
	x.breachForm(deskAdmin, "A laptop with an export was stolen.", "all")
	wantText(t, x.out.last(t, deskAdmin), "Preview", "to 5 users")
	x.mustPress(deskAdmin, "Send")
	x.desk.Wait()
	var status deskSent
	for _, m := range x.out.to(deskAdmin) {
		if strings.Contains(m.Text, "Breach incident #1") {
			status = m
		}
	}
	wantText(t, status, "Breach incident #1", "2026-01-06 09:00 UTC", "2026-01-08 09:00 UTC", "email addresses", "about 3")
	wantText(t, x.out.last(t, deskUser), "What happened: A laptop with an export was stolen.")
	n, err := x.db.Notice(1)
	if err != nil || n.Breach == nil || !n.Breach.DetectedAt.Equal(deskT0) {
		t.Fatalf("incident = %+v, %v", n, err)
	}

	reminders := func(at time.Duration) int {
		t.Helper()
		x.clock.t = deskT0.Add(at)
		before := len(x.out.to(deskAdmin))
		if _, err := x.desk.Service.IncidentReminderJob(context.Background()); err != nil {
			t.Fatal(err)
		}
		return len(x.out.to(deskAdmin)) - before
	}
	if got := reminders(11*time.Hour + 59*time.Minute); got != 0 {
		t.Fatalf("%d reminders 12 h+ before the 24 h deadline", got)
	}
	if got := reminders(12 * time.Hour); got != 1 {
		t.Fatalf("%d reminders 12 h before the 24 h deadline, want 1", got)
	}
	wantText(t, x.out.last(t, deskAdmin), "Roskomnadzor", "is due 2026-01-06 09:00 UTC")
	if got := reminders(13 * time.Hour); got != 0 {
		t.Fatalf("the reminder was sent again (%d)", got)
	}
	if got := reminders(24*time.Hour + time.Second); got != 1 {
		t.Fatalf("%d overdue reminders, want 1", got)
	}
	wantText(t, x.out.last(t, deskAdmin), "was due")
	x.mustPress(deskAdmin, "Roskomnadzor told")
	wantText(t, x.out.last(t, deskAdmin), "✅ Roskomnadzor")
	if got := reminders(60 * time.Hour); got != 1 {
		t.Fatalf("%d reminders 12 h before the 72 h deadline, want 1", got)
	}
	x.mustPress(deskAdmin, "Authority told")
	if got := reminders(100 * time.Hour); got != 0 {
		t.Fatalf("%d reminders after both were told", got)
	}
	if open, _, _ := x.db.OpenIncidents(); len(open) != 0 {
		t.Fatalf("open incidents after both notifications: %d", len(open))
	}
	trail, _ := x.db.Audit(valex.SystemTrail)
	told := 0
	for _, e := range trail {
		if e.Action == valex.AuditIncidentNotified && e.Actor == deskAdmin {
			told++
		}
	}
	if told != 2 {
		t.Fatalf("%d audited notifications, want 2", told)
	}

	// deskUser2 had blocked the bot: the notice waits for them.
	if ds, _ := x.db.Deliveries(1); !slices.ContainsFunc(ds, func(d valex.Delivery) bool {
		return d.UserID == deskUser2 && d.Status == valex.DeliveryBlocked
	}) {
		t.Fatalf("deliveries = %+v", ds)
	}
	x.out.block(deskUser2, false)
	x.cmd(deskUser2, "privacy", "")
	found := false
	for _, m := range x.out.to(deskUser2) {
		found = found || strings.Contains(m.Text, "A laptop with an export was stolen.")
	}
	if !found {
		t.Fatal("the user back from blocking the bot did not get the breach notice")
	}
	if ds, _ := x.db.Deliveries(1); !slices.ContainsFunc(ds, func(d valex.Delivery) bool {
		return d.UserID == deskUser2 && d.Status == valex.DeliveryDelivered
	}) {
		t.Fatalf("the retried delivery is not recorded: %+v", ds)
	}
	before := len(x.out.to(deskUser2))
	x.cmd(deskUser2, "privacy", "")
	if got := len(x.out.to(deskUser2)) - before; got != 1 {
		t.Fatalf("the notice was sent again (%d messages for one /privacy)", got)
	}
}
