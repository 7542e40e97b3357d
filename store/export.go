package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// Export and erasure walk the same categories, so what /mydata shows and
// what /forget removes cannot drift apart. Category names are the keys of
// the export document and of the counts recorded in the audit trail.
const (
	CategoryProfile      = "profile"          // the user record's personal fields
	CategorySettings     = "settings"         // language, pending dialog, legal hold
	CategoryConsents     = "consents"         // consent events
	CategoryRestrictions = "restrictions"     // restriction and objection events
	CategoryRequests     = "requests"         // desk tickets
	CategoryMessages     = "request_messages" // messages on those tickets
	CategoryAudit        = "audit"            // audit entries of those tickets
	CategoryNotices      = "notices"          // broadcast deliveries
)

type exportProfile struct {
	TelegramID   int64      `json:"telegram_id"`
	Nickname     string     `json:"nickname"`
	City         string     `json:"city"`
	Description  string     `json:"description"`
	Email        string     `json:"email"`
	Phone        string     `json:"phone"`
	CreatedAt    *time.Time `json:"created_at,omitempty"`
	LastActiveAt *time.Time `json:"last_active_at,omitempty"`
}

type exportSettings struct {
	Language       string     `json:"language"`
	PendingDialog  string     `json:"pending_dialog,omitempty"`
	LegalHoldSince *time.Time `json:"legal_hold_since,omitempty"`
}

type exportConsent struct {
	Kind          string    `json:"kind"`
	Granted       bool      `json:"granted"`
	At            time.Time `json:"at"`
	PolicyVersion string    `json:"policy_version"`
	Source        string    `json:"source,omitempty"`
}

type exportRestriction struct {
	Kind          string    `json:"kind"`
	Active        bool      `json:"active"`
	At            time.Time `json:"at"`
	PolicyVersion string    `json:"policy_version"`
	Source        string    `json:"source,omitempty"`
}

type exportMessage struct {
	At   time.Time `json:"at"`
	From string    `json:"from"` // you, staff
	Text string    `json:"text"`
}

type exportChange struct {
	At   time.Time `json:"at"`
	By   string    `json:"by"` // you, staff, system
	From string    `json:"from"`
	To   string    `json:"to"`
	Note string    `json:"note,omitempty"`
}

// exportTicket names no staff member: their ids are their personal data,
// not the requester's.
type exportTicket struct {
	ID            uint64          `json:"id"`
	Kind          string          `json:"kind"`
	Status        string          `json:"status"`
	Text          string          `json:"text,omitempty"`
	ReceivedAt    time.Time       `json:"received_at"`
	DueAt         time.Time       `json:"due_at"`
	OriginalDueAt *time.Time      `json:"original_due_at,omitempty"`
	Extended      bool            `json:"extended"`
	ExtendReason  string          `json:"extend_reason,omitempty"`
	Assigned      bool            `json:"assigned"`
	ClosedAt      *time.Time      `json:"closed_at,omitempty"`
	Resolution    string          `json:"resolution,omitempty"`
	RejectReason  string          `json:"reject_reason,omitempty"`
	Messages      []exportMessage `json:"messages"`
	History       []exportChange  `json:"history"`
}

type exportAudit struct {
	TicketID uint64    `json:"ticket_id"`
	Seq      uint64    `json:"seq"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"` // staff, system
	Action   string    `json:"action"`
	Detail   string    `json:"detail,omitempty"`
}

