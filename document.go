package valex

import "time"

// PendingDocument is the text of a document a user sent without a question:
// it waits, sealed in the store, for the user's next message in the same
// chat and conversation, which is answered with it as context. It expires
// after a while and goes with the account and the conversation.
type PendingDocument struct {
	Name         string // the file name the user sent
	Pages        int    // PDF pages; 0 for other kinds
	Text         string
	Truncated    bool // cut at the extraction limit
	ChatID       int64
	Conversation uint64
	At           time.Time // when it was read
}
