package valex

import (
	"strings"
	"time"
	"unicode/utf8"
)

// ConversationSummary is one of a user's AI conversations as /conversations
// lists it. Title holds the first words of its first user turn that is still
// stored: personal data, shown only in the user's private chat.
type ConversationSummary struct {
	ID        uint64 // the conversation number (AISettings.Conversation)
	Title     string
	StartedAt time.Time // first stored turn
	LastAt    time.Time // newest turn
}

// ConversationTitle returns the first words of text, at most maxRunes
// runes, with an ellipsis when something was cut.
func ConversationTitle(text string, maxRunes int) string {
	words := strings.Fields(text)
	var b strings.Builder
	n := 0
	for i, w := range words {
		wn := utf8.RuneCountInString(w)
		sep := 0
		if i > 0 {
			sep = 1
		}
		if n+sep+wn > maxRunes {
			if n == 0 { // one long word: cut it
				r := []rune(w)
				b.WriteString(string(r[:max(maxRunes-1, 0)]))
			}
			b.WriteString("…")
			return b.String()
		}
		if sep == 1 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		n += sep + wn
	}
	return b.String()
}
