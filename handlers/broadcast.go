package handlers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Notices from admins to users: policy updates (policy section 9), breach
// notices (section 6) and marketing (section 3, opt-in only). A broadcast
// runs in its own goroutine so the admin's chat stays free; the outbox
// paces it to Telegram's limits, and every user's delivery is recorded
// (delivered, blocked, failed, skipped), so a broadcast cut short by a stop
// resumes where it was (ResumeBroadcasts) and the admin gets the totals.

// maxVersionLen bounds a policy version name.
const maxVersionLen = 32

// noticeTextMax leaves room for the localized frame around the admin's text.
const noticeTextMax = 3500

// PolicyUpdate records a new policy version and tells every user:
// /policy_update 2025-06.
func (d *Desk) PolicyUpdate(ctx context.Context, r *bot.Request) error {
	version := strings.TrimSpace(r.Args)
	if version == "" {
		return d.reply(ctx, r, d.t(r, "notice.policy_usage", nil), nil)
	}
	if strings.ContainsAny(version, " \t\n") || utf8.RuneCountInString(version) > maxVersionLen {
		return valex.Errorf("notice.bad_version", map[string]any{"Max": maxVersionLen})
	}
	now := d.Clock.Now()
	if err := d.Store.AddPolicyVersion(valex.PolicyVersion{Version: version, PublishedAt: now, PublishedBy: r.From.ID}); err != nil {
		return err
	}
	return d.startNotice(ctx, r, valex.Notice{Kind: valex.NoticePolicyUpdate, Text: version})
}

