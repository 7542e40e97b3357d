package tghtml

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Split cuts Telegram HTML into parts of at most limit visible characters
// (UTF-16 code units after entity decoding, as Telegram counts); limit <= 0
// means MaxMessageLen. Text that fits is returned unchanged as one part.
//
// A cut prefers a paragraph break (\n\n), then a line break, then a space,
// each only if it keeps the part at least half full, then any of them, and
// cuts mid-word only when the window has no whitespace at all. The
// whitespace at a cut is dropped. Cuts fall between characters, never
// inside a tag or an entity, and not before a combining mark or inside a
// ZWJ emoji sequence. Tags open at a cut are closed at the end of the part
// and reopened, with the same attributes, at the start of the next, so
// every part of valid input is valid on its own.
//
// Parts that would hold only whitespace are left out. The one case a part
// can exceed limit is limit 1 and a character outside the BMP (2 units).
func Split(s string, limit int) []string {
	if limit <= 0 {
		limit = MaxMessageLen
	}
	// A UTF-8 byte is at least one UTF-16 unit of visible text, so a string
	// no longer than limit in bytes fits without counting (most replies).
	if len(s) <= limit || VisibleLen(s) <= limit {
		return []string{s}
	}

	// Characters go in flat slices without pointers (a 10k answer is 10k
	// of them); tags, which are few, are kept whole. sum[k] is the width of
	// characters 0..k-1, and pos/end[k] the bytes of character k.
	size := utf8.RuneCountInString(s) // at least the number of characters
	var tags []token
	runes := make([]rune, 0, size)
	pos := make([]int, 0, size)
	end := make([]int, 0, size)
	sum := make([]int, 1, size+1)
	for t := range tokens(s) {
		if t.kind != kindChar {
			tags = append(tags, t)
			continue
		}
		runes = append(runes, t.r)
		pos = append(pos, t.pos)
		end = append(end, t.pos+len(t.raw))
		sum = append(sum, sum[len(sum)-1]+t.width())
	}
	n := len(runes)

	var parts []string
	var open []token // start tags open at byte offset from
	from := 0        // first byte not yet written or skipped
	nextTag := 0     // first tag at or after from
	// advance updates open with the tags before byte offset to.
	advance := func(to int) {
		for ; nextTag < len(tags) && tags[nextTag].pos < to; nextTag++ {
			t := tags[nextTag]
			switch {
			case t.kind == kindStart:
				open = append(open, t)
			case len(open) > 0 && open[len(open)-1].name == t.name:
				open = open[:len(open)-1]
			default:
				// Valid input always closes the innermost tag; for
				// invalid input, ignore an end tag that matches nothing.
			}
		}
	}

	for start := 0; start < n; {
		var b strings.Builder
		for _, t := range open {
			b.WriteString(t.raw)
		}
		if sum[n]-sum[start] <= limit {
			// The rest fits, closing tags included.
			b.WriteString(s[from:])
			if !blank(runes[start:]) {
				parts = append(parts, b.String())
			}
			break
		}

		// stop is the largest char index with chars start..stop-1 fitting.
		stop := start + 1
		for stop < n && sum[stop+1]-sum[start] <= limit {
			stop++
		}
		cut, resume := chooseCut(runes, start, stop)

		partEnd := end[cut-1]
		b.WriteString(s[from:partEnd])
		advance(partEnd)
		for i := len(open) - 1; i >= 0; i-- {
			b.WriteString("</" + open[i].name + ">")
		}
		if !blank(runes[start:cut]) {
			parts = append(parts, b.String())
		}
		if resume == n {
			break // only whitespace and end tags were left
		}
		// Tags between the cut and the next part only change what is open.
		from = pos[resume]
		advance(from)
		start = resume
	}
	return parts
}

// chooseCut picks where to end the part that starts at character start and
// may run up to end (exclusive): the part is runes[start:cut] and the next
// one starts at resume; runes[cut:resume] is dropped whitespace.
func chooseCut(runes []rune, start, end int) (cut, resume int) {
	half := start + (end-start)/2
	for _, lo := range []int{max(half, start+1), start + 1} {
		if p := lastBreak(runes, start, end, lo, isParagraphBreak); p > 0 {
			return p, skip(runes, p, isNewline)
		}
		if p := lastBreak(runes, start, end, lo, isLineBreak); p > 0 {
			return p, skip(runes, p, isNewline)
		}
		if p := lastBreak(runes, start, end, lo, isSpaceBreak); p > 0 {
			return p, skip(runes, p, isBlank)
		}
	}
	cut = end
	for cut > start+1 && joined(runes[cut-1], runes[cut]) {
		cut--
	}
	return cut, cut
}

// lastBreak returns the last position p in [lo, end] where brk holds,
// moved back to the start of its whitespace run, or 0 if there is none.
func lastBreak(runes []rune, start, end, lo int, brk func([]rune, int) bool) int {
	for p := end; p >= lo; p-- {
		if brk(runes, p) {
			sep := runes[p]
			for p-1 > start && runes[p-1] == sep {
				p--
			}
			return p
		}
	}
	return 0
}

func isParagraphBreak(r []rune, p int) bool {
	return p+1 < len(r) && r[p] == '\n' && r[p+1] == '\n'
}

func isLineBreak(r []rune, p int) bool  { return r[p] == '\n' }
func isSpaceBreak(r []rune, p int) bool { return isBlank(r[p]) }
func isNewline(r rune) bool             { return r == '\n' || r == '\r' }
func isBlank(r rune) bool               { return r == ' ' || r == '\t' }

func skip(runes []rune, p int, f func(rune) bool) int {
	for p < len(runes) && f(runes[p]) {
		p++
	}
	return p
}

// joined reports whether cur belongs to the same visible character as prev:
// a combining mark, variation selector, emoji modifier or tag, or either
// side of a zero-width joiner.
func joined(prev, cur rune) bool {
	const zwj = '\u200D'
	switch {
	case prev == zwj || cur == zwj:
		return true
	case unicode.In(cur, unicode.Mn, unicode.Me, unicode.Mc):
		return true
	case 0x1F3FB <= cur && cur <= 0x1F3FF: // skin tones
		return true
	case 0xE0020 <= cur && cur <= 0xE007F: // emoji tag sequences
		return true
	}
	return false
}

func blank(runes []rune) bool {
	for _, r := range runes {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
