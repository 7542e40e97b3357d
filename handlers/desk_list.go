package handlers

// /requests: the staff list of open tickets, its filters and pages.

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// listPageSize is how many tickets a /requests page shows.
const listPageSize = 10

// listFilter is a /requests view: the page and the kind and status
// filters ("" = all).
type listFilter struct {
	page   int
	kind   valex.RequestKind
	status valex.RequestStatus
}

func (f listFilter) data(cb *bot.Signer) string {
	k, s := string(f.kind), string(f.status)
	if k == "" {
		k = "-"
	}
	if s == "" {
		s = "-"
	}
	return cbRequests.Data(cb, strconv.Itoa(f.page), k, s)
}

func parseListFilter(args []string) (listFilter, error) {
	if len(args) != 3 {
		return listFilter{}, valex.Errorf("error.bad_callback", nil)
	}
	page, err := strconv.Atoi(args[0])
	f := listFilter{page: page}
	if args[1] != "-" {
		f.kind = valex.RequestKind(args[1])
	}
	if args[2] != "-" {
		f.status = valex.RequestStatus(args[2])
	}
	if err != nil || page < 0 || (f.kind != "" && !f.kind.Valid()) || (f.status != "" && !f.status.Open()) {
		return listFilter{}, valex.Errorf("error.bad_callback", nil)
	}
	return f, nil
}

// openStatuses are the statuses /requests can filter on.
var openStatuses = []valex.RequestStatus{valex.StatusNew, valex.StatusInProgress, valex.StatusWaitingUser, valex.StatusOnHold}

// Requests lists open tickets by due date, overdue first.
func (d *Desk) Requests(ctx context.Context, r *bot.Request) error {
	if err := privateOnly(r); err != nil {
		return err
	}
	text, kb, err := d.listView(r, listFilter{})
	if err != nil {
		return err
	}
	return d.reply(ctx, r, text, kb)
}

// RequestsButton pages and filters the list in place.
func (d *Desk) RequestsButton(ctx context.Context, r *bot.Request) error {
	f, err := parseListFilter(r.CallbackArgs)
	if err != nil {
		return err
	}
	text, kb, err := d.listView(r, f)
	if err != nil {
		return err
	}
	return d.Out.Edit(ctx, r.ChatID, r.MessageID, text, kb)
}

