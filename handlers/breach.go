package handlers

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// Breach incidents (policy section 6; GDPR Arts. 33–34, 152-FZ Art.
// 21(3.1)). /breach opens a guided form, one prompt per answer: what
// happened, the categories of data and about how many people, the likely
// consequences, the measures taken, the contact point, and who is affected.
// Then the notice is previewed like every broadcast; "Send" records the
// incident with its deadlines (Roskomnadzor's first notice within 24 hours
// of detection, the supervisory authority within 72 hours), notifies the
// users, and admins are reminded until they mark each authority told.
// Users who had blocked the bot get the notice when they come back.

// dialogBreach is the form's prompt; its argument is the step.
const dialogBreach = "breach.form"

// breachSteps are the form's questions, in order.
var breachSteps = []string{"nature", "categories", "affected", "consequences", "measures", "contact", "audience"}

// breachForms holds each admin's form between answers (in memory: a
// restart drops a half-filled form, and the admin starts again).
type breachForms struct {
	mu sync.Mutex
	m  map[int64]*valex.BreachReport
}

func (f *breachForms) start(admin int64, rep *valex.BreachReport) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[int64]*valex.BreachReport{}
	}
	f.m[admin] = rep
}

func (f *breachForms) get(admin int64) *valex.BreachReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[admin]
}

func (f *breachForms) drop(admin int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, admin)
}

// Breach opens the incident form: /breach [what happened].
func (d *Desk) Breach(ctx context.Context, r *bot.Request) error {
	rep := &valex.BreachReport{DetectedAt: d.Clock.Now()}
	step := 0
	if text := strings.TrimSpace(r.Args); text != "" {
		if err := checkNoticeText(text); err != nil {
			return err
		}
		rep.Nature, step = text, 1
	}
	d.breaches.start(r.From.ID, rep)
	return d.askBreachStep(ctx, r, step)
}

func (d *Desk) askBreachStep(ctx context.Context, r *bot.Request, step int) error {
	r.StartDialog(dialogBreach, breachSteps[step])
	return d.reply(ctx, r, d.t(r, "breach.ask."+breachSteps[step], map[string]any{
		"Step": step + 1, "Steps": len(breachSteps), "Support": tghtml.Escape(d.Policy.SupportURL),
	}), nil)
}

// BreachFormText takes one answer of the form and asks the next question;
// after the last it shows the notice's preview.
func (d *Desk) BreachFormText(ctx context.Context, r *bot.Request) error {
	rep := d.breaches.get(r.From.ID)
	step := slices.Index(breachSteps, r.Dialog.Arg)
	if rep == nil || step < 0 {
		r.EndDialog()
		return valex.Errorf("breach.form_gone", nil)
	}
	text := strings.TrimSpace(r.Text)
	if text == "" {
		return valex.Errorf("breach.answer_required", nil)
	}
	if err := checkNoticeText(text); err != nil {
		return err
	}
	switch breachSteps[step] {
	case "nature":
		rep.Nature = text
	case "categories":
		rep.Categories = text
	case "affected":
		rep.Affected = text
	case "consequences":
		rep.Consequences = text
	case "measures":
		rep.Measures = text
	case "contact":
		if text == "-" {
			text = d.Policy.SupportURL
		}
		rep.Contact = text
	case "audience":
		ids, err := d.audience(text)
		if err != nil {
			return err // the prompt stays: type the list again
		}
		d.breaches.drop(r.From.ID)
		return d.preview(ctx, r, valex.Notice{Kind: valex.NoticeBreach, Text: rep.Nature, UserIDs: ids, Breach: rep})
	}
	return d.askBreachStep(ctx, r, step+1)
}

// audience reads the form's last answer: "all" (in any language) or
// Telegram ids separated by commas or spaces.
func (d *Desk) audience(text string) ([]int64, error) {
	if slices.Contains(d.words("breach.everyone"), strings.ToLower(text)) {
		return nil, nil
	}
	var ids []int64
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || id <= 0 {
			return nil, valex.Errorf("notice.bad_ids", nil)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, valex.Errorf("notice.bad_ids", nil)
	}
	slices.Sort(ids)
	return ids, nil
}

// incidentText says where an incident's notifications stand.
func (d *Desk) incidentText(lang string, n valex.Notice) string {
	b := n.Breach
	var lines []string
	for _, dl := range b.Deadlines() {
		key := "incident.deadline_open"
		if dl.Done {
			key = "incident.deadline_done"
		}
		lines = append(lines, d.Tr.T(lang, key, map[string]any{
			"Who": d.Tr.T(lang, "incident.to."+dl.Name, nil), "Due": dl.Due.UTC().Format("2006-01-02 15:04 UTC"),
		}))
	}
	return d.Tr.T(lang, "incident.status", map[string]any{
		"ID": n.ID, "Detected": b.DetectedAt.UTC().Format("2006-01-02 15:04 UTC"),
		"Categories": tghtml.Escape(b.Categories), "Affected": tghtml.Escape(b.Affected),
		"Deadlines": strings.Join(lines, "\n"),
	})
}

// incidentButtons mark each authority told.
func (d *Desk) incidentButtons(lang string, n valex.Notice) [][]bot.Button {
	var row []bot.Button
	for _, dl := range n.Breach.Deadlines() {
		if !dl.Done {
			row = append(row, bot.Button{Text: d.Tr.T(lang, "incident.btn_done."+dl.Name, nil),
				Data: cbIncident.Data(d.CB, dl.Name, strconv.FormatUint(n.ID, 10))})
		}
	}
	if row == nil {
		return [][]bot.Button{}
	}
	return [][]bot.Button{row}
}

// IncidentButton records that an authority was told: "bi" buttons.
func (d *Desk) IncidentButton(ctx context.Context, r *bot.Request) error {
	args := r.CallbackArgs
	if len(args) != 2 || (args[0] != valex.IncidentAuthority && args[0] != valex.IncidentRegulator) {
		return valex.Errorf("error.bad_callback", nil)
	}
	id, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return valex.Errorf("error.bad_callback", nil)
	}
	n, err := d.Store.MarkIncidentNotified(id, args[0], r.From.ID, d.Clock.Now())
	if err != nil {
		return err
	}
	r.Toast = d.t(r, "desk.toast_saved", nil)
	return d.Out.Edit(ctx, r.ChatID, r.MessageID, d.incidentText(r.Lang, n), d.incidentButtons(r.Lang, n))
}

// RetryBreaches is router middleware: a user who had blocked the bot when a
// breach notice went out gets it as soon as they are back (any update from
// them), and the delivery is recorded.
func (d *Desk) RetryBreaches(next bot.HandlerFunc) bot.HandlerFunc {
	return func(ctx context.Context, r *bot.Request) error {
		if r.Private() && r.From.ID != 0 {
			// r.Lang is the account's language (the Identity middleware ran
			// first): no second read of the account on every update.
			d.Service.RetryBreaches(ctx, valex.User{ID: r.From.ID, Language: r.Lang})
		}
		return next(ctx, r)
	}
}
