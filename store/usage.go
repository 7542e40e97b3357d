package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	"github.com/valex-ai/valex"
)

// The usage ledger keeps every successful AI call under
// be(userID)‖be(atUnixNano)‖be(seq), and running sums per user, period and
// capability under be(userID)‖period‖capability, where period is 'd' and
// be32(yyyymmdd) for a day or 'm' and be32(yyyymm) for a month, in UTC.
// /usage reads a handful of sum records, however many calls there were.

type usageRecord struct {
	Model        string  `json:"m"`
	Capability   string  `json:"c"`
	InputTokens  int     `json:"i,omitempty"`
	OutputTokens int     `json:"o,omitempty"`
	Images       int     `json:"n,omitempty"`
	AudioSeconds float64 `json:"a,omitempty"`
	Chars        int     `json:"ch,omitempty"`
	Cost         int64   `json:"$"`
}

// A sums record is seven big-endian 8-byte counters in this order.
const (
	sumCalls = iota
	sumInput
	sumOutput
	sumImages
	sumAudioMillis
	sumChars
	sumCost
	sumFields
)

const (
	periodDay   byte = 'd'
	periodMonth byte = 'm'
)

// periodKey is be(userID)‖kind‖be32(date number).
func periodKey(userID int64, kind byte, at time.Time) []byte {
	at = at.UTC()
	n := uint32(at.Year()*100 + int(at.Month()))
	if kind == periodDay {
		n = n*100 + uint32(at.Day())
	}
	k := make([]byte, 13, 13+16)
	binary.BigEndian.PutUint64(k, uint64(userID))
	k[8] = kind
	binary.BigEndian.PutUint32(k[9:], n)
	return k
}

// RecordUsage adds one successful call to the ledger.
func (db *DB) RecordUsage(u valex.AIUsage) error {
	err := db.update(func(tx *bbolt.Tx) error { return putUsage(tx, u) })
	if err != nil {
		return fmt.Errorf("record usage of user %d: %w", u.UserID, err)
	}
	return nil
}

func putUsage(tx *bbolt.Tx, u valex.AIUsage) error {
	if u.UserID == 0 || u.Capability == "" || u.At.IsZero() {
		return fmt.Errorf("usage: user %d, capability %q: incomplete record", u.UserID, u.Capability)
	}
	if err := requireAccount(tx, u.UserID); err != nil {
		return err
	}
	if len(u.Capability) > 32 {
		return fmt.Errorf("usage: capability name too long")
	}
	ledger, err := aiBucket(tx, bucketAIUsage)
	if err != nil {
		return err
	}
	sums, err := aiBucket(tx, bucketAIUsageSums)
	if err != nil {
		return err
	}
	v, err := json.Marshal(usageRecord{Model: u.Model, Capability: u.Capability, InputTokens: u.InputTokens,
		OutputTokens: u.OutputTokens, Images: u.Images, AudioSeconds: u.AudioSeconds, Chars: u.Chars, Cost: u.Cost})
	if err != nil {
		return err
	}
	seq, err := ledger.NextSequence()
	if err != nil {
		return err
	}
	k := make([]byte, 24)
	binary.BigEndian.PutUint64(k, uint64(u.UserID))
	binary.BigEndian.PutUint64(k[8:], uint64(max(unixNano(u.At), 0)))
	binary.BigEndian.PutUint64(k[16:], seq)
	if err := ledger.Put(k, v); err != nil {
		return err
	}

	add := [sumFields]int64{
		sumCalls:       1,
		sumInput:       int64(u.InputTokens),
		sumOutput:      int64(u.OutputTokens),
		sumImages:      int64(u.Images),
		sumAudioMillis: int64(math.Round(u.AudioSeconds * 1000)),
		sumChars:       int64(u.Chars),
		sumCost:        u.Cost,
	}
	for _, kind := range []byte{periodDay, periodMonth} {
		sk := append(periodKey(u.UserID, kind, u.At), u.Capability...)
		old := sums.Get(sk)
		nv := make([]byte, 8*sumFields)
		for i := range sumFields {
			var cur int64
			if len(old) == 8*sumFields {
				cur = int64(binary.BigEndian.Uint64(old[8*i:]))
			}
			binary.BigEndian.PutUint64(nv[8*i:], uint64(cur+add[i]))
		}
		if err := sums.Put(sk, nv); err != nil {
			return err
		}
	}
	return nil
}

