package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot/bottest"
)

// The privacy desk end to end: the real Main over the Bot API emulator.

// startDesk starts the app with the desk, as the role-matrix users know it.
func startDesk(t *testing.T) *app {
	t.Helper()
	a := startApp(t, nil)
	for _, u := range []bottest.User{alice, boris, support, admin} {
		a.say(u, "/start")
	}
	return a
}

// waitText waits for a successful message to chat after seq whose text
// contains want.
func (a *app) waitText(chatID int64, seq int, want string) bottest.Event {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := a.emu.WaitFor(ctx, func(e bottest.Event) bool {
		return e.Seq > seq && e.OK() && e.ChatID == chatID && strings.Contains(e.Text, want)
	})
	if err != nil {
		a.t.Fatalf("waiting for %q in chat %d: %v", want, chatID, err)
	}
	return e
}

// lastTo is the latest successful message (sent or edited) to chat.
func (a *app) lastTo(chatID int64) bottest.Event {
	a.t.Helper()
	evs := a.emu.EventsFor(chatID)
	for i := len(evs) - 1; i >= 0; i-- {
		if e := evs[i]; e.OK() && (e.Method == "sendMessage" || e.Method == "editMessageText") {
			return e
		}
	}
	a.t.Fatalf("no message to chat %d", chatID)
	return bottest.Event{}
}

// breach fills in /breach's form as admin u: what happened, then stock
// answers, then the audience ("all" or ids); the preview is the last message.
func (a *app) breach(u bottest.User, nature, audience string) bottest.Event {
	a.t.Helper()
	a.say(u, "/breach "+nature)
	for _, answer := range []string{"email addresses", "about 2", "phishing attempts", "sessions revoked", "-"} {
		a.say(u, answer)
	}
	return a.say(u, audience)
}

