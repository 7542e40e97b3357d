// Package desk is the privacy desk's service layer: the workflows that
// Telegram handlers and cron jobs both call — opening tickets, deadline
// reminders, the staff digest, breach incident reminders, broadcasts and
// their deliveries, the inactivity erasure. It decides what happens and to
// whom; a Notifier (handlers.Desk's, the Telegram side) renders the texts
// and sends them. Nothing here knows Telegram, and no job calls a handler.
package desk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
)

// Store is the part of the store the service needs.
type Store interface {
	CreateTicket(t valex.Request) (valex.Request, error)
	OpenTickets(kind valex.RequestKind, status valex.RequestStatus, offset, limit int) ([]valex.Request, int, error)
	DueOpenTickets(before time.Time, fn func(t valex.Request, marks map[string]bool) error) (int, error)
	ClaimReminder(ticketID uint64, key string, at time.Time) (bool, error)
	ReleaseReminder(ticketID uint64, key string) error
	AppendAudit(ticketID uint64, e valex.AuditEntry) (valex.AuditEntry, error)

	Audience() ([]valex.User, error)
	ConsentState(userID int64) (valex.ConsentState, error)
	DeliveredTo(noticeID uint64, statuses ...valex.DeliveryStatus) (map[int64]bool, error)
	RecordDelivery(d valex.Delivery) error
	// Broadcasts claim users before sending and record outcomes in
	// batches (broadcast.go).
	ClaimDeliveries(noticeID uint64, userIDs []int64, at time.Time) ([]int64, error)
	RecordDeliveries(ds []valex.Delivery) error
	ReleaseClaims(noticeID uint64, userIDs []int64) error
	ExpireClaims(noticeID uint64, at time.Time) (int, error)
	FinishNotice(id uint64, at time.Time) (valex.Notice, error)
	UnfinishedNotices() ([]valex.Notice, error)
	UndeliveredBreaches(userID int64) ([]valex.Notice, error)

	OpenIncidents() ([]valex.Notice, map[uint64]map[string]bool, error)
	ClaimIncidentReminder(noticeID uint64, key string) (bool, error)
}

// Notifier renders and sends what the service decided.
type Notifier interface {
	// TicketReminder tells the ticket's assignee (or every staff member)
	// about its deadline and returns how many got the message.
	TicketReminder(ctx context.Context, t valex.Request, m valex.Reminder) int
	// Digest sends one staff member the open tickets.
	Digest(ctx context.Context, staffID int64, d Digest) error
	// IncidentReminder tells one admin a breach notification is due soon
	// or overdue; it reports whether the message went out.
	IncidentReminder(ctx context.Context, adminID int64, n valex.Notice, dl valex.IncidentDeadline, overdue bool) bool
	// Notice sends one user a notice; it returns what became of it. An
	// error is for a stop (or a notice that cannot be sent at all); it
	// wraps ErrNotSent when the message surely did not leave.
	Notice(ctx context.Context, n valex.Notice, u valex.User) (valex.DeliveryStatus, error)
	// NoticeReport tells the admin who started a broadcast its totals.
	NoticeReport(ctx context.Context, to int64, n valex.Notice)
}

// Roster says who the staff are.
type Roster interface {
	Staff() []int64  // support and admins, in id order
	Admins() []int64 // in id order
}

// Eraser erases accounts (privacy.Eraser).
type Eraser interface {
	Erase(ctx context.Context, userID int64, ticket uint64, at time.Time) (map[string]int, error)
}

// Service runs the desk's workflows. Set every field before use.
type Service struct {
	Store   Store
	Tickets TicketStore
	Notify  Notifier
	Roster  Roster
	Eraser  Eraser
	Clock   valex.Clock
	SLA     valex.SLAPolicy
	Log     zerolog.Logger
	// Broadcasts tunes the broadcast sender (broadcast.go).
	Broadcasts BroadcastConfig

	broadcasts sync.WaitGroup
}

// Open records a new ticket received at receivedAt, with its deadline.
// source is the Telegram update that asked for it (0: none): a replay of
// that update returns the ticket it opened, marked Replayed.
func (s *Service) Open(kind valex.RequestKind, userID int64, text string, receivedAt time.Time, source int64) (valex.Request, error) {
	t, err := valex.NewRequest(kind, userID, text, receivedAt, s.SLA)
	if err != nil {
		return t, err
	}
	t.SourceUpdate = source
	return s.Store.CreateTicket(t)
}

// Tracked reports whether requests of kind k run against a deadline, with
// staff alerts and reminders. Feedback does not, unless the configuration
// gives it a deadline of its own: it is not a privacy request, and closes
// when answered or after a quiet period (jobs.CloseFeedback).
func (s *Service) Tracked(k valex.RequestKind) bool {
	if k != valex.KindFeedback {
		return true
	}
	_, rule := s.SLA.KindRules[k]
	return rule || s.SLA.PerKind[k] > 0
}

// EraseInactive erases an account the inactivity rule reached (policy
// section 8), through an erasure request like /forget, so it is tracked and
// audited the same way.
func (s *Service) EraseInactive(ctx context.Context, userID int64, at time.Time) error {
	t, err := s.Open(valex.KindErasure, userID, "", at, 0)
	if err != nil {
		return err
	}
	_, err = s.Eraser.Erase(ctx, userID, t.ID, at)
	return err
}

