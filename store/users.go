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

// A user record is a small fixed header followed by the sealed personal
// fields:
//
//	version(1) | createdAt(8) | lastActiveAt(8) | len(language)(1) | language | sealed
//
// The plain fields sit at fixed offsets so TouchUser and the index migration
// can read and patch lastActiveAt without opening the codec, which will be a
// decryption once personal data is encrypted. The user id is the key.
const userRecordV1 byte = 1

const (
	offCreatedAt   = 1
	offLastActive  = 9
	offLanguageLen = 17
	userHeaderLen  = 18
)

// userRecord is a decoded user record; sealed aliases the stored bytes.
type userRecord struct {
	createdAt    int64 // unix nanoseconds, 0 for the zero time
	lastActiveAt int64
	language     string
	sealed       []byte
}

func encodeUserRecord(r userRecord) ([]byte, error) {
	if len(r.language) > 255 {
		return nil, fmt.Errorf("language %q too long", r.language)
	}
	v := make([]byte, userHeaderLen+len(r.language)+len(r.sealed))
	v[0] = userRecordV1
	binary.BigEndian.PutUint64(v[offCreatedAt:], uint64(r.createdAt))
	binary.BigEndian.PutUint64(v[offLastActive:], uint64(r.lastActiveAt))
	v[offLanguageLen] = byte(len(r.language))
	n := copy(v[userHeaderLen:], r.language)
	copy(v[userHeaderLen+n:], r.sealed)
	return v, nil
}

// userRecordTx reads user id's record, or returns valex.ErrNotFound.
func userRecordTx(tx *bbolt.Tx, id int64) (userRecord, error) {
	v := tx.Bucket(bucketUsers).Get(idKey(id))
	if v == nil {
		return userRecord{}, valex.ErrNotFound
	}
	return decodeUserRecord(v)
}

func decodeUserRecord(v []byte) (userRecord, error) {
	if len(v) < userHeaderLen || v[0] != userRecordV1 {
		return userRecord{}, fmt.Errorf("decode user record: bad header")
	}
	end := userHeaderLen + int(v[offLanguageLen])
	if len(v) < end {
		return userRecord{}, fmt.Errorf("decode user record: truncated language")
	}
	return userRecord{
		createdAt:    int64(binary.BigEndian.Uint64(v[offCreatedAt:])),
		lastActiveAt: int64(binary.BigEndian.Uint64(v[offLastActive:])),
		language:     string(v[userHeaderLen:end]),
		sealed:       v[end:],
	}, nil
}

// personal holds the fields that go through the codec. Short names keep the
// record small.
type personal struct {
	Nickname    string `json:"n,omitempty"`
	City        string `json:"c,omitempty"`
	Description string `json:"d,omitempty"`
	Email       string `json:"e,omitempty"`
	Phone       string `json:"p,omitempty"`
}

// unixNano maps the zero time to 0 (its UnixNano is out of range).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano is the inverse of unixNano; times come back in UTC. The Unix
// epoch itself reads back as the zero time, which no real timestamp hits.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// normalize returns u as it reads back from the store: times in UTC without
// a monotonic reading.
func normalize(u valex.User) valex.User {
	u.CreatedAt = fromUnixNano(unixNano(u.CreatedAt))
	u.LastActiveAt = fromUnixNano(unixNano(u.LastActiveAt))
	return u
}

// activeKey is the last-active index key: be(unixNano)‖be(id). Times before
// 1970 (and the zero time) sort first, as "inactive since forever".
func activeKey(nanos, id int64) []byte {
	if nanos < 0 {
		nanos = 0
	}
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(nanos))
	binary.BigEndian.PutUint64(k[8:], uint64(id))
	return k
}

// User returns the user with the given id, or an error wrapping
// valex.ErrNotFound.
func (db *DB) User(id int64) (valex.User, error) {
	var u valex.User
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		u, err = db.getUser(tx, id)
		return err
	})
	if err != nil {
		return valex.User{}, fmt.Errorf("load user %d: %w", id, err)
	}
	return u, nil
}

// UserActivity returns the user's chosen language and when they were last
// active, or valex.ErrNotFound itself. Both are in the record's clear
// header: every update needs them, so they are read without opening the
// sealed personal fields (a decryption and a JSON decode).
func (db *DB) UserActivity(id int64) (language string, lastActive time.Time, err error) {
	err = db.view(func(tx *bbolt.Tx) error {
		rec, err := userRecordTx(tx, id)
		if err != nil {
			return err
		}
		language, lastActive = rec.language, fromUnixNano(rec.lastActiveAt)
		return nil
	})
	if errors.Is(err, valex.ErrNotFound) {
		// As is: every update from someone without an account comes
		// here, and formatting an error for each was ~2 % of the bot's CPU.
		return "", time.Time{}, err
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("load user %d: %w", id, err)
	}
	return language, lastActive, nil
}