type exportNotice struct {
	NoticeID uint64    `json:"notice_id"`
	Kind     string    `json:"kind"`
	Status   string    `json:"status"`
	At       time.Time `json:"at"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Export returns everything the store holds about one user, by category,
// ready for encoding/json, and how many items each category has. It reads
// in one transaction, so the export is a consistent snapshot. Only the
// user's own records are read: other users' tickets, consents and
// deliveries live under other key prefixes.
func (db *DB) Export(userID int64) (data map[string]any, counts map[string]int, err error) {
	data, counts = map[string]any{}, map[string]int{}
	err = db.view(func(tx *bbolt.Tx) error {
		u, err := db.getUser(tx, userID)
		switch {
		case err == nil:
			p := exportProfile{TelegramID: u.ID, Nickname: u.Nickname, City: u.City, Description: u.Description,
				Email: u.Email, Phone: u.Phone, CreatedAt: optTime(u.CreatedAt), LastActiveAt: optTime(u.LastActiveAt)}
			data[CategoryProfile] = p
			counts[CategoryProfile] = profileFields(u)
			s := exportSettings{Language: u.Language, PendingDialog: string(tx.Bucket(bucketStates).Get(idKey(userID)))}
			if v := tx.Bucket(bucketHolds).Get(idKey(userID)); v != nil {
				t := holdSince(v)
				s.LegalHoldSince = &t
			}
			data[CategorySettings] = s
			counts[CategorySettings] = 1
		case !errors.Is(err, valex.ErrNotFound):
			return err
		}

		cs, rs, err := consentEvents(tx, userID)
		if err != nil {
			return err
		}
		consents := make([]exportConsent, 0, len(cs))
		for _, e := range cs {
			consents = append(consents, exportConsent{Kind: string(e.Kind), Granted: e.Granted, At: e.At, PolicyVersion: e.PolicyVersion, Source: e.Source})
		}
		restrictions := make([]exportRestriction, 0, len(rs))
		for _, e := range rs {
			restrictions = append(restrictions, exportRestriction{Kind: string(e.Kind), Active: e.Active, At: e.At, PolicyVersion: e.PolicyVersion, Source: e.Source})
		}
		data[CategoryConsents], counts[CategoryConsents] = consents, len(consents)
		data[CategoryRestrictions], counts[CategoryRestrictions] = restrictions, len(restrictions)

		tickets := []exportTicket{}
		audit := []exportAudit{}
		counts[CategoryMessages] = 0 // listed even when there are none
		err = db.eachUserTicket(tx, userID, func(r valex.Request) error {
			tickets = append(tickets, exportTicketOf(r))
			counts[CategoryMessages] += len(r.Messages)
			entries, err := auditOf(tx, r.ID)
			if err != nil {
				return err
			}
			for _, e := range entries {
				audit = append(audit, exportAuditOf(e))
			}
			return nil
		})
		if err != nil {
			return err
		}
		data[CategoryRequests], counts[CategoryRequests] = tickets, len(tickets)
		data[CategoryAudit], counts[CategoryAudit] = audit, len(audit)

		ds, err := userDeliveries(tx, userID)
		if err != nil {
			return err
		}
		notices := make([]exportNotice, 0, len(ds))
		for _, d := range ds {
			notices = append(notices, exportNotice{NoticeID: d.NoticeID, Kind: string(d.Kind), Status: string(d.Status), At: d.At})
		}
		data[CategoryNotices], counts[CategoryNotices] = notices, len(notices)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("export user %d: %w", userID, err)
	}
	return data, counts, nil
}

func profileFields(u valex.User) int {
	n := 0
	for _, v := range []string{u.Nickname, u.City, u.Description, u.Email, u.Phone} {
		if v != "" {
			n++
		}
	}
	return n
}

func holdSince(v []byte) time.Time {
	// A hold record that does not decode still means "held"; its time is
	// then unknown.
	var h holdRecord
	_ = json.Unmarshal(v, &h)
	return fromUnixNano(h.At)
}

func exportTicketOf(r valex.Request) exportTicket {
	who := func(by int64, staff bool) string {
		switch {
		case staff:
			return "staff"
		case by == r.UserID:
			return "you"
		case by == 0:
			return "system"
		}
		return "staff"
	}
	t := exportTicket{
		ID: r.ID, Kind: string(r.Kind), Status: string(r.Status), Text: r.Text,
		ReceivedAt: r.ReceivedAt, DueAt: r.DueAt, Extended: r.Extended, ExtendReason: r.ExtendReason,
		Assigned: r.AssigneeID != 0, ClosedAt: optTime(r.ClosedAt), Resolution: r.Resolution, RejectReason: r.RejectReason,
		Messages: make([]exportMessage, 0, len(r.Messages)), History: make([]exportChange, 0, len(r.History)),
	}
	if !r.OriginalDueAt.Equal(r.DueAt) {
		t.OriginalDueAt = optTime(r.OriginalDueAt)
	}
	for _, m := range r.Messages {
		t.Messages = append(t.Messages, exportMessage{At: m.At, From: who(m.AuthorID, m.FromStaff), Text: m.Text})
	}
	for _, c := range r.History {
		t.History = append(t.History, exportChange{At: c.At, By: who(c.By, false), From: string(c.From), To: string(c.To), Note: c.Note})
	}
	return t
}

func exportAuditOf(e valex.AuditEntry) exportAudit {
	actor := "system"
	if e.Actor != 0 {
		actor = "staff"
	}
	detail := e.Detail
	if e.Action == valex.AuditAssigned {
		detail = "assignee=staff" // a staff member's id is not the requester's data
	}
	return exportAudit{TicketID: e.TicketID, Seq: e.Seq, At: e.At, Actor: actor, Action: e.Action, Detail: detail}
}

// eachUserTicket calls fn with each of a user's tickets, text included.
func (db *DB) eachUserTicket(tx *bbolt.Tx, userID int64, fn func(valex.Request) error) error {
	tickets := tx.Bucket(bucketTickets)
	prefix := idKey(userID)
	c := tx.Bucket(bucketTicketsByUser).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := binary.BigEndian.Uint64(k[8:])
		v := tickets.Get(k[8:])
		if v == nil {
			return fmt.Errorf("index names missing ticket %d", id)
		}
		r, err := db.decodeTicket(id, v)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}
