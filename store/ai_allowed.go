package store

// A cache of whether each user's requests may go to an AI provider.
//
// An AI turn asks three times (when the message comes, when its job starts,
// right before the call), and each answer decoded the user's whole consent
// log: 3 % of the CPU of an AI answer. Consents change rarely, and only in
// two places (appendEvent, eraseUserTx), which bump a generation before
// their commit and after it; an entry is used only while the generation it
// was read under is current. A read racing a change is tagged with a
// generation the change outdates, so it is never served afterwards.

import (
	"sync"
	"sync/atomic"

	valex "github.com/valex-ai/valex"
)

// aiAllowedMax bounds the entries; when full the cache starts over.
const aiAllowedMax = 4096

type aiAllowedCache struct {
	gen atomic.Uint64
	mu  sync.Mutex
	m   map[int64]aiAllowedEntry
}

type aiAllowedEntry struct {
	gen     uint64
	allowed bool
}

// consentsChanging outdates every cached answer: called before a consent or
// restriction write commits and again after it.
func (db *DB) consentsChanging() { db.aiAllowed.gen.Add(1) }

// AIAllowed reports whether the user's requests may go to an AI provider
// now: the transfer consent is given and AI processing is not restricted
// (valex.CanUseAI of ConsentState).
func (db *DB) AIAllowed(userID int64) (bool, error) {
	c := &db.aiAllowed
	gen := c.gen.Load() // before the read: a change after it outdates the entry
	c.mu.Lock()
	e, ok := c.m[userID]
	c.mu.Unlock()
	if ok && e.gen == gen {
		return e.allowed, nil
	}
	st, err := db.ConsentState(userID)
	if err != nil {
		return false, err
	}
	allowed := valex.CanUseAI(st)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= aiAllowedMax {
		c.m = make(map[int64]aiAllowedEntry)
	}
	c.m[userID] = aiAllowedEntry{gen: gen, allowed: allowed}
	c.mu.Unlock()
	return allowed, nil
}