// Reminders alerts staff about deadlines: 7, 3 and 1 days before and once
// overdue, each exactly once per deadline (the store keeps the marks). It
// visits only the tickets due within 7 days.
func (s *Service) Reminders(ctx context.Context) (visited, sent int, err error) {
	now := s.Clock.Now()
	horizon := now.Add(time.Duration(valex.ReminderMarks[0])*24*time.Hour + time.Nanosecond)
	var failed []error
	visited, err = s.Store.DueOpenTickets(horizon, func(t valex.Request, marks map[string]bool) error {
		if !s.Tracked(t.Kind) {
			return nil // feedback has no deadline to be reminded of
		}
		for _, m := range valex.DueReminders(t, now, marks) {
			if err := ctx.Err(); err != nil {
				return err
			}
			ok, err := s.Store.ClaimReminder(t.ID, m.Key(), now)
			if err != nil {
				return err
			}
			if !ok {
				continue // another pass got there first
			}
			if s.Notify.TicketReminder(ctx, t, m) == 0 {
				failed = append(failed, fmt.Errorf("reminder %s of ticket %d reached no staff member", m.Key(), t.ID))
				if err := s.Store.ReleaseReminder(t.ID, m.Key()); err != nil {
					return err
				}
				continue
			}
			if _, err := s.Store.AppendAudit(t.ID, valex.AuditEntry{At: now, Action: valex.AuditReminded, Detail: m.Key()}); err != nil {
				return err
			}
			sent++
		}
		return nil
	})
	if err != nil {
		return visited, sent, fmt.Errorf("send reminders: %w", err)
	}
	return visited, sent, errors.Join(failed...)
}

// ReminderJob is Reminders for the jobs scheduler.
func (s *Service) ReminderJob(ctx context.Context) (string, error) {
	visited, sent, err := s.Reminders(ctx)
	return fmt.Sprintf("visited %d tickets due within 7 days, sent %d reminders", visited, sent), err
}

// DigestSize is how many tickets the daily digest lists.
const DigestSize = 15

// Digest is what the daily digest shows a staff member.
type Digest struct {
	Total, Overdue, DueThisWeek int
	Top                         []valex.Request // the most urgent, at most DigestSize
	Now                         time.Time
}

// SendDigest sends every staff member the open tickets. With nothing open
// nobody is disturbed.
func (s *Service) SendDigest(ctx context.Context) (sent int, err error) {
	now := s.Clock.Now()
	top, total, err := s.Store.OpenTickets("", "", 0, DigestSize)
	if err != nil || total == 0 {
		return 0, err
	}
	count := func(valex.Request, map[string]bool) error { return nil }
	overdue, err := s.Store.DueOpenTickets(now, count)
	if err != nil {
		return 0, fmt.Errorf("digest: %w", err)
	}
	week, err := s.Store.DueOpenTickets(now.Add(7*24*time.Hour), count)
	if err != nil {
		return 0, fmt.Errorf("digest: %w", err)
	}
	d := Digest{Total: total, Overdue: overdue, DueThisWeek: week - overdue, Top: top, Now: now}
	var failed []error
	for _, id := range s.Roster.Staff() {
		if err := s.Notify.Digest(ctx, id, d); err != nil {
			failed = append(failed, fmt.Errorf("digest to staff %d: %w", id, err))
			continue
		}
		sent++
	}
	return sent, errors.Join(failed...)
}

// DigestJob is SendDigest for the jobs scheduler.
func (s *Service) DigestJob(ctx context.Context) (string, error) {
	sent, err := s.SendDigest(ctx)
	return fmt.Sprintf("digest sent to %d staff members", sent), err
}

// RemindIncidents reminds every admin of a breach incident's notification
// BreachRemindBefore its deadline and once overdue, each reminder once.
func (s *Service) RemindIncidents(ctx context.Context) (open, reminded int, err error) {
	incidents, sent, err := s.Store.OpenIncidents()
	if err != nil {
		return 0, 0, err
	}
	now := s.Clock.Now()
	for _, n := range incidents {
		for _, dl := range n.Breach.Deadlines() {
			key := valex.IncidentReminder(dl, now, sent[n.ID])
			if key == "" {
				continue
			}
			ok, err := s.Store.ClaimIncidentReminder(n.ID, key)
			if err != nil {
				return len(incidents), reminded, err
			}
			if !ok {
				continue
			}
			for _, admin := range s.Roster.Admins() {
				if s.Notify.IncidentReminder(ctx, admin, n, dl, now.After(dl.Due)) {
					reminded++
				}
			}
		}
	}
	return len(incidents), reminded, nil
}

// IncidentReminderJob is RemindIncidents for the jobs scheduler.
func (s *Service) IncidentReminderJob(ctx context.Context) (string, error) {
	open, reminded, err := s.RemindIncidents(ctx)
	return fmt.Sprintf("open incidents: %d, reminders sent: %d", open, reminded), err
}
