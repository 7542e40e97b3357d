package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Notices from admins to users: policy updates (policy section 9), breach
// notices (section 6) and marketing (section 3, opt-in only). This file is
// the Telegram side (the commands, the preview, the texts); the broadcast
// itself and its deliveries are desk.Service's.

// BroadcastSender sends one user their copy of a notice on the outbox's
// broadcast lane, which yields to replies (bot.Outbox.Broadcast).
type BroadcastSender interface {
	Broadcast(ctx context.Context, m bot.Message) (int, error)
	// PaidBroadcasts reports whether notices go out as Telegram paid
	// broadcasts, which the preview then prices.
	PaidBroadcasts() bool
}

// maxVersionLen bounds a policy version name.
const maxVersionLen = 32

// noticeTextMax leaves room for the localized frame around the admin's text.
const noticeTextMax = 3500

// PolicyUpdate previews a new policy version's notice: /policy_update
// 2025-06. The version must be newer than the current one; it is recorded
// and every user told only after the admin presses "Send".
func (d *Desk) PolicyUpdate(ctx context.Context, r *bot.Request) error {
	version := strings.TrimSpace(r.Args)
	if version == "" {
		return d.reply(ctx, r, d.t(r, "notice.policy_usage", nil), nil)
	}
	if err := d.checkNewVersion(version); err != nil {
		return err
	}
	return d.preview(ctx, r, valex.Notice{Kind: valex.NoticePolicyUpdate, Text: version})
}

// checkNewVersion accepts a version made of numbers joined by dots or
// dashes (2025-06, 3.1) that is greater than the latest published one.
func (d *Desk) checkNewVersion(version string) error {
	if _, ok := versionParts(version); !ok || utf8.RuneCountInString(version) > maxVersionLen {
		return valex.Errorf("notice.bad_version", map[string]any{"Max": maxVersionLen})
	}
	cur, ok, err := d.Store.LatestPolicyVersion()
	if err != nil || !ok {
		return err
	}
	if compareVersions(version, cur.Version) <= 0 {
		return valex.Errorf("notice.version_not_newer", map[string]any{"Current": tghtml.Escape(cur.Version)})
	}
	return nil
}

