package desk

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex"
)

// TicketStore is the part of the store ticket workflows change.
type TicketStore interface {
	Ticket(id uint64) (valex.Request, error)
	UpdateTicket(id uint64, by int64, at time.Time, fn func(*valex.Request) ([]valex.AuditEntry, error)) (valex.Request, error)
	Hold(userID int64) (held bool, since time.Time, err error)
	UserTicketStatuses(userID int64) (map[uint64]valex.RequestStatus, error)
	PlaceHold(userID, by int64, at time.Time, reason string) (placed bool, err error)
	SetHold(userID int64, held bool, by int64, at time.Time) error
	UpdateUser(id int64, fn func(*valex.User) error) (valex.User, error)
}

// Tickets run a ticket through its life: every change is one store
// transaction with its history step and audit entry. What the user and
// staff are told is the caller's (handlers.Desk) to say.

// Ticket loads a ticket; a missing one is a message for staff.
func (s *Service) Ticket(id uint64) (valex.Request, error) {
	t, err := s.Tickets.Ticket(id)
	if errors.Is(err, valex.ErrNotFound) {
		return t, valex.Errorf("desk.no_such_ticket", map[string]any{"ID": id})
	}
	return t, err
}

// Update changes a ticket as staff member by in one transaction.
func (s *Service) Update(id uint64, by int64, fn func(t *valex.Request, now time.Time) ([]valex.AuditEntry, error)) (valex.Request, error) {
	now := s.Clock.Now()
	t, err := s.Tickets.UpdateTicket(id, by, now, func(t *valex.Request) ([]valex.AuditEntry, error) { return fn(t, now) })
	if errors.Is(err, valex.ErrNotFound) {
		return t, valex.Errorf("desk.no_such_ticket", map[string]any{"ID": id})
	}
	return t, err
}

// Transition moves a ticket to another status as staff member by, with a
// note (a rejection's reason, a hold's reason).
func (s *Service) Transition(id uint64, by int64, to valex.RequestStatus, note string) (valex.Request, error) {
	if to == valex.StatusOnHold && by != 0 && strings.TrimSpace(note) == "" {
		return valex.Request{}, valex.Errorf("desk.reason_required", nil) // staff say why they hold
	}
	return s.Update(id, by, func(t *valex.Request, now time.Time) ([]valex.AuditEntry, error) {
		return nil, t.Transition(to, by, note, now)
	})
}

// Take assigns an open ticket to staff member by (recorded in its history)
// and starts it if it was new.
func (s *Service) Take(id uint64, by int64) (valex.Request, error) {
	return s.Update(id, by, func(t *valex.Request, now time.Time) ([]valex.AuditEntry, error) {
		if !t.Status.Open() {
			return nil, valex.Errorf("desk.closed", nil)
		}
		t.AssigneeID = by
		t.Record(valex.ActionTake, by, now)
		if t.Status == valex.StatusNew {
			return nil, t.Transition(valex.StatusInProgress, by, "", now)
		}
		return nil, nil
	})
}

// Extend moves a ticket's deadline once, by the given time, with a reason.
func (s *Service) Extend(id uint64, by int64, extendBy time.Duration, reason string) (valex.Request, error) {
	return s.Update(id, by, func(t *valex.Request, now time.Time) ([]valex.AuditEntry, error) {
		return nil, t.Extend(t.DueAt.Add(extendBy), reason, by, now, s.SLA)
	})
}

// checkText bounds a message's length.
func checkText(text string) error {
	if n := utf8.RuneCountInString(text); n > valex.MaxRequestTextLen {
		return valex.Errorf("desk.too_long", map[string]any{"Max": valex.MaxRequestTextLen, "Count": n})
	}
	return nil
}

// AddUserMessage adds the requester's message to their open ticket; a
// ticket that waited for them goes back to staff.
func (s *Service) AddUserMessage(id uint64, userID int64, text string) (valex.Request, error) {
	text = strings.TrimSpace(text)
	if err := checkText(text); err != nil {
		return valex.Request{}, err
	}
	return s.Update(id, 0, func(t *valex.Request, now time.Time) ([]valex.AuditEntry, error) {
		if !t.Status.Open() {
			return nil, valex.Errorf("desk.closed_reply", map[string]any{"ID": t.ID})
		}
		t.Messages = append(t.Messages, valex.RequestMessage{At: now, AuthorID: userID, Text: text})
		if t.Status == valex.StatusWaitingUser {
			return nil, t.Transition(valex.StatusInProgress, 0, "", now)
		}
		return nil, nil
	})
}