// Breach records a personal data breach and notifies the affected users:
// /breach text for everyone, /breach ids=1,2,3 text for some.
func (d *Desk) Breach(ctx context.Context, r *bot.Request) error {
	args := strings.TrimSpace(r.Args)
	var ids []int64
	if rest, ok := strings.CutPrefix(args, "ids="); ok {
		list, text, _ := strings.Cut(rest, " ")
		for _, f := range strings.Split(list, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil || id <= 0 {
				return valex.Errorf("notice.bad_ids", nil)
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		args = strings.TrimSpace(text)
	}
	if args == "" {
		return d.reply(ctx, r, d.t(r, "notice.breach_usage", nil), nil)
	}
	if err := checkNoticeText(args); err != nil {
		return err
	}
	slices.Sort(ids)
	return d.startNotice(ctx, r, valex.Notice{Kind: valex.NoticeBreach, Text: args, UserIDs: ids})
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
	return d.startNotice(ctx, r, valex.Notice{Kind: valex.NoticeMarketing, Text: text})
}

func checkNoticeText(text string) error {
	if n := utf8.RuneCountInString(text); n > noticeTextMax {
		return valex.Errorf("desk.too_long", map[string]any{"Max": noticeTextMax, "Count": n})
	}
	return nil
}

// startNotice records the notice, tells the admin it is on its way and
// sends it in the background.
func (d *Desk) startNotice(ctx context.Context, r *bot.Request, n valex.Notice) error {
	n.CreatedAt, n.CreatedBy = d.Clock.Now(), r.From.ID
	n, err := d.Store.CreateNotice(n)
	if err != nil {
		return err
	}
	if err := d.reply(ctx, r, d.t(r, "notice.started", map[string]any{"ID": n.ID, "Kind": d.t(r, "notice.kind."+string(n.Kind), nil)}), nil); err != nil {
		return err
	}
	d.goBroadcast(ctx, n, r.ChatID)
	return nil
}

// goBroadcast runs a notice in the background and reports its totals to
// reportTo (0 = nobody).
func (d *Desk) goBroadcast(ctx context.Context, n valex.Notice, reportTo int64) {
	d.broadcasts.Add(1)
	go func() {
		defer d.broadcasts.Done()
		done, err := d.broadcast(ctx, n)
		if err != nil {
			d.Log.Error().Err(err).Uint64("notice_id", n.ID).Msg("broadcast stopped")
			return
		}
		d.Log.Info().Uint64("notice_id", n.ID).Str("kind", string(n.Kind)).
			Int("delivered", done.Totals[valex.DeliveryDelivered]).Int("blocked", done.Totals[valex.DeliveryBlocked]).
			Int("failed", done.Totals[valex.DeliveryFailed]).Int("skipped", done.Totals[valex.DeliverySkipped]).Msg("broadcast finished")
		if reportTo == 0 {
			return
		}
		lang := d.langOf(reportTo)
		d.tell(ctx, reportTo, lang, 0, "notice.report", map[string]any{
			"ID": n.ID, "Kind": d.Tr.T(lang, "notice.kind."+string(n.Kind), nil),
			"Delivered": done.Totals[valex.DeliveryDelivered], "Blocked": done.Totals[valex.DeliveryBlocked],
			"Failed": done.Totals[valex.DeliveryFailed], "Skipped": done.Totals[valex.DeliverySkipped],
		}, nil)
	}()
}

// ResumeBroadcasts restarts the broadcasts a stop interrupted; users who
// already have their delivery recorded are skipped (a failed one is tried
// again). Call it once the bot runs; the admin who started each gets the
// totals.
func (d *Desk) ResumeBroadcasts(ctx context.Context) error {
	ns, err := d.Store.UnfinishedNotices()
	if err != nil {
		return err
	}
	for _, n := range ns {
		d.goBroadcast(ctx, n, n.CreatedBy)
	}
	return nil
}

// broadcast delivers a notice to its audience and records each delivery.
func (d *Desk) broadcast(ctx context.Context, n valex.Notice) (valex.Notice, error) {
	audience, err := d.Store.Audience()
	if err != nil {
		return n, err
	}
	done, err := d.Store.DeliveredTo(n.ID, valex.DeliveryDelivered, valex.DeliveryBlocked, valex.DeliverySkipped)
	if err != nil {
		return n, err
	}
	if len(n.UserIDs) > 0 {
		// A breach notice for some users: those still registered get it,
		// the others are recorded as not reached.
		lang := map[int64]string{}
		for _, u := range audience {
			lang[u.ID] = u.Language
		}
		audience = audience[:0]
		for _, id := range n.UserIDs {
			l, ok := lang[id]
			if !ok {
				if !done[id] {
					if err := d.record(n, id, valex.DeliveryFailed); err != nil {
						return n, err
					}
				}
				continue
			}
			audience = append(audience, valex.User{ID: id, Language: l})
		}
	}
	for _, u := range audience {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("notice %d: %w", n.ID, err)
		}
		if done[u.ID] {
			continue
		}
		status, err := d.deliver(ctx, n, u)
		if err != nil {
			return n, err
		}
		if err := d.record(n, u.ID, status); err != nil {
			return n, err
		}
	}
	return d.Store.FinishNotice(n.ID, d.Clock.Now())
}

// deliver sends one user their notice. Marketing is sent only if the user
// consents at this very moment. An error return is for a stop; delivery
// problems are a status.
func (d *Desk) deliver(ctx context.Context, n valex.Notice, u valex.User) (valex.DeliveryStatus, error) {
	lang := u.Language
	if lang == "" {
		lang = d.Tr.Match("")
	}
	var text string
	switch n.Kind {
	case valex.NoticeMarketing:
		st, err := d.Store.ConsentState(u.ID)
		if err != nil {
			return "", err
		}
		if !valex.CanSendMarketing(st) {
			return valex.DeliverySkipped, nil
		}
		text = d.Tr.T(lang, "notice.marketing", map[string]any{"Text": tghtml.Escape(n.Text)})
	case valex.NoticeBreach:
		text = d.Tr.T(lang, "notice.breach", map[string]any{"Text": tghtml.Escape(n.Text), "Support": tghtml.Escape(d.Policy.SupportURL)})
	case valex.NoticePolicyUpdate:
		text = d.Tr.T(lang, "notice.policy_update", map[string]any{"Version": tghtml.Escape(n.Text), "URL": tghtml.Escape(d.Policy.URL)})
	default:
		return "", fmt.Errorf("notice %d: unknown kind %q", n.ID, n.Kind)
	}
	_, err := d.Out.Send(ctx, bot.Message{ChatID: u.ID, Text: text})
	switch {
	case err == nil:
		return valex.DeliveryDelivered, nil
	case ctx.Err() != nil:
		return "", fmt.Errorf("notice %d: %w", n.ID, ctx.Err())
	case bot.IsBlocked(err):
		return valex.DeliveryBlocked, nil
	}
	d.Log.Warn().Str("error", d.IDs.Redact(err.Error(), u.ID)).Uint64("notice_id", n.ID).Str("user", d.IDs.User(u.ID)).Msg("notice not delivered")
	return valex.DeliveryFailed, nil
}

// record keeps what became of a notice for one user. A user without an
// account (never registered, or erased while the broadcast ran) gets no
// record: the store refuses to write anything keyed by them.
func (d *Desk) record(n valex.Notice, userID int64, s valex.DeliveryStatus) error {
	err := d.Store.RecordDelivery(valex.Delivery{NoticeID: n.ID, Kind: n.Kind, UserID: userID, Status: s, At: d.Clock.Now()})
	if errors.Is(err, valex.ErrNotFound) {
		return nil
	}
	return err
}