func (a *app) tickets(u bottest.User) []valex.Request {
	a.t.Helper()
	ts, err := a.m.DB.UserTickets(u.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	return ts
}

// exportOf runs /mydata as u and returns the JSON document sent.
func (a *app) exportOf(u bottest.User) (map[string]json.RawMessage, map[string]int, []byte) {
	a.t.Helper()
	seq := a.lastSeq()
	summary := a.say(u, "/mydata")
	contains(a.t, summary, "is complete", "everything we store about you")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	doc, err := a.emu.WaitFor(ctx, func(e bottest.Event) bool {
		return e.Seq > seq && e.OK() && e.Method == "sendDocument" && e.ChatID == u.ID
	})
	if err != nil {
		a.t.Fatal(err)
	}
	var parsed struct {
		TelegramID int64                      `json:"telegram_id"`
		Counts     map[string]int             `json:"counts"`
		Data       map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(doc.FileData, &parsed); err != nil {
		a.t.Fatalf("export is not JSON: %v", err)
	}
	if parsed.TelegramID != u.ID || !strings.HasSuffix(doc.FileName, ".json") {
		a.t.Fatalf("export of %d names %d, file %q", u.ID, parsed.TelegramID, doc.FileName)
	}
	return parsed.Data, parsed.Counts, doc.FileData
}

// Every right is one tap from /privacy, and each leaves a ticket of its kind.
func TestDeskEachRightFromPrivacy(t *testing.T) {
	a := startDesk(t)
	menu := a.say(alice, "/privacy")
	contains(t, menu, "Your privacy", "version 1", "https://valex-ai.io", "What we store about you", "Profile: 1 field", "30 calendar days")

	// Access: the export arrives as a document.
	seq := a.lastSeq()
	contains(t, a.press(alice, "Copy of my data"), "everything we store about you")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.emu.WaitFor(ctx, func(e bottest.Event) bool { return e.Seq > seq && e.OK() && e.Method == "sendDocument" }); err != nil {
		t.Fatalf("no export document: %v", err)
	}

	// Rectification: a ticket, and the profile editor.
	a.press(alice, "Correct my data")
	contains(t, a.lastTo(alice.ID), "Your profile")
	contains(t, a.say(alice, "My surname is misspelled"), "Added to request", "in progress")

	// Restriction and objection take effect at once; withdrawing consent is as easy as giving it.
	a.say(alice, "/privacy")
	contains(t, a.press(alice, "Restrict or object"), "Restrictions and objections")
	a.press(alice, "Stop AI processing")
	a.press(alice, "Object to analytics")
	a.say(alice, "/privacy")
	contains(t, a.press(alice, "Consents"), "Your consents")
	a.press(alice, "Get news")
	a.press(alice, "Withdraw consent: news")
	st, err := a.m.DB.ConsentState(alice.ID)
	if err != nil || !st.Restricted(valex.RestrictAI) || !st.Restricted(valex.RestrictAnalytics) || st.Granted(valex.ConsentMarketing) {
		t.Fatalf("consent state = %+v, %v", st, err)
	}
	cs, _, _ := a.m.DB.ConsentEvents(alice.ID)
	if len(cs) != 2 || cs[0].PolicyVersion != "1" || cs[0].At.IsZero() {
		t.Fatalf("consent events = %+v", cs)
	}

	// A free-text "Personal Data" request.
	a.say(alice, "/privacy")
	contains(t, a.press(alice, "Personal Data request"), "Describe your Personal Data request")
	contains(t, a.say(alice, "Who did you share my email with?"), "is registered", "We'll answer by")

	kinds := map[valex.RequestKind]valex.RequestStatus{}
	for _, tk := range a.tickets(alice) {
		kinds[tk.Kind] = tk.Status
	}
	want := map[valex.RequestKind]valex.RequestStatus{
		valex.KindAccess: valex.StatusDone, valex.KindRectification: valex.StatusInProgress,
		valex.KindRestriction: valex.StatusDone, valex.KindObjection: valex.StatusDone,
		valex.KindConsentWithdrawal: valex.StatusDone, valex.KindPersonalData: valex.StatusNew,
	}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("tickets = %v, want %v", kinds, want)
	}

	// Erasure, after a confirmation that says what goes and what stays.
	a.say(alice, "/privacy")
	contains(t, a.press(alice, "Delete my account"), "Delete your account?", "payment records", "5 years")
	contains(t, a.press(alice, "Yes, delete everything"), "your account is deleted")
	if _, err := a.m.DB.User(alice.ID); err == nil {
		t.Fatal("alice is still registered")
	}
	if ts := a.tickets(alice); len(ts) != 0 {
		t.Fatalf("tickets still linked to alice: %d", len(ts))
	}
	contains(t, a.say(alice, "/privacy"), "/start")
	if rep, err := a.m.DB.VerifyAudit(); err != nil || !rep.OK() {
		t.Fatalf("audit: %+v %v", rep, err)
	}
	if strings.Contains(a.log.String(), "misspelled") || strings.Contains(a.log.String(), "share my email") {
		t.Fatal("ticket text in the log")
	}
}

// /mydata holds every category stored for the user and nothing of another.
func TestDeskMyDataExport(t *testing.T) {
	a := startDesk(t)
	// Seed alice: profile, consents, a restriction, a ticket with a thread,
	// a notice. Boris gets the same kinds of things, marked as his.
	a.say(alice, "/profile")
	a.press(alice, "City")
	a.say(alice, "Berlin")
	a.say(alice, "/consent")
	a.press(alice, "Get news")
	a.press(alice, "Object to analytics")
	a.say(alice, "/support alice-ticket-Kq3 my invoice")
	a.say(boris, "/support boris-ticket-Pw8 где мой счёт")
	a.say(boris, "/consent")
	a.press(boris, "Получать новости")
	tk := a.tickets(alice)[1] // [0] is the objection
	a.say(support, fmt.Sprintf("/request %d", tk.ID))
	a.press(support, "Reply")
	a.say(support, "staff-answer-Mm2 which invoice?")
	relay := a.lastTo(alice.ID)
	seq := a.lastSeq()
	a.emu.SendReply(bottest.PrivateChat(alice), alice, "alice-reply-Ns5 the March one", relay.MessageID)
	a.waitText(support.ID, seq, "alice-reply-Ns5")
	a.idle()
	seq = a.lastSeq()
	contains(t, a.say(admin, "/policy_update 2"), "Preview")
	a.press(admin, "Send")
	a.waitText(admin.ID, seq, "delivered,")

	data, counts, raw := a.exportOf(alice)
	for _, c := range []string{"profile", "settings", "consents", "restrictions", "requests", "request_messages", "audit", "notices"} {
		if counts[c] == 0 {
			t.Errorf("category %s is empty in the export (counts %v)", c, counts)
		}
		if _, ok := data[c]; !ok && c != "request_messages" {
			t.Errorf("category %s missing from the export", c)
		}
	}
	for _, s := range []string{"Berlin", "alice-ticket-Kq3", "staff-answer-Mm2", "alice-reply-Ns5", "marketing", "restrict_analytics", "policy_update", `"policy_version": "1"`} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("export lacks %q", s)
		}
	}
	for _, s := range []string{"boris", "Pw8", fmt.Sprint(boris.ID), fmt.Sprint(support.ID)} {
		if strings.Contains(string(raw), s) {
			t.Errorf("export of alice contains %q", s)
		}
	}
	for _, s := range []string{"Kq3", "Mm2", "Ns5", "Pw8"} {
		if strings.Contains(a.log.String(), s) {
			t.Errorf("log contains message text %q", s)
		}
	}
}

