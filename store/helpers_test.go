package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// openTest opens a store in a fresh temp dir and closes it when the test ends.
func openTest(tb testing.TB, codec Codec) *DB {
	tb.Helper()
	return openAt(tb, filepath.Join(tb.TempDir(), "valex.db"), codec)
}

// openAt opens the store at path and closes it when the test ends (closing
// twice is harmless, so tests may also close it themselves).
func openAt(tb testing.TB, path string, codec Codec) *DB {
	tb.Helper()
	db, err := Open(path, Options{Codec: codec})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// mustAccount creates an account for each id, as /start would: the store
// refuses writes keyed by a user who has no account (ErrNoAccount).
func mustAccount(tb testing.TB, db *DB, ids ...int64) {
	tb.Helper()
	for _, id := range ids {
		if _, _, err := db.EnsureUser(valex.User{ID: id, Language: "en"}); err != nil {
			tb.Fatalf("EnsureUser %d: %v", id, err)
		}
	}
}

// formatTest is testCodec's format byte; PlainCodec uses formatPlain.
const formatTest byte = 0x7f

// testCodec hides the plaintext as an encrypting codec would: it reverses
// and XORs the bytes and binds them to the user id, so opening them as
// another user fails.
type testCodec struct{}

func (testCodec) Seal(userID int64, plain []byte) ([]byte, error) {
	out := make([]byte, 9+len(plain))
	out[0] = formatTest
	binary.BigEndian.PutUint64(out[1:], uint64(userID))
	for i, b := range plain {
		out[len(out)-1-i] = b ^ 0x5a
	}
	return out, nil
}

func (testCodec) Open(userID int64, sealed []byte) ([]byte, error) {
	if len(sealed) < 9 || sealed[0] != formatTest {
		return nil, fmt.Errorf("not test format")
	}
	if got := int64(binary.BigEndian.Uint64(sealed[1:])); got != userID {
		return nil, fmt.Errorf("sealed for user %d, opened as %d", got, userID)
	}
	body := sealed[9:]
	out := make([]byte, len(body))
	for i, b := range body {
		out[len(out)-1-i] = b ^ 0x5a
	}
	return out, nil
}

// keysContaining lists, per bucket, how many keys contain needle.
func keysContaining(tb testing.TB, db *DB, needle []byte) map[string]int {
	tb.Helper()
	hits := map[string]int{}
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return b.ForEach(func(k, _ []byte) error {
				if bytes.Contains(k, needle) {
					hits[string(name)]++
				}
				return nil
			})
		})
	})
	if err != nil {
		tb.Fatalf("scan buckets: %v", err)
	}
	return hits
}

// bucketLen counts the keys in a bucket.
func bucketLen(tb testing.TB, db *DB, name []byte) int {
	tb.Helper()
	n := 0
	err := db.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(name).ForEach(func(_, _ []byte) error { n++; return nil })
	})
	if err != nil {
		tb.Fatalf("count %s: %v", name, err)
	}
	return n
}
