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

// The AI aggregator's buckets (conversations.go, usage.go).
//
// Turns are keyed be(userID)‖be(conversation)‖be(seq), seq from the bucket's
// sequence, so one conversation is one key range in the order it was
// written. Context assembly walks that range backwards from its end and
// stops at the token budget: its cost depends on the budget, not on how
// long the conversation is. Each value carries the turn's token estimate in
// a plain header, so the walk opens the codec only for the turns it keeps.
var (
	bucketAISettings  = []byte("ai_settings")   // be(userID) → settings (JSON, no personal data)
	bucketAITurns     = []byte("ai_turns")      // be(userID)‖be(conv)‖be(seq) → turn record
	bucketAIUsage     = []byte("ai_usage")      // be(userID)‖be(atUnixNano)‖be(seq) → usage record
	bucketAIUsageSums = []byte("ai_usage_sums") // be(userID)‖period‖capability → sums
)

// Export and erasure categories of the AI aggregator's data.
const (
	CategoryConversations = "conversations" // conversation turns
	CategoryAISettings    = "ai_settings"   // chosen model, mode, voice
	CategoryAIUsage       = "ai_usage"      // the usage ledger
	CategoryAIDocument    = "ai_document"   // a document waiting for the next question (documents.go)
)

// A turn record: version(1) | role(1) | tokens(4) | at(8) | sealed text.
const (
	turnRecordV1  byte = 1
	turnHeaderLen      = 14
	roleUser      byte = 'u'
	roleAssistant byte = 'a'
)

// aiBucket returns one of the AI buckets. They are created at open with the
// others (allBuckets); a write transaction also creates a missing one, so a
// file opened by a build that did not know them yet still works.
func aiBucket(tx *bbolt.Tx, name []byte) (*bbolt.Bucket, error) {
	if b := tx.Bucket(name); b != nil {
		return b, nil
	}
	if !tx.Writable() {
		return nil, nil
	}
	return tx.CreateBucketIfNotExists(name)
}

func turnPrefix(userID int64, conv uint64) []byte {
	k := make([]byte, 16, 24)
	binary.BigEndian.PutUint64(k, uint64(userID))
	binary.BigEndian.PutUint64(k[8:], conv)
	return k
}

func encodeTurn(db *DB, userID int64, t valex.Turn) ([]byte, error) {
	var role byte
	switch t.Role {
	case valex.TurnUser:
		role = roleUser
	case valex.TurnAssistant:
		role = roleAssistant
	default:
		return nil, fmt.Errorf("turn role %q", t.Role)
	}
	sealed, err := db.codec.Seal(userID, []byte(t.Text))
	if err != nil {
		return nil, fmt.Errorf("seal turn: %w", err)
	}
	v := make([]byte, turnHeaderLen+len(sealed))
	v[0] = turnRecordV1
	v[1] = role
	binary.BigEndian.PutUint32(v[2:], uint32(max(t.Tokens, 0)))
	binary.BigEndian.PutUint64(v[6:], uint64(unixNano(t.At)))
	copy(v[turnHeaderLen:], sealed)
	return v, nil
}

// turnTokens reads the token estimate from a record's header.
func turnTokens(v []byte) (int, error) {
	if len(v) < turnHeaderLen || v[0] != turnRecordV1 {
		return 0, errors.New("decode turn: bad header")
	}
	return int(binary.BigEndian.Uint32(v[2:])), nil
}

func (db *DB) decodeTurn(userID int64, v []byte) (valex.Turn, error) {
	tokens, err := turnTokens(v)
	if err != nil {
		return valex.Turn{}, err
	}
	role := valex.TurnUser
	if v[1] == roleAssistant {
		role = valex.TurnAssistant
	}
	plain, err := db.codec.Open(userID, v[turnHeaderLen:])
	if err != nil {
		return valex.Turn{}, err
	}
	return valex.Turn{
		Role:   role,
		Text:   string(plain), // a copy: plain may alias the transaction's memory
		Tokens: tokens,
		At:     fromUnixNano(int64(binary.BigEndian.Uint64(v[6:]))),
	}, nil
}

