// Package tghtml produces and handles text for Telegram's HTML parse mode:
// escaping, converting model Markdown, splitting long messages at the
// 4096-character limit, plain-text fallback and validation.
//
// Telegram HTML is a small language of its own, not HTML: the tags are b,
// strong, i, em, u, ins, s, strike, del, tg-spoiler, span class="tg-spoiler",
// a href, code, pre (optionally with <code class="language-x"> inside) and
// blockquote (optionally expandable); the only named entities are &lt; &gt;
// &amp; &quot;, plus numeric ones. Lengths are counted on the text after
// entity decoding, in UTF-16 code units.
//
// The package is pure Go and knows nothing of the Bot API client.
package tghtml

import (
	"iter"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxMessageLen is Telegram's limit on a message's text, in UTF-16 code
// units after entity parsing.
const MaxMessageLen = 4096

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

// Escape makes s safe as Telegram HTML text or as a quoted attribute value.
func Escape(s string) string {
	return escaper.Replace(s)
}

// Strip returns the plain text of s: tags removed, entities decoded. It is
// the fallback when Telegram rejects a message with "can't parse entities",
// so it accepts malformed input and keeps what it cannot parse as text.
func Strip(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for t := range tokens(s) {
		if t.kind == kindChar {
			b.WriteString(t.text())
		}
	}
	return b.String()
}

// VisibleLen returns the length Telegram counts against MaxMessageLen: the
// UTF-16 length of the text after removing tags and decoding entities.
func VisibleLen(s string) int {
	n := 0
	for t := range tokens(s) {
		if t.kind == kindChar {
			n += t.width()
		}
	}
	return n
}

type kind uint8

const (
	kindChar  kind = iota // one visible character: a literal rune or an entity
	kindStart             // <name attr="...">
	kindEnd               // </name>
)

// token is one piece of Telegram HTML. Splitting works on tokens so that a
// cut can never land inside a tag or an entity.
type token struct {
	kind kind
	pos  int    // byte offset of raw in the input
	raw  string // source text: one character, one entity, or a whole tag
	r    rune   // decoded character (kindChar)
	name string // lower-case tag name (kindStart, kindEnd)
}

// text returns the decoded text of a character token. Invalid UTF-8 bytes are
// kept as they are rather than turned into U+FFFD.
func (t token) text() string {
	if len(t.raw) > 1 && t.raw[0] == '&' {
		return string(t.r)
	}
	return t.raw
}

// width is the character's length in UTF-16 code units.
func (t token) width() int {
	if n := utf16.RuneLen(t.r); n > 0 {
		return n
	}
	return 1
}

// tokens scans s leniently: a '<' that does not start a well-formed tag and an
// '&' that does not start a supported entity are ordinary characters. Valid
// is the strict counterpart.
func tokens(s string) iter.Seq[token] {
	return func(yield func(token) bool) {
		for i := 0; i < len(s); {
			t := token{kind: kindChar, pos: i}
			n := 0
			switch s[i] {
			case '<':
				if tag, ok := readTag(s[i:]); ok {
					t.kind, t.name, n = kindStart, tag.name, tag.n
					if tag.end {
						t.kind = kindEnd
					}
				}
			case '&':
				t.r, n, _ = readEntity(s[i:])
			}
			if n == 0 {
				t.r, n = utf8.DecodeRuneInString(s[i:])
			}
			t.raw = s[i : i+n]
			if !yield(t) {
				return
			}
			i += n
		}
	}
}

type attr struct {
	name     string // lower case
	value    string // raw: quotes removed, entities not decoded
	hasValue bool
}

type tag struct {
	name  string // lower case
	end   bool
	attrs []attr
	n     int // length in bytes, '<' to '>' inclusive
}

// readTag parses the tag at the start of s (s[0] == '<') the way Telegram
// does: a name of letters, digits and '-', attributes with "double",
// 'single' or unquoted values, no self-closing form.
func readTag(s string) (tag, bool) {
	var t tag
	i := 1
	if i < len(s) && s[i] == '/' {
		t.end = true
		i++
	}
	start := i
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == start {
		return t, false
	}
	t.name = strings.ToLower(s[start:i])
	for {
		i = skipSpace(s, i)
		if i >= len(s) {
			return t, false
		}
		if s[i] == '>' {
			t.n = i + 1
			return t, true
		}
		if t.end {
			return t, false
		}
		start = i
		for i < len(s) && (isNameByte(s[i]) || s[i] == '_') {
			i++
		}
		if i == start {
			return t, false
		}
		a := attr{name: strings.ToLower(s[start:i])}
		i = skipSpace(s, i)
		if i < len(s) && s[i] == '=' {
			i = skipSpace(s, i+1)
			if i >= len(s) {
				return t, false
			}
			a.hasValue = true
			if q := s[i]; q == '"' || q == '\'' {
				end := strings.IndexByte(s[i+1:], q)
				if end < 0 {
					return t, false
				}
				a.value = s[i+1 : i+1+end]
				i += end + 2
			} else {
				start = i
				for i < len(s) && !isSpace(s[i]) && s[i] != '>' && s[i] != '"' && s[i] != '\'' && s[i] != '<' {
					i++
				}
				if i == start {
					return t, false
				}
				a.value = s[start:i]
			}
		}
		t.attrs = append(t.attrs, a)
	}
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

// readEntity decodes the entity at the start of s (s[0] == '&'): one of the
// four named entities Telegram supports or a numeric one (&#123; &#x1F600;).
// n is 0 when s does not start with a supported entity.
func readEntity(s string) (r rune, n int, ok bool) {
	for _, e := range namedEntities {
		if strings.HasPrefix(s, e.name) {
			return e.r, len(e.name), true
		}
	}
	if !strings.HasPrefix(s, "&#") {
		return 0, 0, false
	}
	i, base := 2, 10
	if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
		i, base = 3, 16
	}
	end := strings.IndexByte(s[i:], ';')
	// Seven hex or decimal digits cover every code point; more is not a
	// character Telegram would accept.
	if end <= 0 || end > 7 {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(s[i:i+end], base, 32)
	if err != nil || v == 0 || v > utf8.MaxRune || 0xD800 <= v && v <= 0xDFFF {
		return 0, 0, false
	}
	return rune(v), i + end + 1, true
}

var namedEntities = []struct {
	name string
	r    rune
}{
	{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'},
}
