package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// Broadcast notices (policy updates, breach notices, marketing) and the
// policy versions they announce. A notice's record keeps its delivery
// totals, updated with every delivery in the same transaction, so the
// admin's summary never counts the whole table. Deliveries are keyed
// be(noticeID)‖be(userID) — one per user per notice, so a resumed
// broadcast can skip who already has it — with a per-user index
// be(userID)‖be(noticeID) for export and erasure.

type policyRecord struct {
	Version string `json:"v"`
	At      int64  `json:"t"`
	By      int64  `json:"b,omitempty"`
}

// AddPolicyVersion records a newly published policy version.
func (db *DB) AddPolicyVersion(p valex.PolicyVersion) error {
	if p.Version == "" || p.PublishedAt.IsZero() {
		return fmt.Errorf("add policy version: version and time are required")
	}
	v, err := json.Marshal(policyRecord{Version: p.Version, At: unixNano(p.PublishedAt), By: p.PublishedBy})
	if err != nil {
		return err
	}
	err = db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketPolicies)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(ticketKey(seq), v)
	})
	if err != nil {
		return fmt.Errorf("add policy version %q: %w", p.Version, err)
	}
	return nil
}

// PolicyVersions returns the published versions, oldest first.
func (db *DB) PolicyVersions() ([]valex.PolicyVersion, error) {
	var out []valex.PolicyVersion
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketPolicies).ForEach(func(_, v []byte) error {
			var r policyRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, valex.PolicyVersion{Version: r.Version, PublishedAt: fromUnixNano(r.At), PublishedBy: r.By})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list policy versions: %w", err)
	}
	return out, nil
}

// LatestPolicyVersion returns the most recently published version; ok is
// false when none was recorded (the configuration's version applies).
func (db *DB) LatestPolicyVersion() (p valex.PolicyVersion, ok bool, err error) {
	err = db.view(func(tx *bbolt.Tx) error {
		_, v := tx.Bucket(bucketPolicies).Cursor().Last()
		if v == nil {
			return nil
		}
		var r policyRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		p, ok = valex.PolicyVersion{Version: r.Version, PublishedAt: fromUnixNano(r.At), PublishedBy: r.By}, true
		return nil
	})
	if err != nil {
		return p, false, fmt.Errorf("load policy version: %w", err)
	}
	return p, ok, nil
}

type noticeRecord struct {
	Kind     string         `json:"k"`
	Text     string         `json:"x,omitempty"`
	UserIDs  []int64        `json:"u,omitempty"`
	Created  int64          `json:"t"`
	By       int64          `json:"b,omitempty"`
	Finished int64          `json:"f,omitempty"`
	Totals   map[string]int `json:"n,omitempty"`
	Breach   *breachRecord  `json:"br,omitempty"`
}

// breachRecord is a breach incident (valex.BreachReport). Its texts are the
// operator's description of the incident, not a user's personal data.
type breachRecord struct {
	Detected     int64           `json:"d"`
	Nature       string          `json:"na"`
	Categories   string          `json:"ca,omitempty"`
	Affected     string          `json:"af,omitempty"`
	Consequences string          `json:"co"`
	Measures     string          `json:"me"`
	Contact      string          `json:"ct"`
	AuthorityAt  int64           `json:"aa,omitempty"`
	AuthorityBy  int64           `json:"ab,omitempty"`
	RegulatorAt  int64           `json:"ra,omitempty"`
	RegulatorBy  int64           `json:"rb,omitempty"`
	Reminded     map[string]bool `json:"rm,omitempty"` // reminder keys sent
}

func (r noticeRecord) notice(id uint64) valex.Notice {
	n := valex.Notice{ID: id, Kind: valex.NoticeKind(r.Kind), Text: r.Text, UserIDs: r.UserIDs,
		CreatedAt: fromUnixNano(r.Created), CreatedBy: r.By, FinishedAt: fromUnixNano(r.Finished),
		Totals: map[valex.DeliveryStatus]int{}}
	for k, v := range r.Totals {
		n.Totals[valex.DeliveryStatus(k)] = v
	}
	if b := r.Breach; b != nil {
		n.Breach = &valex.BreachReport{DetectedAt: fromUnixNano(b.Detected), Nature: b.Nature, Categories: b.Categories,
			Affected: b.Affected, Consequences: b.Consequences, Measures: b.Measures, Contact: b.Contact,
			AuthorityNotifiedAt: fromUnixNano(b.AuthorityAt), AuthorityNotifiedBy: b.AuthorityBy,
			RegulatorNotifiedAt: fromUnixNano(b.RegulatorAt), RegulatorNotifiedBy: b.RegulatorBy}
	}
	return n
}

