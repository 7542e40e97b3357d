package valex

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
)

// PseudonymLen is the length of a log pseudonym in hex characters (64 bits:
// collisions among the users of one service are not a practical concern).
const PseudonymLen = 16

// Pseudonym is the keyed pseudonym that stands for a Telegram user in log
// lines: HMAC-SHA256(key, big-endian user id), hex, truncated to
// PseudonymLen. It is stable per user and key, so an operator can follow one
// user through the logs (valex whois-log prints it for a given id), and
// without the key it cannot be turned back into the id: Telegram ids are
// few enough to enumerate, which is why it is keyed and not a plain hash.
//
// A Pseudonymizer with a salt source mixes a per-user salt derived from the
// user's data key into the key: erasing the user deletes that key, and with
// it the only way to recompute their pseudonym, so their old log lines can
// no longer be linked to them. Before /start (no key yet) the log key alone
// is used.
func Pseudonym(key []byte, userID int64) string {
	mac := hmac.New(sha256.New, key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(userID))
	mac.Write(b[:])
	return hex.EncodeToString(mac.Sum(nil))[:PseudonymLen]
}

// Pseudonymizer turns Telegram ids into log pseudonyms with one key. The
// zero value uses an empty key: it still never shows an id, but anyone can
// recompute its pseudonyms, so the running bot always gets the log key.
type Pseudonymizer struct {
	key  []byte
	salt func(userID int64) []byte // per-user salt, nil when the user has none
}

// NewPseudonymizer returns a Pseudonymizer using key (copied) and, when
// salt is not nil, each user's salt (store.Keys.LogSalt).
func NewPseudonymizer(key []byte, salt func(userID int64) []byte) Pseudonymizer {
	return Pseudonymizer{key: append([]byte(nil), key...), salt: salt}
}

// User returns the pseudonym of a Telegram user id; 0 (no user) stays "".
func (p Pseudonymizer) User(userID int64) string {
	if userID == 0 {
		return ""
	}
	if p.salt != nil {
		if s := p.salt(userID); s != nil {
			return Pseudonym(append(slices.Clip(p.key), s...), userID)
		}
	}
	return Pseudonym(p.key, userID)
}

// Chat returns what a log line may say about a chat: a private chat's id is
// its user's id, so it is pseudonymized the same way; group and channel ids
// (negative) name no person and stay as they are.
func (p Pseudonymizer) Chat(chatID int64) string {
	if chatID < 0 {
		return strconv.FormatInt(chatID, 10)
	}
	return p.User(chatID)
}

// Redact replaces every whole decimal number in text that is one of the
// Telegram ids (users or private chats) with its pseudonym. Errors name
// the ids they are about ("load user 42: ..."); a log line writes the
// error through Redact, so the id does not reach the log with it. Group
// chat ids and other numbers stay.
func (p Pseudonymizer) Redact(text string, ids ...int64) string {
	var b []byte
	last := 0
	for i := 0; i < len(text); {
		if text[i] < '0' || text[i] > '9' || (i > 0 && text[i-1] >= '0' && text[i-1] <= '9') {
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		n, err := strconv.ParseInt(text[i:j], 10, 64)
		negative := i > 0 && text[i-1] == '-' // a group chat id
		if err == nil && n > 0 && !negative && slices.Contains(ids, n) {
			b = append(b, text[last:i]...)
			b = append(b, p.User(n)...)
			last = j
		}
		i = j
	}
	if b == nil {
		return text
	}
	return string(append(b, text[last:]...))
}