// versionParts splits "2025-06" or "3.1.2" into its numbers.
func versionParts(v string) ([]int, bool) {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == '-' })
	if len(fields) == 0 || strings.Count(v, ".")+strings.Count(v, "-") != len(fields)-1 {
		return nil, false
	}
	out := make([]int, len(fields))
	for i, f := range fields {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || strings.HasPrefix(f, "+") {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// compareVersions orders versions number by number (2025-10 > 2025-9); a
// version that does not parse (published by an older build) sorts first.
func compareVersions(a, b string) int {
	pa, oka := versionParts(a)
	pb, okb := versionParts(b)
	switch {
	case !okb:
		return 1
	case !oka:
		return -1
	}
	return slices.Compare(pa, pb)
}

// Marketing sends news to the users who opted in, checked for each user
// right before their message goes out: /marketing text.
func (d *Desk) Marketing(ctx context.Context, r *bot.Request) error {
	text := strings.TrimSpace(r.Args)
	if text == "" {
		return d.reply(ctx, r, d.t(r, "notice.marketing_usage", nil), nil)
	}
	if err := checkNoticeText(text); err != nil {
		return err
	}
	return d.preview(ctx, r, valex.Notice{Kind: valex.NoticeMarketing, Text: text})
}

func checkNoticeText(text string) error {
	if n := utf8.RuneCountInString(text); n > noticeTextMax {
		return valex.Errorf("desk.too_long", map[string]any{"Max": noticeTextMax, "Count": n})
	}
	return nil
}

// A broadcast cannot be taken back, so every admin notice is a draft
// first: the admin sees the text users will get and how many will get it,
// and it goes out only after "Send". Drafts live in memory for an hour; a
// restart drops them (the admin runs the command again). Taking a draft
// removes it, so a second tap on "Send" (or the same update replayed after
// a crash) sends nothing more.

// draftTTL is how long a preview's "Send" works.
const draftTTL = time.Hour

type noticeDrafts struct {
	mu sync.Mutex
	m  map[string]valex.Notice // by draft id; CreatedAt is the preview's time
}

func (nd *noticeDrafts) put(n valex.Notice) string {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.m == nil {
		nd.m = map[string]valex.Notice{}
	}
	for id, old := range nd.m {
		if n.CreatedAt.Sub(old.CreatedAt) > draftTTL {
			delete(nd.m, id)
		}
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	nd.m[id] = n
	return id
}

// take removes and returns the draft if it is still fresh at now.
func (nd *noticeDrafts) take(id string, now time.Time) (valex.Notice, bool) {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	n, ok := nd.m[id]
	delete(nd.m, id)
	return n, ok && now.Sub(n.CreatedAt) <= draftTTL
}

// preview shows the admin the notice as users will read it, with the
// number of recipients, and the Send and Cancel buttons.
func (d *Desk) preview(ctx context.Context, r *bot.Request, n valex.Notice) error {
	n.CreatedAt, n.CreatedBy = d.Clock.Now(), r.From.ID
	count, missing, err := d.noticeReach(n)
	if err != nil {
		return err
	}
	if n.UserIDs != nil && count == 0 {
		return valex.Errorf("notice.nobody", nil)
	}
	body, err := d.noticeText(n, r.Lang)
	if err != nil {
		return err
	}
	id := d.drafts.put(n)
	kb := [][]bot.Button{{
		{Text: d.t(r, "notice.send", nil), Data: cbNotice.Data(d.CB, "send", id)},
		{Text: d.t(r, "notice.cancel", nil), Data: cbNotice.Data(d.CB, "cancel", id)},
	}}
	cost, err := d.broadcastCost(n, count, r.Lang)
	if err != nil {
		return err
	}
	return d.reply(ctx, r, d.t(r, "notice.preview", map[string]any{
		"Kind": d.t(r, "notice.kind."+string(n.Kind), nil), "Text": body,
		"Recipients": d.Tr.N(r.Lang, "notice.recipients", count, nil),
		"Missing":    missing, "Cost": cost,
	}), kb)
}

// paidBroadcastStars is what Telegram charges for a paid broadcast
// message over its free limit.
const paidBroadcastStars = 0.1

// broadcastCost is the preview's line on what a paid broadcast costs (""
// when broadcasts are free): every message counted as charged, so the
// figure is an upper bound, and a notice too long for one message counted
// in parts, in the language whose text is longest.
func (d *Desk) broadcastCost(n valex.Notice, recipients int, lang string) (string, error) {
	if d.Bulk == nil || !d.Bulk.PaidBroadcasts() {
		return "", nil
	}
	parts := 1
	for _, l := range d.Tr.Languages() {
		text, err := d.noticeText(n, l)
		if err != nil {
			return "", err
		}
		parts = max(parts, len(tghtml.Split(text, tghtml.MaxMessageLen)))
	}
	messages := recipients * parts
	return "\n" + d.Tr.T(lang, "notice.preview_paid", map[string]any{
		"Stars":    decimal(lang, float64(messages)*paidBroadcastStars, 1),
		"Messages": integer(lang, int64(messages)),
	}), nil
}

// noticeReach counts who a notice reaches now: every registered user, the
// listed ones still registered (missing: listed but without an account),
// or for news those who opted in.
func (d *Desk) noticeReach(n valex.Notice) (count, missing int, err error) {
	audience, err := d.Store.Audience()
	if err != nil {
		return 0, 0, err
	}
	switch {
	case len(n.UserIDs) > 0:
		known := map[int64]bool{}
		for _, u := range audience {
			known[u.ID] = true
		}
		for _, id := range n.UserIDs {
			if known[id] {
				count++
			} else {
				missing++
			}
		}
		return count, missing, nil
	case n.Kind == valex.NoticeMarketing:
		for _, u := range audience {
			st, err := d.Store.ConsentState(u.ID)
			if err != nil {
				return 0, 0, err
			}
			if valex.CanSendMarketing(st) {
				count++
			}
		}
		return count, 0, nil
	}
	return len(audience), 0, nil
}

// NoticeButton handles a preview's buttons: "Send" records the notice (and
// for a policy update the version, checked again) and starts it; "Cancel"
// drops the draft.
func (d *Desk) NoticeButton(ctx context.Context, r *bot.Request) error {
	if len(r.CallbackArgs) != 2 {
		return valex.Errorf("error.bad_callback", nil)
	}
	if done, ok, err := d.Store.NoticeOfUpdate(int64(r.ID)); err != nil || ok {
		if err != nil {
			return err
		}
		// This update started the notice before a crash or a stop cut its
		// reply off: the broadcast resumed at start-up; only the replies are
		// left. A notice that finished before the stop had its totals report
		// cut off too (it goes to the same chat after the reply).
		if err := d.noticeStarted(ctx, r, done); err != nil {
			return err
		}
		if !done.FinishedAt.IsZero() {
			d.Service.Notify.NoticeReport(ctx, r.ChatID, done)
		}
		return nil
	}
	n, ok := d.drafts.take(r.CallbackArgs[1], d.Clock.Now())
	if !ok {
		return valex.Errorf("notice.draft_gone", nil)
	}
	if r.CallbackArgs[0] != "send" {
		return d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "notice.cancelled", nil), nil)
	}
	if len(n.UserIDs) > 0 {
		// Only ids with an account now: an id erased meanwhile is not kept.
		audience, err := d.Store.Audience()
		if err != nil {
			return err
		}
		known := map[int64]bool{}
		for _, u := range audience {
			known[u.ID] = true
		}
		n.UserIDs = slices.DeleteFunc(n.UserIDs, func(id int64) bool { return !known[id] })
		if len(n.UserIDs) == 0 {
			return valex.Errorf("notice.nobody", nil)
		}
	}
	if n.Kind == valex.NoticePolicyUpdate {
		if err := d.checkNewVersion(n.Text); err != nil {
			return err // another admin published one meanwhile
		}
		if err := d.Store.AddPolicyVersion(valex.PolicyVersion{Version: n.Text, PublishedAt: d.Clock.Now(), PublishedBy: r.From.ID}); err != nil {
			return err
		}
	}
	n.CreatedAt, n.CreatedBy, n.SourceUpdate = d.Clock.Now(), r.From.ID, int64(r.ID)
	n, err := d.Store.CreateNotice(n)
	if err != nil {
		return err
	}
	if !n.Replayed {
		d.Service.Broadcast(ctx, n, r.ChatID)
	}
	return d.noticeStarted(ctx, r, n)
}

// noticeStarted tells the admin the notice is on its way (and, for a
// breach, shows the incident's deadlines).
func (d *Desk) noticeStarted(ctx context.Context, r *bot.Request, n valex.Notice) error {
	if err := d.Out.Edit(ctx, r.ChatID, r.MessageID, d.t(r, "notice.started", map[string]any{"ID": n.ID, "Kind": d.t(r, "notice.kind."+string(n.Kind), nil)}), nil); err != nil {
		return err
	}
	if n.Breach != nil {
		return d.reply(ctx, r, d.incidentText(r.Lang, n), d.incidentButtons(r.Lang, n))
	}
	return nil
}

// noticeText is the notice as a user reading lang gets it.
func (d *Desk) noticeText(n valex.Notice, lang string) (string, error) {
	switch n.Kind {
	case valex.NoticeMarketing:
		return d.Tr.T(lang, "notice.marketing", map[string]any{"Text": tghtml.Escape(n.Text)}), nil
	case valex.NoticeBreach:
		if b := n.Breach; b != nil {
			return d.Tr.T(lang, "notice.breach_incident", map[string]any{"Nature": tghtml.Escape(b.Nature),
				"Consequences": tghtml.Escape(b.Consequences), "Measures": tghtml.Escape(b.Measures),
				"Contact": tghtml.Escape(b.Contact)}), nil
		}
		return d.Tr.T(lang, "notice.breach", map[string]any{"Text": tghtml.Escape(n.Text), "Support": tghtml.Escape(d.Policy.SupportURL)}), nil
	case valex.NoticePolicyUpdate:
		return d.Tr.T(lang, "notice.policy_update", map[string]any{"Version": tghtml.Escape(n.Text), "URL": tghtml.Escape(d.Policy.URL)}), nil
	}
	return "", fmt.Errorf("notice %d: unknown kind %q", n.ID, n.Kind)
}