func breachOf(b *valex.BreachReport) *breachRecord {
	if b == nil {
		return nil
	}
	return &breachRecord{Detected: unixNano(b.DetectedAt), Nature: b.Nature, Categories: b.Categories, Affected: b.Affected,
		Consequences: b.Consequences, Measures: b.Measures, Contact: b.Contact}
}

// OpenIncidents returns the breach incidents that still owe a notification
// to an authority, oldest first, with the reminder keys already sent.
func (db *DB) OpenIncidents() ([]valex.Notice, map[uint64]map[string]bool, error) {
	var out []valex.Notice
	sent := map[uint64]map[string]bool{}
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketNotices).ForEach(func(k, v []byte) error {
			var rec noticeRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			if rec.Breach == nil {
				return nil
			}
			n := rec.notice(binary.BigEndian.Uint64(k))
			if n.Breach.Open() {
				out = append(out, n)
				sent[n.ID] = rec.Breach.Reminded
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list open incidents: %w", err)
	}
	return out, sent, nil
}

// ClaimIncidentReminder records that a reminder about an incident is being
// sent; false when it already was.
func (db *DB) ClaimIncidentReminder(noticeID uint64, key string) (bool, error) {
	claimed := false
	err := db.update(func(tx *bbolt.Tx) error {
		rec, err := getNotice(tx, noticeID)
		if err != nil || rec.Breach == nil {
			return errors.Join(err, valex.ErrNotFound)
		}
		if rec.Breach.Reminded[key] {
			return nil
		}
		if rec.Breach.Reminded == nil {
			rec.Breach.Reminded = map[string]bool{}
		}
		rec.Breach.Reminded[key], claimed = true, true
		return putNotice(tx, noticeID, rec)
	})
	if err != nil {
		return false, fmt.Errorf("claim reminder %s of incident %d: %w", key, noticeID, err)
	}
	return claimed, nil
}

// MarkIncidentNotified records that the authority (valex.IncidentAuthority)
// or the regulator (valex.IncidentRegulator) was told about an incident, by
// whom and when, on the incident and on the system audit trail. Marking it
// again changes nothing.
func (db *DB) MarkIncidentNotified(noticeID uint64, which string, by int64, at time.Time) (valex.Notice, error) {
	var n valex.Notice
	err := db.update(func(tx *bbolt.Tx) error {
		rec, err := getNotice(tx, noticeID)
		if err != nil {
			return err
		}
		if rec.Breach == nil {
			return valex.ErrNotFound
		}
		b := rec.Breach
		switch which {
		case valex.IncidentAuthority:
			if b.AuthorityAt != 0 {
				n = rec.notice(noticeID)
				return nil
			}
			b.AuthorityAt, b.AuthorityBy = unixNano(at), by
		case valex.IncidentRegulator:
			if b.RegulatorAt != 0 {
				n = rec.notice(noticeID)
				return nil
			}
			b.RegulatorAt, b.RegulatorBy = unixNano(at), by
		default:
			return fmt.Errorf("unknown notification %q", which)
		}
		if err := putNotice(tx, noticeID, rec); err != nil {
			return err
		}
		n = rec.notice(noticeID)
		_, err = db.appendAudit(tx, valex.AuditEntry{TicketID: valex.SystemTrail, At: at, Actor: by,
			Action: valex.AuditIncidentNotified, Detail: fmt.Sprintf("notice=%d,to=%s", noticeID, which)})
		return err
	})
	if err != nil {
		return valex.Notice{}, fmt.Errorf("mark incident %d notified: %w", noticeID, err)
	}
	return n, nil
}

// UndeliveredBreaches returns the breach notices a user has not received
// because they had blocked the bot (or delivery failed): when they come
// back, they get them.
func (db *DB) UndeliveredBreaches(userID int64) ([]valex.Notice, error) {
	if db.breaches.Load() == breachesNone {
		return nil, nil // asked on every update: no read while no breach was ever notified
	}
	var out []valex.Notice
	err := db.view(func(tx *bbolt.Tx) error {
		if db.breaches.Load() == breachesUnknown && !anyBreachNotice(tx) {
			db.breaches.CompareAndSwap(breachesUnknown, breachesNone) // unless one was created meanwhile
			return nil
		}
		ds, err := userDeliveries(tx, userID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Kind != valex.NoticeBreach || (d.Status != valex.DeliveryBlocked && d.Status != valex.DeliveryFailed) {
				continue
			}
			rec, err := getNotice(tx, d.NoticeID)
			if err != nil {
				return err
			}
			out = append(out, rec.notice(d.NoticeID))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("undelivered breach notices of user %d: %w", userID, err)
	}
	return out, nil
}

// CreateNotice records a broadcast before its first delivery and gives it
// the next id.
func (db *DB) CreateNotice(n valex.Notice) (valex.Notice, error) {
	if n.ID != 0 || !n.Kind.Valid() || n.CreatedAt.IsZero() {
		return valex.Notice{}, fmt.Errorf("create notice: kind %q: not a new notice", n.Kind)
	}
	rec := noticeRecord{Kind: string(n.Kind), Text: n.Text, UserIDs: n.UserIDs, Created: unixNano(n.CreatedAt), By: n.CreatedBy,
		Breach: breachOf(n.Breach)}
	source := n.SourceUpdate
	var started uint64 // the notice this update started before, if any
	if n.Kind == valex.NoticeBreach {
		db.breaches.Store(breachesSome) // before the commit: UndeliveredBreaches reads from now on
	}
	err := db.update(func(tx *bbolt.Tx) error {
		byUpdate := tx.Bucket(bucketNoticesByUpdate)
		if source > 0 {
			if v := byUpdate.Get(idKey(source)); len(v) == 8 {
				started = binary.BigEndian.Uint64(v)
				return nil
			}
		}
		b := tx.Bucket(bucketNotices)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		n = rec.notice(id)
		if err := b.Put(ticketKey(id), v); err != nil {
			return err
		}
		if source > 0 {
			if err := byUpdate.Put(idKey(source), ticketKey(id)); err != nil {
				return err
			}
		}
		return db.auditNotice(tx, n)
	})
	if err != nil {
		return valex.Notice{}, fmt.Errorf("create %s notice: %w", n.Kind, err)
	}
	if started != 0 {
		n, err := db.Notice(started)
		if err != nil {
			return valex.Notice{}, fmt.Errorf("create notice: the notice update %d started: %w", source, err)
		}
		n.Replayed = true
		return n, nil
	}
	n.SourceUpdate = source
	return n, nil
}

// NoticeOfUpdate returns the notice a Telegram update started, if any.
func (db *DB) NoticeOfUpdate(update int64) (valex.Notice, bool, error) {
	var id uint64
	err := db.view(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketNoticesByUpdate).Get(idKey(update)); len(v) == 8 {
			id = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil || id == 0 || update <= 0 {
		return valex.Notice{}, false, err
	}
	n, err := db.Notice(id)
	if err != nil {
		return valex.Notice{}, false, fmt.Errorf("the notice update %d started: %w", update, err)
	}
	n.SourceUpdate, n.Replayed = update, true
	return n, true, nil
}

// Notice returns a notice with its delivery totals.
func (db *DB) Notice(id uint64) (valex.Notice, error) {
	var n valex.Notice
	err := db.view(func(tx *bbolt.Tx) error {
		rec, err := getNotice(tx, id)
		n = rec.notice(id)
		return err
	})
	if err != nil {
		return valex.Notice{}, fmt.Errorf("load notice %d: %w", id, err)
	}
	return n, nil
}

// Whether a breach notice was ever created, so UndeliveredBreaches, asked
// on every update, can skip its read while none was (DB.breaches).
const (
	breachesUnknown int32 = iota // not looked yet
	breachesNone
	breachesSome
)

// anyBreachNotice reports whether the notices hold a breach notice.
func anyBreachNotice(tx *bbolt.Tx) bool {
	found := false
	_ = tx.Bucket(bucketNotices).ForEach(func(_, v []byte) error {
		var rec noticeRecord
		if json.Unmarshal(v, &rec) != nil || rec.Kind == string(valex.NoticeBreach) {
			found = true // unreadable: assume the worst
			return errStopScan
		}
		return nil
	})
	return found
}

var errStopScan = errors.New("stop scan")

func getNotice(tx *bbolt.Tx, id uint64) (noticeRecord, error) {
	var rec noticeRecord
	v := tx.Bucket(bucketNotices).Get(ticketKey(id))
	if v == nil {
		return rec, valex.ErrNotFound
	}
	err := json.Unmarshal(v, &rec)
	return rec, err
}

func putNotice(tx *bbolt.Tx, id uint64, rec noticeRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketNotices).Put(ticketKey(id), v)
}

// FinishNotice marks a broadcast as done and returns its totals.
func (db *DB) FinishNotice(id uint64, at time.Time) (valex.Notice, error) {
	var n valex.Notice
	err := db.update(func(tx *bbolt.Tx) error {
		rec, err := getNotice(tx, id)
		if err != nil {
			return err
		}
		rec.Finished = unixNano(at)
		n = rec.notice(id)
		return putNotice(tx, id, rec)
	})
	if err != nil {
		return valex.Notice{}, fmt.Errorf("finish notice %d: %w", id, err)
	}
	return n, nil
}

// UnfinishedNotices returns the broadcasts a stop interrupted, oldest first.
func (db *DB) UnfinishedNotices() ([]valex.Notice, error) {
	var out []valex.Notice
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketNotices).ForEach(func(k, v []byte) error {
			var rec noticeRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			if rec.Finished == 0 {
				out = append(out, rec.notice(binary.BigEndian.Uint64(k)))
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list unfinished notices: %w", err)
	}
	return out, nil
}

type deliveryRecord struct {
	Status string `json:"s"`
	At     int64  `json:"t"`
}

// RecordDelivery records what became of a notice for one user and updates
// the notice's totals. A later record for the same user (a resumed
// broadcast) replaces the earlier one in the totals too.
func (db *DB) RecordDelivery(d valex.Delivery) error {
	if !d.Status.Valid() || d.UserID == 0 {
		return fmt.Errorf("record delivery of notice %d: user %d, status %q", d.NoticeID, d.UserID, d.Status)
	}
	err := db.update(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, d.UserID); err != nil {
			return err // erased while the broadcast ran: nothing to record
		}
		rec, err := getNotice(tx, d.NoticeID)
		if err != nil {
			return err
		}
		if err := putDelivery(tx, &rec, d.NoticeID, d.UserID, d.Status, d.At); err != nil {
			return err
		}
		return putNotice(tx, d.NoticeID, rec)
	})
	if err != nil {
		return fmt.Errorf("record delivery of notice %d to user %d: %w", d.NoticeID, d.UserID, err)
	}
	return nil
}

// Broadcasts record deliveries in batches, one transaction (one fsync)
// each, and claim users before sending to them, so a crash never leads to
// anyone getting a notice twice:
//
//	ClaimDeliveries   users → "sending", before their messages go out
//	RecordDeliveries  "sending" → the outcome, after
//	ReleaseClaims     "sending" → nothing, for messages that never left
//	ExpireClaims      "sending" → "uncertain", when a broadcast resumes
//
// Claims are not counted in a notice's totals; the outcomes are.

// RecordDeliveries records many outcomes in one transaction, updating each
// notice's totals once. Users without an account (erased while the
// broadcast ran) are passed over: the store keeps nothing keyed by them.
func (db *DB) RecordDeliveries(ds []valex.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	for _, d := range ds {
		if !d.Status.Valid() || d.UserID == 0 {
			return fmt.Errorf("record deliveries of notice %d: user %d, status %q", d.NoticeID, d.UserID, d.Status)
		}
	}
	err := db.update(func(tx *bbolt.Tx) error {
		recs := map[uint64]*noticeRecord{}
		for _, d := range ds {
			if requireAccount(tx, d.UserID) != nil {
				continue
			}
			rec := recs[d.NoticeID]
			if rec == nil {
				r, err := getNotice(tx, d.NoticeID)
				if err != nil {
					return fmt.Errorf("notice %d: %w", d.NoticeID, err)
				}
				rec = &r
				recs[d.NoticeID] = rec
			}
			if err := putDelivery(tx, rec, d.NoticeID, d.UserID, d.Status, d.At); err != nil {
				return err
			}
		}
		for id, rec := range recs {
			if err := putNotice(tx, id, *rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d deliveries: %w", len(ds), err)
	}
	return nil
}

// ClaimDeliveries marks, in one transaction, the users a notice is about to
// be sent to ("sending") and returns those claimed, in the order given.
// Left out: users without an account, and users who have an outcome other
// than "failed" or a claim already — so no two senders ever hold the same
// user, and a notice that reached someone is never sent to them again.
func (db *DB) ClaimDeliveries(noticeID uint64, userIDs []int64, at time.Time) ([]int64, error) {
	claimed := make([]int64, 0, len(userIDs))
	err := db.update(func(tx *bbolt.Tx) error {
		claimed = claimed[:0]
		rec, err := getNotice(tx, noticeID)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketDeliveries)
		for _, id := range userIDs {
			if requireAccount(tx, id) != nil {
				continue
			}
			if old := b.Get(pairKey(noticeID, uint64(id))); old != nil {
				var o deliveryRecord
				if err := json.Unmarshal(old, &o); err != nil {
					return err
				}
				if valex.DeliveryStatus(o.Status) != valex.DeliveryFailed {
					continue
				}
			}
			if err := putDelivery(tx, &rec, noticeID, id, valex.DeliverySending, at); err != nil {
				return err
			}
			claimed = append(claimed, id)
		}
		return putNotice(tx, noticeID, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d deliveries of notice %d: %w", len(userIDs), noticeID, err)
	}
	return claimed, nil
}

// ReleaseClaims drops the claims of users whose message never left (the
// broadcast stopped before their turn): they have no record, so a resumed
// broadcast sends to them. A user whose claim was replaced by an outcome
// meanwhile keeps the outcome.
func (db *DB) ReleaseClaims(noticeID uint64, userIDs []int64) error {
	if len(userIDs) == 0 {
		return nil
	}
	err := db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		byUser := tx.Bucket(bucketDeliveriesByUser)
		for _, id := range userIDs {
			key := pairKey(noticeID, uint64(id))
			v := b.Get(key)
			if v == nil {
				continue
			}
			var o deliveryRecord
			if err := json.Unmarshal(v, &o); err != nil {
				return err
			}
			if valex.DeliveryStatus(o.Status) != valex.DeliverySending {
				continue
			}
			if err := b.Delete(key); err != nil {
				return err
			}
			if err := byUser.Delete(pairKey(uint64(id), noticeID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release %d claims of notice %d: %w", len(userIDs), noticeID, err)
	}
	return nil
}

// ExpireClaims turns every claim a notice still has into "uncertain" and
// returns how many there were. A broadcast calls it before it resumes: a
// claim left by a stop or a crash means the message may have reached the
// user, so it is not sent again, and the admin's totals say so.
func (db *DB) ExpireClaims(noticeID uint64, at time.Time) (int, error) {
	n := 0
	err := db.update(func(tx *bbolt.Tx) error {
		n = 0
		rec, err := getNotice(tx, noticeID)
		if err != nil {
			return err
		}
		var users []int64
		prefix := ticketKey(noticeID)
		c := tx.Bucket(bucketDeliveries).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var o deliveryRecord
			if err := json.Unmarshal(v, &o); err != nil {
				return err
			}
			if valex.DeliveryStatus(o.Status) == valex.DeliverySending {
				users = append(users, int64(binary.BigEndian.Uint64(k[8:])))
			}
		}
		if len(users) == 0 {
			return nil
		}
		for _, id := range users {
			if err := putDelivery(tx, &rec, noticeID, id, valex.DeliveryUncertain, at); err != nil {
				return err
			}
		}
		n = len(users)
		return putNotice(tx, noticeID, rec)
	})
	if err != nil {
		return 0, fmt.Errorf("expire claims of notice %d: %w", noticeID, err)
	}
	return n, nil
}

// putDelivery writes one user's delivery record of a notice and its
// per-user index entry, and keeps rec's totals: the record it replaces
// leaves them, the new one joins them; claims ("sending") are not counted.
// The caller stores rec.
func putDelivery(tx *bbolt.Tx, rec *noticeRecord, noticeID uint64, userID int64, st valex.DeliveryStatus, at time.Time) error {
	v, err := json.Marshal(deliveryRecord{Status: string(st), At: unixNano(at)})
	if err != nil {
		return err
	}
	if rec.Totals == nil {
		rec.Totals = map[string]int{}
	}
	b := tx.Bucket(bucketDeliveries)
	key := pairKey(noticeID, uint64(userID))
	if old := b.Get(key); old != nil {
		var o deliveryRecord
		if err := json.Unmarshal(old, &o); err != nil {
			return err
		}
		if valex.DeliveryStatus(o.Status) != valex.DeliverySending {
			rec.Totals[o.Status]--
		}
	}
	if st != valex.DeliverySending {
		rec.Totals[string(st)]++
	}
	if err := b.Put(key, v); err != nil {
		return err
	}
	return tx.Bucket(bucketDeliveriesByUser).Put(pairKey(uint64(userID), noticeID), nil)
}

// Deliveries returns a notice's deliveries in user id order.
func (db *DB) Deliveries(noticeID uint64) ([]valex.Delivery, error) {
	var out []valex.Delivery
	err := db.view(func(tx *bbolt.Tx) error {
		rec, err := getNotice(tx, noticeID)
		if err != nil {
			return err
		}
		prefix := ticketKey(noticeID)
		c := tx.Bucket(bucketDeliveries).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			d, err := decodeDelivery(noticeID, valex.NoticeKind(rec.Kind), int64(binary.BigEndian.Uint64(k[8:])), v)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries of notice %d: %w", noticeID, err)
	}
	return out, nil
}

func decodeDelivery(noticeID uint64, kind valex.NoticeKind, userID int64, v []byte) (valex.Delivery, error) {
	var r deliveryRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return valex.Delivery{}, fmt.Errorf("delivery of notice %d: %w", noticeID, err)
	}
	return valex.Delivery{NoticeID: noticeID, Kind: kind, UserID: userID, Status: valex.DeliveryStatus(r.Status), At: fromUnixNano(r.At)}, nil
}

// DeliveredTo returns the user ids that already have a notice's delivery
// recorded with one of the given statuses (any status when none given).
func (db *DB) DeliveredTo(noticeID uint64, statuses ...valex.DeliveryStatus) (map[int64]bool, error) {
	ds, err := db.Deliveries(noticeID)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(ds))
	for _, d := range ds {
		if len(statuses) == 0 || slices.Contains(statuses, d.Status) {
			out[d.UserID] = true
		}
	}
	return out, nil
}

// userDeliveries lists the notices delivered (or not) to one user.
func userDeliveries(tx *bbolt.Tx, userID int64) ([]valex.Delivery, error) {
	var out []valex.Delivery
	prefix := idKey(userID)
	deliveries := tx.Bucket(bucketDeliveries)
	c := tx.Bucket(bucketDeliveriesByUser).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		noticeID := binary.BigEndian.Uint64(k[8:])
		v := deliveries.Get(pairKey(noticeID, uint64(userID)))
		if v == nil {
			continue
		}
		rec, err := getNotice(tx, noticeID)
		if err != nil {
			return nil, fmt.Errorf("notice %d: %w", noticeID, err)
		}
		d, err := decodeDelivery(noticeID, valex.NoticeKind(rec.Kind), userID, v)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Audience returns every user's id and language, in id order, read from
// the plain record headers without opening personal data: who a broadcast
// goes to and in which language.
func (db *DB) Audience() ([]valex.User, error) {
	var out []valex.User
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("bad user key %x", k)
			}
			rec, err := decodeUserRecord(v)
			if err != nil {
				return err
			}
			out = append(out, valex.User{ID: int64(binary.BigEndian.Uint64(k)), Language: rec.language})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list audience: %w", err)
	}
	return out, nil
}