// A staff reply reaches the user and the user's answer reaches staff; the
// deadline moves once; a refusal needs a reason and says where to complain.
func TestDeskStaffReplyRelayedBothWays(t *testing.T) {
	a := startDesk(t)
	opened := a.say(alice, "/support Personal Data: please correct my email")
	contains(t, opened, "is registered", "Personal Data")
	tk := a.tickets(alice)[0]
	if tk.Kind != valex.KindPersonalData || tk.Text != "please correct my email" {
		t.Fatalf("ticket = %+v", tk)
	}
	contains(t, a.lastTo(support.ID), fmt.Sprintf("#%d", tk.ID))

	list := a.say(support, "/requests")
	// Due in 30 days less the moments since: 29 whole days left.
	contains(t, list, "Open requests: 1", fmt.Sprintf("#%d", tk.ID), "Personal Data", "30 days left", "received within the hour", "unassigned")
	contains(t, a.press(support, fmt.Sprintf("#%d", tk.ID)), "please correct my email", "alice")
	a.press(support, "Take it")
	contains(t, a.lastTo(alice.ID), "in progress")
	a.press(support, "Reply")
	seq := a.lastSeq()
	contains(t, a.say(support, "Which address should we use?"), "Sent to the user")
	relay := a.waitText(alice.ID, seq, "Which address should we use?")

	seq = a.lastSeq()
	a.emu.SendReply(bottest.PrivateChat(alice), alice, "new@example.org please", relay.MessageID)
	staffSide := a.waitText(support.ID, seq, "new@example.org please")
	a.idle()
	// Staff answer by replying to the relayed message as well.
	seq = a.lastSeq()
	a.emu.SendReply(bottest.PrivateChat(support), support, "Done, updated.", staffSide.MessageID)
	a.waitText(alice.ID, seq, "Done, updated.")
	a.idle()
	got, _ := a.m.DB.Ticket(tk.ID)
	if len(got.Messages) != 3 || got.Messages[1].Text != "new@example.org please" || got.Messages[1].FromStaff || !got.Messages[2].FromStaff {
		t.Fatalf("thread = %+v", got.Messages)
	}

	// Extension: once, with a reason; the user is told the new date.
	a.say(support, fmt.Sprintf("/request %d", tk.ID))
	a.press(support, "Extend")
	seq = a.lastSeq()
	contains(t, a.say(support, "14 we need the payment provider's records"), "is now due")
	newDue := valex.FormatDate(tk.DueAt.Add(14 * 24 * time.Hour))
	contains(t, a.waitText(alice.ID, seq, "new deadline"), newDue, "payment provider")
	contains(t, a.say(support, fmt.Sprintf("/extend %d 5 more", tk.ID)), "already been extended once")

	// Rejection: refused without a reason, sent with one.
	contains(t, a.say(support, fmt.Sprintf("/reject %d", tk.ID)), "A reason is required")
	if got, _ := a.m.DB.Ticket(tk.ID); !got.Status.Open() {
		t.Fatal("rejected without a reason")
	}
	seq = a.lastSeq()
	contains(t, a.say(support, fmt.Sprintf("/reject %d we cannot verify the address", tk.ID)), "refused")
	contains(t, a.waitText(alice.ID, seq, "was refused"), "we cannot verify the address", "supervisory authority")
	contains(t, a.say(support, "/requests"), "Open requests: 0")

	// The trail names every step, in categories only, and verifies.
	trail, _ := a.m.DB.Audit(tk.ID)
	var actions []string
	for _, e := range trail {
		actions = append(actions, e.Action)
		if strings.Contains(e.Detail, "example.org") || strings.Contains(e.Detail, "verify") {
			t.Errorf("audit detail carries text: %q", e.Detail)
		}
	}
	for _, want := range []string{"created", "assigned", "replied", "message", "extended", "status"} {
		if !strings.Contains(strings.Join(actions, ","), want) {
			t.Errorf("trail %v lacks %s", actions, want)
		}
	}
	if rep, _ := a.m.DB.VerifyAudit(); !rep.OK() {
		t.Fatalf("audit broken: %+v", rep)
	}
	var out strings.Builder
	if err := auditCommand([]string{"verify", "nonexistent-dir/x.db"}, &out, func(string) string { return "" }); err == nil {
		t.Error("audit verify of a missing file succeeded")
	}
}