// PutUser creates or replaces a user.
func (db *DB) PutUser(u valex.User) error {
	if err := db.createKey(u.ID); err != nil {
		return fmt.Errorf("put user %d: %w", u.ID, err)
	}
	err := db.update(func(tx *bbolt.Tx) error {
		return db.putUser(tx, u)
	})
	if err != nil {
		return fmt.Errorf("put user %d: %w", u.ID, err)
	}
	return nil
}

// EnsureUser creates u if no user with its id exists. Otherwise it returns
// the stored user unchanged and created is false.
func (db *DB) EnsureUser(u valex.User) (stored valex.User, created bool, err error) {
	// The key first: creating one that exists is a no-op, and a key left
	// by a failed transaction below is harmless.
	if err := db.createKey(u.ID); err != nil {
		return valex.User{}, false, fmt.Errorf("ensure user %d: %w", u.ID, err)
	}
	err = db.update(func(tx *bbolt.Tx) error {
		existing, err := db.getUser(tx, u.ID)
		if err == nil {
			stored = existing
			return nil
		}
		if !errors.Is(err, valex.ErrNotFound) {
			return err
		}
		if err := db.putUser(tx, u); err != nil {
			return err
		}
		stored, created = normalize(u), true
		return nil
	})
	if err != nil {
		return valex.User{}, false, fmt.Errorf("ensure user %d: %w", u.ID, err)
	}
	return stored, created, nil
}

// createKey gives a new account its data key, when the codec keeps keys.
// Only account creation calls it.
func (db *DB) createKey(userID int64) error {
	if owner, ok := db.codec.(KeyOwner); ok && userID != 0 {
		return owner.Create(userID)
	}
	return nil
}

// UpdateUser loads a user, lets fn change it and stores the result, all in
// one transaction. If fn returns an error nothing is stored. fn must not
// change the id or call other DB methods.
func (db *DB) UpdateUser(id int64, fn func(*valex.User) error) (valex.User, error) {
	var out valex.User
	err := db.update(func(tx *bbolt.Tx) error {
		u, err := db.getUser(tx, id)
		if err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		if u.ID != id {
			return fmt.Errorf("id changed to %d", u.ID)
		}
		if err := db.putUser(tx, u); err != nil {
			return err
		}
		out = normalize(u)
		return nil
	})
	if err != nil {
		return valex.User{}, fmt.Errorf("update user %d: %w", id, err)
	}
	return out, nil
}

// TouchUser sets a user's LastActiveAt and moves its last-active index entry.
// It patches the record's header in place of a full decode, because it runs
// on every message and decoding would open the codec.
func (db *DB) TouchUser(id int64, at time.Time) error {
	err := db.update(func(tx *bbolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		key := idKey(id)
		old := users.Get(key)
		if old == nil {
			return valex.ErrNotFound
		}
		rec, err := decodeUserRecord(old)
		if err != nil {
			return err
		}
		nanos := unixNano(at)
		// old belongs to the transaction's memory map: write a copy.
		v := make([]byte, len(old))
		copy(v, old)
		binary.BigEndian.PutUint64(v[offLastActive:], uint64(nanos))
		if err := users.Put(key, v); err != nil {
			return err
		}
		idx := tx.Bucket(bucketUsersByActive)
		idx.FillPercent = appendFill // keyed by time: a touch moves the user to the end
		if err := idx.Delete(activeKey(rec.lastActiveAt, id)); err != nil {
			return err
		}
		return idx.Put(activeKey(nanos, id), nil)
	})
	if err != nil {
		return fmt.Errorf("touch user %d: %w", id, err)
	}
	return nil
}

// InactiveSince calls fn with the id of every user whose LastActiveAt is
// before `before` (never-active users first), oldest first. It reads only the
// index entries that qualify. fn runs after the read transaction has ended,
// so it may call DeleteUser.
func (db *DB) InactiveSince(before time.Time, fn func(id int64) error) error {
	limit := activeKey(unixNano(before), 0)[:8]
	var ids []int64
	err := db.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketUsersByActive).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 16 {
				return fmt.Errorf("bad index key %x", k)
			}
			if bytes.Compare(k[:8], limit) >= 0 {
				break
			}
			ids = append(ids, int64(binary.BigEndian.Uint64(k[8:])))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list users inactive since %s: %w", before.Format(time.RFC3339), err)
	}
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// DeleteUser removes a user, its index entry and its dialog state. Deleting
// a user that does not exist is not an error, so erasure can be retried.
func (db *DB) DeleteUser(id int64) error {
	err := db.update(func(tx *bbolt.Tx) error {
		key := idKey(id)
		users := tx.Bucket(bucketUsers)
		if v := users.Get(key); v != nil {
			rec, err := decodeUserRecord(v)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketUsersByActive).Delete(activeKey(rec.lastActiveAt, id)); err != nil {
				return err
			}
			if err := users.Delete(key); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketStates).Delete(key)
	})
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	return nil
}

