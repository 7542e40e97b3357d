package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// A user's pending document (at most one): be(userID) → version(1) |
// at(8) | conversation(8) | sealed JSON. The time and conversation stay in
// a plain header so that expiry and conversation deletion need no key.
var bucketAIDocuments = []byte("ai_documents")

const (
	documentRecordV1  byte = 1
	documentHeaderLen int  = 17
)

// documentBody is the sealed part of a pending document.
type documentBody struct {
	Name      string `json:"name"`
	Pages     int    `json:"pages,omitempty"`
	Text      string `json:"text"`
	Truncated bool   `json:"truncated,omitempty"`
	ChatID    int64  `json:"chat_id"`
}

// PutDocument stores a user's pending document, replacing the one before.
func (db *DB) PutDocument(userID int64, d valex.PendingDocument) error {
	err := db.update(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		body, err := json.Marshal(documentBody{Name: d.Name, Pages: d.Pages, Text: d.Text, Truncated: d.Truncated, ChatID: d.ChatID})
		if err != nil {
			return err
		}
		sealed, err := db.codec.Seal(userID, body)
		if err != nil {
			return fmt.Errorf("seal document: %w", err)
		}
		v := make([]byte, documentHeaderLen, documentHeaderLen+len(sealed))
		v[0] = documentRecordV1
		binary.BigEndian.PutUint64(v[1:], uint64(unixNano(d.At)))
		binary.BigEndian.PutUint64(v[9:], d.Conversation)
		v = append(v, sealed...)
		b, err := aiBucket(tx, bucketAIDocuments)
		if err != nil {
			return err
		}
		return b.Put(idKey(userID), v)
	})
	if err != nil {
		return fmt.Errorf("put document of user %d: %w", userID, err)
	}
	return nil
}

// Document returns a user's pending document; ok is false when there is
// none.
func (db *DB) Document(userID int64) (d valex.PendingDocument, ok bool, err error) {
	err = db.view(func(tx *bbolt.Tx) error {
		d, ok, err = db.documentTx(tx, userID)
		return err
	})
	if err != nil {
		return valex.PendingDocument{}, false, fmt.Errorf("load document of user %d: %w", userID, err)
	}
	return d, ok, nil
}

func (db *DB) documentTx(tx *bbolt.Tx, userID int64) (valex.PendingDocument, bool, error) {
	b, err := aiBucket(tx, bucketAIDocuments)
	if b == nil || err != nil {
		return valex.PendingDocument{}, false, err
	}
	v := b.Get(idKey(userID))
	if v == nil {
		return valex.PendingDocument{}, false, nil
	}
	at, conv, err := documentHeader(v)
	if err != nil {
		return valex.PendingDocument{}, false, err
	}
	plain, err := db.codec.Open(userID, v[documentHeaderLen:])
	if err != nil {
		return valex.PendingDocument{}, false, err
	}
	var body documentBody
	if err := json.Unmarshal(plain, &body); err != nil {
		return valex.PendingDocument{}, false, fmt.Errorf("decode document: %w", err)
	}
	return valex.PendingDocument{Name: body.Name, Pages: body.Pages, Text: body.Text, Truncated: body.Truncated,
		ChatID: body.ChatID, Conversation: conv, At: at}, true, nil
}

// DropDocument deletes a user's pending document if it is the one read at
// at (a newer one stays); a zero at deletes whichever there is.
func (db *DB) DropDocument(userID int64, at time.Time) error {
	err := db.update(func(tx *bbolt.Tx) error {
		b, err := aiBucket(tx, bucketAIDocuments)
		if err != nil {
			return err
		}
		v := b.Get(idKey(userID))
		if v == nil {
			return nil
		}
		if !at.IsZero() {
			stored, _, err := documentHeader(v)
			if err == nil && !stored.Equal(at) {
				return nil
			}
		}
		return b.Delete(idKey(userID))
	})
	if err != nil {
		return fmt.Errorf("drop document of user %d: %w", userID, err)
	}
	return nil
}

// PurgeDocuments deletes the pending documents read before before and
// returns how many went. A user has at most one and it goes when used, so
// the walk is over few keys.
func (db *DB) PurgeDocuments(before time.Time) (int, error) {
	n := 0
	err := db.update(func(tx *bbolt.Tx) error {
		b, err := aiBucket(tx, bucketAIDocuments)
		if err != nil {
			return err
		}
		var old [][]byte
		err = b.ForEach(func(k, v []byte) error {
			at, _, err := documentHeader(v)
			if err != nil || at.Before(before) {
				old = append(old, append([]byte(nil), k...)) // a broken record goes too
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge documents: %w", err)
	}
	return n, nil
}

// dropDocumentTx deletes a user's pending document when it belongs to
// conv (any conversation when all is set).
func dropDocumentTx(tx *bbolt.Tx, userID int64, conv uint64, all bool) error {
	b, err := aiBucket(tx, bucketAIDocuments)
	if b == nil || err != nil {
		return err
	}
	v := b.Get(idKey(userID))
	if v == nil {
		return nil
	}
	if _, c, err := documentHeader(v); !all && err == nil && c != conv {
		return nil
	}
	return b.Delete(idKey(userID))
}

func documentHeader(v []byte) (at time.Time, conv uint64, err error) {
	if len(v) < documentHeaderLen || v[0] != documentRecordV1 {
		return time.Time{}, 0, errors.New("decode document: bad header")
	}
	return fromUnixNano(int64(binary.BigEndian.Uint64(v[1:]))), binary.BigEndian.Uint64(v[9:]), nil
}
