package handlers

// Group questions kept for the buttons under their answers. Groups keep no
// history (a private conversation must never leak into a group), so the
// Retry button of a group answer finds its question here, for a while: in
// memory only (after a restart the asker asks again), bounded in count and
// bytes, oldest out first, and dropped with the asker's AI work (StopUser:
// consent withdrawn, restriction, erasure).

import (
	"container/list"
	"sync"
	"time"
)

// Bounds of the group questions kept.
const (
	askedTTL      = 6 * time.Hour
	askedMaxCount = 2000
	askedMaxBytes = 2 << 20
)

type askedKey struct {
	chatID    int64
	messageID int
}

// askedQuestion is a group message the bot answered.
type askedQuestion struct {
	userID  int64  // the asker: nobody else may press its buttons
	text    string // the question, the bot's mention removed
	context string // the bot message it replied to, when it did
	at      time.Time
	key     askedKey
}

func (q askedQuestion) size() int { return len(q.text) + len(q.context) + 64 }

// askedStore is the bounded memory of group questions; the zero value is
// ready to use.
type askedStore struct {
	mu    sync.Mutex
	byKey map[askedKey]*list.Element // of *askedQuestion
	order list.List                  // oldest first
	bytes int
}

// put keeps q, asked at now, under its chat and message.
func (s *askedStore) put(chatID int64, messageID int, q askedQuestion, now time.Time) {
	q.key, q.at = askedKey{chatID, messageID}, now
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKey == nil {
		s.byKey = make(map[askedKey]*list.Element)
	}
	if e, ok := s.byKey[q.key]; ok {
		s.removeLocked(e)
	}
	s.byKey[q.key] = s.order.PushBack(&q)
	s.bytes += q.size()
	for e := s.order.Front(); e != nil && (s.order.Len() > askedMaxCount || s.bytes > askedMaxBytes || now.Sub(e.Value.(*askedQuestion).at) > askedTTL); e = s.order.Front() {
		s.removeLocked(e)
	}
}

// get returns the question of a message, unless it expired or was dropped.
func (s *askedStore) get(chatID int64, messageID int, now time.Time) (askedQuestion, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[askedKey{chatID, messageID}]
	if !ok {
		return askedQuestion{}, false
	}
	q := *e.Value.(*askedQuestion)
	if now.Sub(q.at) > askedTTL {
		s.removeLocked(e)
		return askedQuestion{}, false
	}
	return q, true
}

// forget drops every question of a user.
func (s *askedStore) forget(userID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.order.Front(); e != nil; {
		next := e.Next()
		if e.Value.(*askedQuestion).userID == userID {
			s.removeLocked(e)
		}
		e = next
	}
}

func (s *askedStore) removeLocked(e *list.Element) {
	q := s.order.Remove(e).(*askedQuestion)
	delete(s.byKey, q.key)
	s.bytes -= q.size()
}
