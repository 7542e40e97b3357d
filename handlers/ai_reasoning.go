package handlers

// A reasoning model's thinking, shown collapsed above its answer and kept
// out of the history unless the operator asks for it (ai.store_reasoning).

import (
	"strings"
	"unicode/utf8"

	"github.com/valex-ai/valex/bot/tghtml"
)

// maxReasoningChars is the most of the reasoning shown: a quarter of the
// first message, so the answer keeps most of it. Longer reasoning ends
// with an ellipsis.
const maxReasoningChars = tghtml.MaxMessageLen / 4

// withReasoning puts reasoning, collapsed (<blockquote expandable>), above
// html, an answer's rendering before it is split into messages: the block
// is short enough to always land in the first message. Blank reasoning
// leaves html as it is.
func withReasoning(html, reasoning string) string {
	reasoning = strings.TrimSpace(reasoning)
	if reasoning == "" {
		return html
	}
	return "<blockquote expandable>💭 " + tghtml.Escape(shorten(reasoning, maxReasoningChars)) + "</blockquote>\n" + html
}

// shorten cuts text to at most n characters, at a space when one is near,
// and marks the cut with an ellipsis.
func shorten(text string, n int) string {
	if utf8.RuneCountInString(text) <= n {
		return text
	}
	cut, seen := 0, 0
	for i := range text {
		if seen == n-1 { // one character left for the ellipsis
			cut = i
			break
		}
		seen++
	}
	if sp := strings.LastIndexAny(text[:cut], " \n"); sp > cut-80 && sp > 0 {
		cut = sp
	}
	return strings.TrimSpace(text[:cut]) + "…"
}

// storedAnswer is what the history keeps of an answer: the answer alone,
// or, with ai.store_reasoning, the reasoning before it in <think> tags (the
// form reasoning models themselves write it in), so that it is exported
// and sent back with the conversation like the rest of the turn.
func (a *AI) storedAnswer(answer, reasoning string) string {
	reasoning = strings.TrimSpace(reasoning)
	if !a.opt.StoreReasoning || reasoning == "" {
		return answer
	}
	return "<think>\n" + reasoning + "\n</think>\n\n" + answer
}