// Marketing goes only to users who consent when their message is sent.
func TestDeskMarketingSkipsWithdrawnConsent(t *testing.T) {
	a := startDesk(t)
	for _, u := range []bottest.User{alice, boris} {
		a.say(u, "/consent")
	}
	a.press(alice, "Get news")
	a.press(boris, "Получать новости")
	// Boris changes his mind just before the broadcast.
	a.press(boris, "Отозвать согласие: новости")
	seq := a.lastSeq()
	contains(t, a.say(admin, "/marketing Spring offer: 2 months for 1"), "Preview", "to 1 user")
	contains(t, a.press(admin, "Send"), "on its way")
	report := a.waitText(admin.ID, seq, "delivered,")
	contains(t, report, "1 delivered", "0 blocked", "3 skipped")
	a.waitText(alice.ID, seq, "Spring offer")
	for _, e := range a.emu.EventsFor(boris.ID) {
		if strings.Contains(e.Text, "Spring offer") {
			t.Fatal("boris got marketing after withdrawing his consent")
		}
	}
	ds, err := a.m.DB.Deliveries(1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]valex.DeliveryStatus{}
	for _, d := range ds {
		got[d.UserID] = d.Status
	}
	if got[alice.ID] != valex.DeliveryDelivered || got[boris.ID] != valex.DeliverySkipped || got[admin.ID] != valex.DeliverySkipped {
		t.Fatalf("deliveries = %v", got)
	}
}

// A breach notice reaches every affected user, and what became of each
// delivery is recorded: delivered, or blocked the bot.
func TestDeskBreachNoticeDeliveryRecorded(t *testing.T) {
	a := startDesk(t)
	a.emu.SetBlocked(boris.ID, true)
	seq := a.lastSeq()
	a.breach(admin, "Some email addresses were exposed on March 3.", fmt.Sprintf("%d,%d,%d", alice.ID, boris.ID, support.ID))
	a.press(admin, "Send")
	contains(t, a.waitText(admin.ID, seq, "delivered,"), "2 delivered", "1 blocked the bot", "0 failed")
	contains(t, a.waitText(alice.ID, seq, "security incident"), "Some email addresses were exposed", "t.me/supprtbots")
	ds, err := a.m.DB.Deliveries(1)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]valex.DeliveryStatus{}
	for _, d := range ds {
		got[d.UserID] = d.Status
		if d.At.IsZero() || d.Kind != valex.NoticeBreach {
			t.Errorf("delivery = %+v", d)
		}
	}
	want := map[int64]valex.DeliveryStatus{alice.ID: valex.DeliveryDelivered, boris.ID: valex.DeliveryBlocked, support.ID: valex.DeliveryDelivered}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("deliveries = %v, want %v", got, want)
	}
	for _, e := range a.emu.EventsFor(admin.ID) {
		if strings.Contains(e.Text, "security incident") && !strings.Contains(e.Text, "Preview") {
			t.Fatal("the breach notice went to someone not affected")
		}
	}
}

func TestDeskInGroupsPointsToPrivateChat(t *testing.T) {
	a := startDesk(t)
	group := bottest.Chat{ID: -5001, Type: "group", Title: "friends"}
	seq := a.lastSeq()
	a.emu.SendText(group, alice, "/privacy@valex_bot")
	contains(t, a.next(group.ID, seq, "sendMessage"), "private chat")
	a.idle()
}

// The deadline counts from when the user sent the message (Telegram's
// date), by the configured legal rule: a backlog handled three days late
// does not move the due date.
func TestDeadlineCountsFromTheMessageDate(t *testing.T) {
	a := startApp(t, func(c *Config) { c.Desk.Deadline = "1 month" })
	a.say(alice, "/start")
	sent := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	raw := fmt.Sprintf(`{"message":{"message_id":9001,"from":{"id":%d,"is_bot":false,"first_name":"Alice","language_code":"en"},
		"chat":{"id":%d,"type":"private","first_name":"Alice"},"date":%d,
		"text":"/support my invoice is wrong","entities":[{"type":"bot_command","offset":0,"length":8}]}}`, alice.ID, alice.ID, sent.Unix())
	seq := a.lastSeq()
	if a.emu.SendRaw(json.RawMessage(raw)) == 0 {
		t.Fatal("the emulator refused the update")
	}
	a.waitText(alice.ID, seq, "registered")
	a.idle()
	ts := a.tickets(alice)
	if len(ts) != 1 {
		t.Fatalf("%d tickets", len(ts))
	}
	month, _ := valex.ParseDeadlineRule("1 month")
	if want := month.Due(sent, valex.Calendar{}); !ts[0].ReceivedAt.Equal(sent) || !ts[0].DueAt.Equal(want) {
		t.Fatalf("received %s due %s; want received %s (the message date) due %s", ts[0].ReceivedAt, ts[0].DueAt, sent, want)
	}
}
