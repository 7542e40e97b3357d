// Package valex is the domain of the Valex bot: users, roles, consents and the
// rules that govern them. It holds plain types and pure functions and imports
// no adapter (Telegram, bbolt, AI providers, cron live in their own packages).
package valex

import "time"

// Clock tells the time. Logic never calls time.Now directly so that SLA and
// retention rules can be tested on a fake clock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current wall-clock time.
func (SystemClock) Now() time.Time { return time.Now() }

// Version is the build version, set with -ldflags at build time.
var Version = "dev"

// InboxEntry is one Telegram update exactly as received, kept durably from
// the moment it arrives until a handler has finished with it.
type InboxEntry struct {
	ID      int
	Payload []byte
	// UserID is the sender (0 when the update has none). The store seals
	// the payload with the sender's key while it waits, so erasing them
	// makes even a pending update in a backup unreadable.
	UserID int64
}