// ForEachUser calls fn for every user in id order. fn runs inside a read
// transaction: it must not write to the store (a write could deadlock when
// the file grows).
func (db *DB) ForEachUser(fn func(valex.User) error) error {
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("bad user key %x", k)
			}
			u, err := db.decodeUser(int64(binary.BigEndian.Uint64(k)), v)
			if err != nil {
				return err
			}
			return fn(u)
		})
	})
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	return nil
}

// CountUsers returns the number of users. It walks the bucket's pages: fine
// for an admin command, not for the message path.
func (db *DB) CountUsers() (int, error) {
	var n int
	err := db.view(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketUsers).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// State returns what the user's next message means, or "" if nothing.
func (db *DB) State(userID int64) (string, error) {
	var s string
	err := db.view(func(tx *bbolt.Tx) error {
		s = string(tx.Bucket(bucketStates).Get(idKey(userID)))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("load state of user %d: %w", userID, err)
	}
	return s, nil
}

// SetState records what the user's next message means; "" clears it.
func (db *DB) SetState(userID int64, state string) error {
	err := db.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketStates)
		if state == "" {
			return b.Delete(idKey(userID))
		}
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		return b.Put(idKey(userID), []byte(state))
	})
	if err != nil {
		return fmt.Errorf("set state of user %d: %w", userID, err)
	}
	return nil
}

// getUser returns the stored user or valex.ErrNotFound.
func (db *DB) getUser(tx *bbolt.Tx, id int64) (valex.User, error) {
	v := tx.Bucket(bucketUsers).Get(idKey(id))
	if v == nil {
		return valex.User{}, valex.ErrNotFound
	}
	return db.decodeUser(id, v)
}

func (db *DB) decodeUser(id int64, v []byte) (valex.User, error) {
	rec, err := decodeUserRecord(v)
	if err != nil {
		return valex.User{}, err
	}
	plain, err := db.codec.Open(id, rec.sealed)
	if err != nil {
		return valex.User{}, err
	}
	var p personal
	if err := json.Unmarshal(plain, &p); err != nil {
		return valex.User{}, fmt.Errorf("decode personal fields: %w", err)
	}
	return valex.User{
		ID:           id,
		Nickname:     p.Nickname,
		Language:     rec.language,
		City:         p.City,
		Description:  p.Description,
		Email:        p.Email,
		Phone:        p.Phone,
		CreatedAt:    fromUnixNano(rec.createdAt),
		LastActiveAt: fromUnixNano(rec.lastActiveAt),
	}, nil
}

// putUser writes u and keeps the last-active index in step with it.
func (db *DB) putUser(tx *bbolt.Tx, u valex.User) error {
	if u.ID == 0 {
		// A zero id is an unset field, never a Telegram account.
		return fmt.Errorf("zero user id")
	}
	plain, err := json.Marshal(personal{
		Nickname:    u.Nickname,
		City:        u.City,
		Description: u.Description,
		Email:       u.Email,
		Phone:       u.Phone,
	})
	if err != nil {
		return err
	}
	sealed, err := db.codec.Seal(u.ID, plain)
	if err != nil {
		return fmt.Errorf("seal personal fields: %w", err)
	}
	rec := userRecord{
		createdAt:    unixNano(u.CreatedAt),
		lastActiveAt: unixNano(u.LastActiveAt),
		language:     u.Language,
		sealed:       sealed,
	}
	v, err := encodeUserRecord(rec)
	if err != nil {
		return err
	}
	users := tx.Bucket(bucketUsers)
	idx := tx.Bucket(bucketUsersByActive)
	idx.FillPercent = appendFill // keyed by time: new and touched users go to the end
	key := idKey(u.ID)
	if old := users.Get(key); old != nil {
		oldRec, err := decodeUserRecord(old)
		if err != nil {
			return err
		}
		if err := idx.Delete(activeKey(oldRec.lastActiveAt, u.ID)); err != nil {
			return err
		}
	}
	if err := users.Put(key, v); err != nil {
		return err
	}
	return idx.Put(activeKey(rec.lastActiveAt, u.ID), nil)
}

// CountActiveSince counts the accounts active at or after since (the
// activity index is ordered by time: it reads only those).
func (db *DB) CountActiveSince(since time.Time) (int, error) {
	n := 0
	err := db.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketUsersByActive).Cursor()
		for k, _ := c.Seek(activeKey(unixNano(since), 0)); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}