// CheckStaffReply says whether staff may reply to a ticket now (open, with
// a requester), before the reply is sent.
func (s *Service) CheckStaffReply(id uint64, text string) (valex.Request, error) {
	if err := checkText(strings.TrimSpace(text)); err != nil {
		return valex.Request{}, err
	}
	t, err := s.Ticket(id)
	if err != nil {
		return t, err
	}
	if !t.Status.Open() || t.UserID == 0 {
		return t, valex.Errorf("desk.closed", nil)
	}
	return t, nil
}

// RecordStaffReply records a reply that reached the requester: the ticket
// is the replier's if nobody had it, and waits for the user.
func (s *Service) RecordStaffReply(id uint64, by int64, text string) (valex.Request, error) {
	return s.Update(id, by, func(t *valex.Request, now time.Time) ([]valex.AuditEntry, error) {
		t.Messages = append(t.Messages, valex.RequestMessage{At: now, FromStaff: true, AuthorID: by, Text: strings.TrimSpace(text)})
		if t.AssigneeID == 0 {
			t.AssigneeID = by
		}
		if t.Status == valex.StatusNew || t.Status == valex.StatusInProgress {
			return nil, t.Transition(valex.StatusWaitingUser, by, "", now)
		}
		return nil, nil
	})
}

// Held reports whether a user's data is under a legal hold, or under
// another ticket of theirs on hold (a dispute), except the ticket except.
func (s *Service) Held(userID int64, except uint64) (bool, error) {
	held, _, err := s.Tickets.Hold(userID)
	if err != nil || held {
		return held, err
	}
	statuses, err := s.Tickets.UserTicketStatuses(userID)
	if err != nil {
		return false, err
	}
	for id, st := range statuses {
		if st == valex.StatusOnHold && id != except {
			return true, nil
		}
	}
	return false, nil
}

// CompleteErasure is staff member by confirming an erasure request: unless
// a hold stands, the history names who confirmed, and the erasure routine
// erases the account and closes the ticket.
func (s *Service) CompleteErasure(ctx context.Context, t valex.Request, by int64) (map[string]int, error) {
	if t.UserID == 0 || !t.Status.Open() {
		return nil, valex.Errorf("desk.closed", nil)
	}
	if t.Status == valex.StatusOnHold {
		return nil, valex.Errorf("desk.resume_first", nil)
	}
	held, err := s.Held(t.UserID, t.ID)
	if err != nil {
		return nil, err
	}
	if held {
		return nil, valex.Errorf("desk.erase_still_held", nil)
	}
	if _, err := s.Update(t.ID, by, func(t *valex.Request, now time.Time) ([]valex.AuditEntry, error) {
		t.Record(valex.ActionConfirmErasure, by, now)
		return nil, nil
	}); err != nil {
		return nil, err
	}
	return s.Eraser.Erase(ctx, t.UserID, t.ID, s.Clock.Now())
}

// Correct sets a profile field of a correction request's requester, as
// staff member by: the history and the audit trail name the field, never
// the value.
func (s *Service) Correct(id uint64, by int64, field valex.ProfileField, value string) (valex.Request, error) {
	v, err := valex.ValidateProfileField(field, value)
	if err != nil {
		return valex.Request{}, err
	}
	t, err := s.Ticket(id)
	if err != nil {
		return t, err
	}
	if t.Kind != valex.KindRectification || t.UserID == 0 || !t.Status.Open() {
		return t, valex.Errorf("desk.closed", nil)
	}
	if _, err := s.Tickets.UpdateUser(t.UserID, func(u *valex.User) error { u.Apply(field, v); return nil }); err != nil {
		return t, err
	}
	return s.Update(id, by, func(t *valex.Request, now time.Time) ([]valex.AuditEntry, error) {
		t.Record(valex.ActionCorrected+":"+string(field), by, now)
		return []valex.AuditEntry{{Action: valex.AuditCorrected, Detail: "field=" + string(field), Actor: by, At: now}}, nil
	})
}

// PlaceHold puts a legal hold on an account, with a reason; it reports
// false when one already stands.
func (s *Service) PlaceHold(userID, by int64, reason string) (bool, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return false, valex.Errorf("desk.hold_reason_required", nil)
	}
	if err := checkText(reason); err != nil {
		return false, err
	}
	placed, err := s.Tickets.PlaceHold(userID, by, s.Clock.Now(), reason)
	if errors.Is(err, valex.ErrNotFound) {
		return false, valex.Errorf("desk.no_such_user", map[string]any{"User": userID})
	}
	return placed, err
}

// LiftHold lifts a legal hold; it reports since when the hold stood, and
// refuses when there is none.
func (s *Service) LiftHold(userID, by int64) (since time.Time, err error) {
	held, since, err := s.Tickets.Hold(userID)
	if err != nil {
		return since, err
	}
	if !held {
		return since, valex.Errorf("desk.not_held", map[string]any{"User": userID})
	}
	return since, s.Tickets.SetHold(userID, false, by, s.Clock.Now())
}