// UsageTotals returns a user's usage per capability on the UTC day and in
// the UTC month of at, each sorted by capability.
func (db *DB) UsageTotals(userID int64, at time.Time) (day, month []valex.UsageTotal, err error) {
	err = db.view(func(tx *bbolt.Tx) error {
		b, err := aiBucket(tx, bucketAIUsageSums)
		if b == nil || err != nil {
			return err
		}
		if day, err = readSums(b, periodKey(userID, periodDay, at)); err != nil {
			return err
		}
		month, err = readSums(b, periodKey(userID, periodMonth, at))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load usage of user %d: %w", userID, err)
	}
	return day, month, nil
}

func readSums(b *bbolt.Bucket, prefix []byte) ([]valex.UsageTotal, error) {
	var out []valex.UsageTotal
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) != 8*sumFields {
			return nil, fmt.Errorf("usage sums %x: %d bytes", k, len(v))
		}
		f := func(i int) int64 { return int64(binary.BigEndian.Uint64(v[8*i:])) }
		out = append(out, valex.UsageTotal{
			Capability:   string(k[len(prefix):]),
			Calls:        f(sumCalls),
			InputTokens:  f(sumInput),
			OutputTokens: f(sumOutput),
			Images:       f(sumImages),
			AudioSeconds: float64(f(sumAudioMillis)) / 1000,
			Chars:        f(sumChars),
			Cost:         f(sumCost),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Capability < out[j].Capability })
	return out, nil
}

// UsageSince returns a user's ledger entries from since on, oldest first.
func (db *DB) UsageSince(userID int64, since time.Time) ([]valex.AIUsage, error) {
	var out []valex.AIUsage
	err := db.view(func(tx *bbolt.Tx) error {
		return eachUsage(tx, userID, since, func(u valex.AIUsage) { out = append(out, u) })
	})
	if err != nil {
		return nil, fmt.Errorf("list usage of user %d: %w", userID, err)
	}
	return out, nil
}

func eachUsage(tx *bbolt.Tx, userID int64, since time.Time, fn func(valex.AIUsage)) error {
	b := tx.Bucket(bucketAIUsage)
	if b == nil {
		return nil
	}
	prefix := idKey(userID)
	start := binary.BigEndian.AppendUint64(bytes.Clone(prefix), uint64(max(unixNano(since), 0)))
	c := b.Cursor()
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 24 {
			return fmt.Errorf("bad usage key %x", k)
		}
		var r usageRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("usage %x: %w", k, err)
		}
		fn(valex.AIUsage{
			UserID: userID, Model: r.Model, Capability: r.Capability,
			InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, Images: r.Images,
			AudioSeconds: r.AudioSeconds, Chars: r.Chars, Cost: r.Cost,
			At: fromUnixNano(int64(binary.BigEndian.Uint64(k[8:]))),
		})
	}
	return nil
}

// CostByModelSince sums every user's AI cost per model from since on
// (admins' /stats: no user is named).
func (db *DB) CostByModelSince(since time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	err := db.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAIUsage)
		if b == nil {
			return nil
		}
		from := uint64(max(unixNano(since), 0))
		return b.ForEach(func(k, v []byte) error {
			if len(k) != 24 || binary.BigEndian.Uint64(k[8:16]) < from {
				return nil
			}
			var r usageRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out[r.Model] += r.Cost
			return nil
		})
	})
	return out, err
}