// AISettings returns a user's AI settings; the zero value when none are
// stored.
func (db *DB) AISettings(userID int64) (valex.AISettings, error) {
	var s valex.AISettings
	err := db.view(func(tx *bbolt.Tx) error {
		var err error
		s, err = getAISettings(tx, userID)
		return err
	})
	if err != nil {
		return s, fmt.Errorf("load ai settings of user %d: %w", userID, err)
	}
	return s, nil
}

// UpdateAISettings lets fn change a user's AI settings and stores them, in
// one transaction.
func (db *DB) UpdateAISettings(userID int64, fn func(*valex.AISettings)) (valex.AISettings, error) {
	var s valex.AISettings
	err := db.update(func(tx *bbolt.Tx) error {
		if err := requireAccount(tx, userID); err != nil {
			return err
		}
		var err error
		if s, err = getAISettings(tx, userID); err != nil {
			return err
		}
		fn(&s)
		v, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b, err := aiBucket(tx, bucketAISettings)
		if err != nil {
			return err
		}
		return b.Put(idKey(userID), v)
	})
	if err != nil {
		return s, fmt.Errorf("update ai settings of user %d: %w", userID, err)
	}
	return s, nil
}

func getAISettings(tx *bbolt.Tx, userID int64) (valex.AISettings, error) {
	var s valex.AISettings
	b, err := aiBucket(tx, bucketAISettings)
	if b == nil || err != nil {
		return s, err
	}
	v := b.Get(idKey(userID))
	if v == nil {
		return s, nil
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return s, fmt.Errorf("decode ai settings: %w", err)
	}
	return s, nil
}