func (d *Desk) listView(r *bot.Request, f listFilter) (string, [][]bot.Button, error) {
	page, total, err := d.Store.OpenTickets(f.kind, f.status, f.page*listPageSize, listPageSize)
	if err != nil {
		return "", nil, err
	}
	pages := max(1, (total+listPageSize-1)/listPageSize)
	if f.page >= pages && total > 0 {
		f.page = pages - 1
		if page, total, err = d.Store.OpenTickets(f.kind, f.status, f.page*listPageSize, listPageSize); err != nil {
			return "", nil, err
		}
	}
	all := d.t(r, "desk.filter_all", nil)
	kindLabel, statusLabel := all, all
	if f.kind != "" {
		kindLabel = d.kindName(r.Lang, f.kind)
	}
	if f.status != "" {
		statusLabel = d.statusName(r.Lang, f.status)
	}
	var b strings.Builder
	b.WriteString(d.Tr.N(r.Lang, "desk.list_title", total, map[string]any{"Page": f.page + 1, "Pages": pages}))
	b.WriteString("\n")
	b.WriteString(d.t(r, "desk.list_filter", map[string]any{"Kind": kindLabel, "Status": statusLabel}))
	b.WriteString("\n")
	now := d.Clock.Now()
	var row []bot.Button
	var kb [][]bot.Button
	for _, t := range page {
		assignee := d.t(r, "desk.unassigned", nil)
		switch {
		case t.AssigneeID == r.From.ID:
			assignee = d.t(r, "desk.assigned_you", nil)
		case t.AssigneeID != 0:
			assignee = d.staffName(r, t.AssigneeID)
		}
		key := "desk.list_line"
		if t.Overdue(now) && d.tracked(t.Kind) {
			key = "desk.list_line_overdue"
		}
		b.WriteString("\n")
		b.WriteString(d.t(r, key, map[string]any{
			"ID": t.ID, "Kind": d.kindName(r.Lang, t.Kind), "Status": d.statusName(r.Lang, t.Status),
			"Left": d.ticketArgs(r.Lang, t)["Left"], "Age": d.age(r.Lang, t.ReceivedAt, now),
			"Assignee": assignee, "Snippet": d.snippet(t.ID),
		}))
		row = append(row, bot.Button{Text: "#" + idArg(t.ID), Data: cbTicket.Data(d.CB, "show", idArg(t.ID))})
		if len(row) == 5 {
			kb, row = append(kb, row), nil
		}
	}
	if len(row) > 0 {
		kb = append(kb, row)
	}
	if total == 0 {
		b.WriteString("\n")
		b.WriteString(d.t(r, "desk.list_empty", nil))
	}
	// One tap per filter: a button for every kind and every open status,
	// the current one marked.
	mark := func(on bool, label string) string {
		if on {
			return "• " + label
		}
		return label
	}
	kindRow := []bot.Button{{Text: mark(f.kind == "", d.t(r, "desk.filter_all_kinds", nil)), Data: listFilter{status: f.status}.data(d.CB)}}
	for _, k := range valex.RequestKinds {
		kindRow = append(kindRow, bot.Button{Text: mark(f.kind == k, d.kindName(r.Lang, k)), Data: listFilter{kind: k, status: f.status}.data(d.CB)})
	}
	for len(kindRow) > 0 {
		n := min(3, len(kindRow))
		kb, kindRow = append(kb, kindRow[:n]), kindRow[n:]
	}
	statusRow := []bot.Button{{Text: mark(f.status == "", d.t(r, "desk.filter_all_statuses", nil)), Data: listFilter{kind: f.kind}.data(d.CB)}}
	for _, st := range openStatuses {
		statusRow = append(statusRow, bot.Button{Text: mark(f.status == st, d.statusName(r.Lang, st)), Data: listFilter{kind: f.kind, status: st}.data(d.CB)})
	}
	for len(statusRow) > 0 {
		n := min(3, len(statusRow))
		kb, statusRow = append(kb, statusRow[:n]), statusRow[n:]
	}
	var nav []bot.Button
	if f.page > 0 {
		nav = append(nav, bot.Button{Text: d.t(r, "desk.btn_prev", nil), Data: listFilter{f.page - 1, f.kind, f.status}.data(d.CB)})
	}
	if f.page+1 < pages {
		nav = append(nav, bot.Button{Text: d.t(r, "desk.btn_next", nil), Data: listFilter{f.page + 1, f.kind, f.status}.data(d.CB)})
	}
	if nav != nil {
		kb = append(kb, nav)
	}
	return b.String(), kb, nil
}

// staffName names a staff member by their Telegram first name (their
// account's nickname), or by id when they have no account.
func (d *Desk) staffName(r *bot.Request, id int64) string {
	if u, err := d.Users.User(id); err == nil && u.Nickname != "" {
		return d.t(r, "desk.staff_named", map[string]any{"Name": tghtml.Escape(u.Nickname), "Staff": id})
	}
	return d.t(r, "desk.assigned_to", map[string]any{"Staff": id})
}

// age says how long ago a ticket arrived: in hours under a day.
func (d *Desk) age(lang string, received, now time.Time) string {
	since := now.Sub(received)
	switch {
	case since < time.Hour:
		return d.Tr.T(lang, "desk.age_now", nil)
	case since < 24*time.Hour:
		return d.Tr.N(lang, "desk.age_hours", int(since/time.Hour), nil)
	}
	return d.Tr.N(lang, "desk.age", valex.DaysSince(received, now), nil)
}

// snippetLen is how much of a ticket's text the list shows.
const snippetLen = 48

// snippet is the start of a ticket's text on one line, for the list.
func (d *Desk) snippet(id uint64) string {
	t, err := d.Store.Ticket(id)
	if err != nil || strings.TrimSpace(t.Text) == "" {
		return "—"
	}
	text := strings.Join(strings.Fields(t.Text), " ")
	if utf8.RuneCountInString(text) > snippetLen {
		text = string([]rune(text)[:snippetLen]) + "…"
	}
	return tghtml.Escape(text)
}
