package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// Consent and restriction events are append-only, one bucket each, keyed
// be(userID)‖be(seq) with seq from the bucket's sequence: a user's events
// are one range, in the order they were recorded. Nothing here is free text
// (kinds, times, the policy version, a source code), so the events stay out
// of the codec and the broadcast check "may we send marketing to this
// user?" costs one short range read.

type consentRecord struct {
	Kind    string `json:"k"`
	Granted bool   `json:"g"`
	At      int64  `json:"t"`
	Version string `json:"v,omitempty"`
	Source  string `json:"s,omitempty"`
	Update  int64  `json:"u,omitempty"` // the Telegram update that made the choice
}

// AddConsent records a consent being given or withdrawn.
func (db *DB) AddConsent(e valex.ConsentEvent) error {
	if e.UserID == 0 || !e.Kind.Valid() || e.At.IsZero() {
		return fmt.Errorf("add consent: user %d, kind %q: incomplete event", e.UserID, e.Kind)
	}
	rec := consentRecord{Kind: string(e.Kind), Granted: e.Granted, At: unixNano(e.At), Version: e.PolicyVersion, Source: e.Source, Update: e.Update}
	if err := db.appendEvent(bucketConsents, e.UserID, rec); err != nil {
		return fmt.Errorf("add consent of user %d: %w", e.UserID, err)
	}
	return nil
}

// AddRestriction records a restriction of processing being put in place or
// lifted.
func (db *DB) AddRestriction(e valex.RestrictionEvent) error {
	if e.UserID == 0 || !e.Kind.Valid() || e.At.IsZero() {
		return fmt.Errorf("add restriction: user %d, kind %q: incomplete event", e.UserID, e.Kind)
	}
	rec := consentRecord{Kind: string(e.Kind), Granted: e.Active, At: unixNano(e.At), Version: e.PolicyVersion, Source: e.Source, Update: e.Update}
	if err := db.appendEvent(bucketRestrictions, e.UserID, rec); err != nil {
		return fmt.Errorf("add restriction of user %d: %w", e.UserID, err)
	}
	return nil
}

func (db *DB) appendEvent(bucket []byte, userID int64, rec consentRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	db.consentsChanging()
	defer db.consentsChanging()
	return db.update(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		b := tx.Bucket(bucket)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(pairKey(uint64(userID), seq), v)
	})
}

// ConsentEvents returns a user's consent and restriction events in the
// order they were recorded.
func (db *DB) ConsentEvents(userID int64) ([]valex.ConsentEvent, []valex.RestrictionEvent, error) {
	var cs []valex.ConsentEvent
	var rs []valex.RestrictionEvent
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		cs, rs, err = consentEvents(tx, userID)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load consents of user %d: %w", userID, err)
	}
	return cs, rs, nil
}

func consentEvents(tx *bbolt.Tx, userID int64) ([]valex.ConsentEvent, []valex.RestrictionEvent, error) {
	var cs []valex.ConsentEvent
	var rs []valex.RestrictionEvent
	err := eachEvent(tx, bucketConsents, userID, func(r consentRecord) {
		cs = append(cs, valex.ConsentEvent{UserID: userID, Kind: valex.ConsentKind(r.Kind), Granted: r.Granted,
			At: fromUnixNano(r.At), PolicyVersion: r.Version, Source: r.Source, Update: r.Update})
	})
	if err != nil {
		return nil, nil, err
	}
	err = eachEvent(tx, bucketRestrictions, userID, func(r consentRecord) {
		rs = append(rs, valex.RestrictionEvent{UserID: userID, Kind: valex.RestrictionKind(r.Kind), Active: r.Granted,
			At: fromUnixNano(r.At), PolicyVersion: r.Version, Source: r.Source, Update: r.Update})
	})
	return cs, rs, err
}

func eachEvent(tx *bbolt.Tx, bucket []byte, userID int64, fn func(consentRecord)) error {
	prefix := idKey(userID)
	c := tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r consentRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k[8:]), err)
		}
		fn(r)
	}
	return nil
}

// ConsentState returns a user's current consents and restrictions.
func (db *DB) ConsentState(userID int64) (valex.ConsentState, error) {
	cs, rs, err := db.ConsentEvents(userID)
	if err != nil {
		return valex.ConsentState{}, err
	}
	return valex.NewConsentState(cs, rs), nil
}

// deleteRange deletes every key starting with prefix and returns how many.
func deleteRange(b *bbolt.Bucket, prefix []byte) (int, error) {
	n := 0
	c := b.Cursor()
	// Re-seek after each Delete: a cursor's position after Delete is not
	// reliable for Next.
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