// RecentTurns returns the newest turns of a conversation whose token
// estimates add up to at most budget, and at most maxTurns of them (0: no
// count limit), oldest first, and whether older turns were left out. It
// reads backwards from the newest turn and stops at either limit, decoding
// only the turns it returns.
func (db *DB) RecentTurns(userID int64, conv uint64, budget, maxTurns int) (turns []valex.Turn, dropped bool, err error) {
	err = db.view(func(tx *bbolt.Tx) error {
		b, err := aiBucket(tx, bucketAITurns)
		if b == nil || err != nil {
			return err
		}
		prefix := turnPrefix(userID, conv)
		c := b.Cursor()
		used := 0
		if maxTurns > 0 {
			turns = make([]valex.Turn, 0, min(maxTurns, 256))
		}
		for k, v := lastWithPrefix(c, prefix); k != nil; k, v = prevWithPrefix(c, prefix) {
			n, err := turnTokens(v)
			if err != nil {
				return fmt.Errorf("turn %x: %w", k, err)
			}
			if used+n > budget || (maxTurns > 0 && len(turns) == maxTurns) {
				dropped = true
				break
			}
			used += n
			t, err := db.decodeTurn(userID, v)
			if err != nil {
				return fmt.Errorf("turn %x: %w", k, err)
			}
			turns = append(turns, t)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("load conversation %d of user %d: %w", conv, userID, err)
	}
	for i, j := 0, len(turns)-1; i < j; i, j = i+1, j-1 {
		turns[i], turns[j] = turns[j], turns[i]
	}
	return turns, dropped, nil
}

// lastWithPrefix positions c on the last key starting with prefix.
func lastWithPrefix(c *bbolt.Cursor, prefix []byte) ([]byte, []byte) {
	// The first key after the range is prefix + 1 as a big-endian number;
	// an all-0xff prefix has none, and its range runs to the end.
	end := bytes.Clone(prefix)
	carry := true
	for i := len(end) - 1; i >= 0 && carry; i-- {
		end[i]++
		carry = end[i] == 0
	}
	var k, v []byte
	if !carry {
		k, _ = c.Seek(end)
	}
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

func prevWithPrefix(c *bbolt.Cursor, prefix []byte) ([]byte, []byte) {
	k, v := c.Prev()
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return nil, nil
	}
	return k, v
}

// SaveExchange appends turns to a conversation and records usage, in one
// transaction: a chat turn costs one disk sync.
func (db *DB) SaveExchange(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage) error {
	return db.SaveExchangeCharged(userID, conv, turns, usage, valex.Charge{})
}

// SaveExchangeCharged is SaveExchange that also takes the usage's cost
// from the user's wallet in the same commit (wallet.go), then ends the
// call's hold.
func (db *DB) SaveExchangeCharged(userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage, charge valex.Charge) error {
	if charge.Reservation != 0 {
		defer db.Release(charge.Reservation) // committed or not, the call is over
	}
	err := db.batch(func(tx *bbolt.Tx) error {
		if err := endUpdateTx(tx, charge); err != nil {
			return err
		}
		if done, err := chargedBefore(tx, usage, charge); done || err != nil {
			return err
		}
		return db.saveExchangeTx(tx, userID, conv, turns, usage, charge)
	})
	if err != nil {
		return fmt.Errorf("save exchange of user %d: %w", userID, err)
	}
	return nil
}

// endUpdateTx marks the update a charge ends as handled (Charge.EndsUpdate)
// in tx, the transaction of its last write, at the charge's time. The bot
// then ends the update without a commit of its own (bot.Request.MarkedHandled).
func endUpdateTx(tx *bbolt.Tx, charge valex.Charge) error {
	if !charge.EndsUpdate || charge.Update <= 0 {
		return nil
	}
	_, err := doneTx(tx, []int{int(charge.Update)}, charge.Now, make([]byte, 32))
	return err
}

// chargedBefore reports whether this update's call was saved and charged
// already (a replay after a crash made it again), and records that it is
// now: once per update and capability (usage_by_update).
func chargedBefore(tx *bbolt.Tx, usage []valex.AIUsage, charge valex.Charge) (bool, error) {
	if charge.Update <= 0 || len(usage) == 0 {
		return false, nil
	}
	done := tx.Bucket(bucketUsageByUpdate)
	for _, u := range usage {
		k := append(idKey(charge.Update), u.Capability...)
		if done.Get(k) != nil {
			return true, nil
		}
		if err := done.Put(k, nil); err != nil {
			return false, err
		}
	}
	return false, nil
}

// saveExchangeTx is SaveExchangeCharged's write, in tx.
func (db *DB) saveExchangeTx(tx *bbolt.Tx, userID int64, conv uint64, turns []valex.Turn, usage []valex.AIUsage, charge valex.Charge) error {
	// An answer that finishes after its user was erased must not
	// bring them back.
	if err := requireAccount(tx, userID); err != nil {
		return err
	}
	if len(turns) > 0 {
		b, err := aiBucket(tx, bucketAITurns)
		if err != nil {
			return err
		}
		// A conversation grows at the end of its own key range, and its
		// turns are large enough that its pages hold little else: the
		// older part of a split page gets no more turns (appendFill). The
		// usage ledger's records are small and many users share a page:
		// there bbolt's even split does better, measured.
		b.FillPercent = appendFill
		prefix := turnPrefix(userID, conv)
		for _, t := range turns {
			v, err := encodeTurn(db, userID, t)
			if err != nil {
				return err
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			k := binary.BigEndian.AppendUint64(prefix[:16:16], seq)
			if err := b.Put(k, v); err != nil {
				return err
			}
			if err := indexTurn(tx, k, v); err != nil { // retention.go
				return err
			}
		}
	}
	for _, u := range usage {
		if u.UserID != userID {
			return fmt.Errorf("usage of user %d in an exchange of user %d", u.UserID, userID)
		}
		if err := putUsage(tx, u); err != nil {
			return err
		}
		if !charge.Now.IsZero() {
			if err := chargeTx(tx, userID, u.Cost, charge); err != nil {
				return err
			}
		}
	}
	return nil
}

type exportTurn struct {
	Conversation uint64    `json:"conversation"`
	Role         string    `json:"role"`
	Text         string    `json:"text"`
	At           time.Time `json:"at"`
}

type exportDocument struct {
	Name       string    `json:"name"`
	Pages      int       `json:"pages,omitempty"`
	Text       string    `json:"text"`
	ReceivedAt time.Time `json:"received_at"`
}

type exportAISettings struct {
	Model string `json:"model,omitempty"`
	Mode  string `json:"mode,omitempty"`
	Voice bool   `json:"voice_answers"`
}

type exportUsage struct {
	At           time.Time `json:"at"`
	Model        string    `json:"model"`
	Capability   string    `json:"capability"`
	InputTokens  int       `json:"input_tokens,omitempty"`
	OutputTokens int       `json:"output_tokens,omitempty"`
	Images       int       `json:"images,omitempty"`
	AudioSeconds float64   `json:"audio_seconds,omitempty"`
	Chars        int       `json:"chars,omitempty"`
	Cost         int64     `json:"cost_microcredits"`
}

// ExportAI returns the AI aggregator's data about a user by category, for
// an access request, with the number of items in each.
func (db *DB) ExportAI(userID int64) (data map[string]any, counts map[string]int, err error) {
	data, counts = map[string]any{}, map[string]int{}
	err = db.view(func(tx *bbolt.Tx) error {
		s, err := getAISettings(tx, userID)
		if err != nil {
			return err
		}
		data[CategoryAISettings] = exportAISettings{Model: s.Model, Mode: s.Mode, Voice: s.Voice}
		counts[CategoryAISettings] = 1

		turns := []exportTurn{}
		if b := tx.Bucket(bucketAITurns); b != nil {
			prefix := idKey(userID)
			c := b.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				t, err := db.decodeTurn(userID, v)
				if err != nil {
					return fmt.Errorf("turn %x: %w", k, err)
				}
				turns = append(turns, exportTurn{Conversation: binary.BigEndian.Uint64(k[8:]), Role: t.Role, Text: t.Text, At: t.At})
			}
		}
		data[CategoryConversations], counts[CategoryConversations] = turns, len(turns)

		usage := []exportUsage{}
		err = eachUsage(tx, userID, time.Time{}, func(u valex.AIUsage) {
			usage = append(usage, exportUsage{At: u.At, Model: u.Model, Capability: u.Capability,
				InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, Images: u.Images,
				AudioSeconds: u.AudioSeconds, Chars: u.Chars, Cost: u.Cost})
		})
		data[CategoryAIUsage], counts[CategoryAIUsage] = usage, len(usage)
		if err != nil {
			return err
		}
		doc, ok, err := db.documentTx(tx, userID)
		if ok {
			data[CategoryAIDocument] = exportDocument{Name: doc.Name, Pages: doc.Pages, Text: doc.Text, ReceivedAt: doc.At}
			counts[CategoryAIDocument] = 1
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("export ai data of user %d: %w", userID, err)
	}
	return data, counts, nil
}

// EraseAI deletes the AI aggregator's data about a user — conversations,
// settings and the usage ledger — in one transaction and returns what went,
// by category. Erasing twice is not an error.
func (db *DB) EraseAI(userID int64) (map[string]int, error) {
	var counts map[string]int
	err := db.update(func(tx *bbolt.Tx) error {
		var err error
		counts, err = eraseAITx(tx, userID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("erase ai data of user %d: %w", userID, err)
	}
	return counts, nil
}

func eraseAITx(tx *bbolt.Tx, userID int64) (map[string]int, error) {
	counts := map[string]int{}
	prefix := idKey(userID)
	// The turns with their time-index entries (retention.go); the range
	// delete below then finds none left.
	n, _, err := deleteTurns(tx, prefix)
	if err != nil {
		return nil, err
	}
	counts[CategoryConversations] = n
	for _, c := range []struct {
		bucket   []byte
		category string
	}{
		{bucketAIUsage, CategoryAIUsage},
		{bucketAIUsageSums, ""},
		{bucketAISettings, CategoryAISettings},
		{bucketAIDocuments, CategoryAIDocument}, // a pending document (documents.go)
	} {
		b, err := aiBucket(tx, c.bucket)
		if err != nil {
			return nil, err
		}
		n, err := deleteRange(b, prefix)
		if err != nil {
			return nil, err
		}
		if c.category != "" {
			counts[c.category] += n
		}
	}
	return counts, nil
}

// conversationTitleRunes is how much of a conversation's first user turn
// its summary keeps.
const conversationTitleRunes = 40

// Conversations lists a user's conversations, newest first, with the first
// words of the first user turn still stored in each. It seeks from one
// conversation to the next and opens the codec once per conversation: its
// cost grows with the number of conversations, not of turns.
func (db *DB) Conversations(userID int64) ([]valex.ConversationSummary, error) {
	var out []valex.ConversationSummary
	err := db.view(func(tx *bbolt.Tx) error {
		b, err := aiBucket(tx, bucketAITurns)
		if b == nil || err != nil {
			return err
		}
		user := idKey(userID)
		c := b.Cursor()
		k, v := c.Seek(user)
		for k != nil && bytes.HasPrefix(k, user) {
			if len(k) != turnKeyLen {
				return fmt.Errorf("bad turn key %x", k)
			}
			conv := binary.BigEndian.Uint64(k[8:])
			prefix := turnPrefix(userID, conv)
			s := valex.ConversationSummary{ID: conv}
			if at, ok := turnAtNano(v); ok {
				s.StartedAt = fromUnixNano(at)
			}
			// The first user turn gives the title (an answer never does).
			for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if len(v) > 1 && v[1] == roleUser {
					t, err := db.decodeTurn(userID, v)
					if err != nil {
						return fmt.Errorf("turn %x: %w", k, err)
					}
					s.Title = valex.ConversationTitle(t.Text, conversationTitleRunes)
					break
				}
			}
			if lk, lv := lastWithPrefix(c, prefix); lk != nil {
				if at, ok := turnAtNano(lv); ok {
					s.LastAt = fromUnixNano(at)
				}
			}
			out = append(out, s)
			if conv == ^uint64(0) {
				break
			}
			k, v = c.Seek(turnPrefix(userID, conv+1))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list conversations of user %d: %w", userID, err)
	}
	slices.Reverse(out)
	return out, nil
}

// DeleteConversation deletes one of a user's conversations for real (the
// keys go; compaction reclaims their pages) and returns how many turns went.
// Deleting a conversation that is not there deletes nothing.
func (db *DB) DeleteConversation(userID int64, conv uint64) (int, error) {
	var n int
	err := db.update(func(tx *bbolt.Tx) error {
		var err error
		n, _, err = deleteTurns(tx, turnPrefix(userID, conv))
		if err != nil {
			return err
		}
		return dropDocumentTx(tx, userID, conv, false) // documents.go
	})
	if err != nil {
		return 0, fmt.Errorf("delete conversation %d of user %d: %w", conv, userID, err)
	}
	return n, nil
}

// DeleteConversations deletes all of a user's conversations and returns how
// many conversations and turns went. Settings and the usage ledger stay.
func (db *DB) DeleteConversations(userID int64) (convs, turns int, err error) {
	err = db.update(func(tx *bbolt.Tx) error {
		var err error
		turns, convs, err = deleteTurns(tx, idKey(userID))
		if err != nil {
			return err
		}
		return dropDocumentTx(tx, userID, 0, true) // documents.go
	})
	if err != nil {
		return 0, 0, fmt.Errorf("delete conversations of user %d: %w", userID, err)
	}
	return convs, turns, nil
}
