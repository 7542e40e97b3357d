package bottest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Text limits, counted like Telegram counts entity offsets: in UTF-16 code
// units of the text after entity parsing. Counting UTF-16 rather than runes is
// the stricter choice (an emoji outside the BMP costs 2), so a bot that fits
// here also fits on Telegram.
const (
	maxTextLen    = 4096
	maxCaptionLen = 1024
)

// entity is a Bot API MessageEntity. Own type because tgbotapi v5.5.1 lacks
// custom_emoji_id.
type entity struct {
	Type          string    `json:"type"`
	Offset        int       `json:"offset"`
	Length        int       `json:"length"`
	URL           string    `json:"url,omitempty"`
	User          *wireUser `json:"user,omitempty"`
	Language      string    `json:"language,omitempty"`
	CustomEmojiID string    `json:"custom_emoji_id,omitempty"`
}

// formatted is a text after parse_mode processing: what the user sees.
type formatted struct {
	text     string
	entities []entity
}

// parseError is a "can't parse entities" failure; the message mirrors tdlib's
// wording (byte offsets into the UTF-8 input).
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

func parseErrorf(format string, args ...any) error {
	return &parseError{msg: fmt.Sprintf(format, args...)}
}

// openTag is a start tag waiting for its end tag.
type openTag struct {
	name   string
	arg    string // href, code language, span class suffix, emoji id
	offset int    // UTF-16 offset in the output where the tag's content starts
	expand bool   // <blockquote expandable>
}

// parseHTML implements Telegram's HTML parse mode the way tdlib does (tag
// grammar, attribute grammar, error texts), with one deliberate difference:
// a '&' that does not start &lt; &gt; &amp; &quot; or a numeric reference is
// an error here (Telegram's docs require escaping it; tdlib lets it through),
// so a bot that passes here is correct on Telegram too.
func parseHTML(s string) (formatted, error) {
	out := make([]byte, 0, len(s))
	off := 0 // UTF-16 length of out
	var stack []openTag
	var ents []entity
	i := 0
	for i < len(s) {
		switch s[i] {
		case '&':
			r, n := decodeEntity(s[i:])
			if n == 0 {
				return formatted{}, parseErrorf("Unsupported HTML entity at byte offset %d: escape '&' as &amp;", i)
			}
			out = utf8.AppendRune(out, r)
			off += utf16Len(r)
			i += n
		case '<':
			begin := i
			i++
			if i < len(s) && s[i] == '/' {
				// End tag.
				if len(stack) == 0 {
					return formatted{}, parseErrorf("Unexpected end tag at byte offset %d", begin)
				}
				j := i + 1
				for j < len(s) && !isSpace(s[j]) && s[j] != '>' {
					j++
				}
				endName := strings.ToLower(s[i+1 : j])
				for j < len(s) && isSpace(s[j]) {
					j++
				}
				if j == len(s) || s[j] != '>' {
					return formatted{}, parseErrorf("Unclosed end tag at byte offset %d", begin)
				}
				top := stack[len(stack)-1]
				if endName != "" && endName != top.name {
					return formatted{}, parseErrorf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", begin, top.name, endName)
				}
				stack = stack[:len(stack)-1]
				ents = closeEntity(ents, top, off, out)
				i = j + 1
				continue
			}
			tag, next, err := parseStartTag(s, begin)
			if err != nil {
				return formatted{}, err
			}
			tag.offset = off
			stack = append(stack, tag)
			i = next
		default:
			j := i
			for j < len(s) && s[j] != '<' && s[j] != '&' {
				j++
			}
			out = append(out, s[i:j]...)
			off += utf16Count(s[i:j])
			i = j
		}
	}
	if len(stack) > 0 {
		return formatted{}, parseErrorf("Can't find end tag corresponding to start tag \"%s\"", stack[len(stack)-1].name)
	}
	// A language belongs to pre only; a lone <code class="language-x"> is
	// plain code.
	for i := range ents {
		if ents[i].Type == "code" {
			ents[i].Language = ""
		}
	}
	// Entities are created when tags close (inner first); Telegram lists them
	// by offset, outer before inner.
	sort.SliceStable(ents, func(a, b int) bool {
		if ents[a].Offset != ents[b].Offset {
			return ents[a].Offset < ents[b].Offset
		}
		return ents[a].Length > ents[b].Length
	})
	return formatted{text: string(out), entities: ents}, nil
}

// parseStartTag parses "<name attr=value ...>" starting at s[begin] == '<'
// and returns the tag and the index after '>'.
func parseStartTag(s string, begin int) (openTag, int, error) {
	i := begin + 1
	for i < len(s) && !isSpace(s[i]) && s[i] != '>' {
		i++
	}
	if i == len(s) {
		return openTag{}, 0, parseErrorf("Unclosed start tag at byte offset %d", begin)
	}
	tag := openTag{name: strings.ToLower(s[begin+1 : i])}
	if !supportedTag(tag.name) {
		return openTag{}, 0, parseErrorf("Unsupported start tag \"%s\" at byte offset %d", tag.name, begin)
	}
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return openTag{}, 0, parseErrorf("Unclosed start tag at byte offset %d", begin)
		}
		if s[i] == '>' {
			break
		}
		nameBegin := i
		for i < len(s) && !isSpace(s[i]) && s[i] != '=' && s[i] != '>' {
			i++
		}
		attr := strings.ToLower(s[nameBegin:i])
		if attr == "" {
			return openTag{}, 0, parseErrorf("Empty attribute name in the tag \"%s\" at byte offset %d", tag.name, nameBegin)
		}
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return openTag{}, 0, parseErrorf("Unclosed start tag at byte offset %d", begin)
		}
		if s[i] != '=' {
			// The only valueless attribute Telegram knows.
			if tag.name == "blockquote" && attr == "expandable" {
				tag.expand = true
				continue
			}
			return openTag{}, 0, parseErrorf("Expected equal sign in declaration of an attribute of the tag \"%s\" at byte offset %d", tag.name, i)
		}
		i++
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return openTag{}, 0, parseErrorf("Unclosed start tag at byte offset %d", begin)
		}
		var value string
		if q := s[i]; q == '"' || q == '\'' {
			i++
			var v []byte
			for i < len(s) && s[i] != q {
				if s[i] == '&' {
					r, n := decodeEntity(s[i:])
					if n == 0 {
						return openTag{}, 0, parseErrorf("Unsupported HTML entity at byte offset %d: escape '&' as &amp;", i)
					}
					v = utf8.AppendRune(v, r)
					i += n
					continue
				}
				v = append(v, s[i])
				i++
			}
			if i == len(s) {
				return openTag{}, 0, parseErrorf("Unclosed start tag at byte offset %d", begin)
			}
			i++ // closing quote
			value = string(v)
		} else {
			// An unquoted HTML name token.
			tokenBegin := i
			for i < len(s) && (isAlnum(s[i]) || s[i] == '.' || s[i] == '-') {
				i++
			}
			if i == len(s) {
				return openTag{}, 0, parseErrorf("Unclosed start tag at byte offset %d", begin)
			}
			if !isSpace(s[i]) && s[i] != '>' {
				return openTag{}, 0, parseErrorf("Unexpected end of name token at byte offset %d", i)
			}
			value = strings.ToLower(s[tokenBegin:i])
		}
		switch {
		case tag.name == "a" && attr == "href":
			tag.arg = value
		case tag.name == "code" && attr == "class" && strings.HasPrefix(value, "language-"):
			tag.arg = value[len("language-"):]
		case tag.name == "span" && attr == "class" && strings.HasPrefix(value, "tg-"):
			tag.arg = value[len("tg-"):]
		case tag.name == "tg-emoji" && attr == "emoji-id":
			tag.arg = value
		}
		// Other attributes are ignored, as Telegram does.
	}
	if tag.name == "span" && tag.arg != "spoiler" {
		return openTag{}, 0, parseErrorf("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", begin)
	}
	if tag.name == "tg-emoji" {
		if _, err := strconv.ParseInt(tag.arg, 10, 64); err != nil {
			return openTag{}, 0, parseErrorf("Custom emoji entity must have valid emoji-id at byte offset %d", begin)
		}
	}
	return tag, i + 1, nil
}

func supportedTag(name string) bool {
	switch name {
	case "a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del",
		"code", "pre", "tg-spoiler", "span", "blockquote", "tg-emoji":
		return true
	}
	return false
}

// closeEntity appends the entity for a closed tag whose content spans
// [tag.offset, end) in UTF-16 units of out.
func closeEntity(ents []entity, tag openTag, end int, out []byte) []entity {
	length := end - tag.offset
	if length == 0 {
		return ents // Telegram drops empty entities
	}
	e := entity{Offset: tag.offset, Length: length}
	switch tag.name {
	case "b", "strong":
		e.Type = "bold"
	case "i", "em":
		e.Type = "italic"
	case "u", "ins":
		e.Type = "underline"
	case "s", "strike", "del":
		e.Type = "strikethrough"
	case "tg-spoiler", "span":
		e.Type = "spoiler"
	case "tg-emoji":
		e.Type = "custom_emoji"
		e.CustomEmojiID = tag.arg
	case "blockquote":
		e.Type = "blockquote"
		if tag.expand {
			e.Type = "expandable_blockquote"
		}
	case "code":
		// The language is kept for a moment: an enclosing <pre> with the
		// same span takes it over (tdlib's pre+code rule).
		e.Type = "code"
		e.Language = tag.arg
	case "pre":
		e.Type = "pre"
		if n := len(ents); n > 0 {
			last := ents[n-1]
			if last.Type == "code" && last.Offset == e.Offset && last.Length == e.Length && last.Language != "" {
				e.Language = last.Language
				ents = ents[:n-1]
			}
		}
	case "a":
		url := tag.arg
		if url == "" {
			url = utf16Slice(out, tag.offset, length)
		}
		if id, ok := strings.CutPrefix(url, "tg://user?id="); ok {
			if uid, err := strconv.ParseInt(id, 10, 64); err == nil {
				e.Type = "text_mention"
				e.User = &wireUser{ID: uid, FirstName: "User"}
				break
			}
		}
		e.Type = "text_link"
		e.URL = url
	}
	return append(ents, e)
}

// decodeEntity decodes a character reference at the start of s and returns
// the rune and the bytes consumed (0 if s does not start with a valid one).
// Allowed: &lt; &gt; &amp; &quot; &#NNN; &#xHHH;  (the ';' is required).
func decodeEntity(s string) (rune, int) {
	end := strings.IndexByte(s[:min(len(s), 12)], ';')
	if end < 2 {
		return 0, 0
	}
	name := s[1:end]
	switch name {
	case "lt":
		return '<', end + 1
	case "gt":
		return '>', end + 1
	case "amp":
		return '&', end + 1
	case "quot":
		return '"', end + 1
	}
	if name[0] != '#' || len(name) < 2 {
		return 0, 0
	}
	var v uint64
	var err error
	if name[1] == 'x' {
		if len(name) < 3 {
			return 0, 0
		}
		v, err = strconv.ParseUint(name[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(name[1:], 10, 32)
	}
	r := rune(v)
	if err != nil || v == 0 || v > utf8.MaxRune || (r >= 0xD800 && r <= 0xDFFF) {
		return 0, 0
	}
	return r, end + 1
}

// trimText strips leading and trailing whitespace like Telegram does,
// shifting and clipping entities to the remaining text.
func trimText(f formatted) formatted {
	lead := 0
	for lead < len(f.text) && isSpace(f.text[lead]) {
		lead++
	}
	trail := len(f.text)
	for trail > lead && isSpace(f.text[trail-1]) {
		trail--
	}
	if lead == 0 && trail == len(f.text) {
		return f
	}
	text := f.text[lead:trail]
	n := utf16Count(text) // whitespace is ASCII: bytes == UTF-16 units
	var ents []entity
	for _, e := range f.entities {
		start := max(e.Offset-lead, 0)
		end := min(e.Offset+e.Length-lead, n)
		if end <= start {
			continue
		}
		e.Offset, e.Length = start, end-start
		ents = append(ents, e)
	}
	return formatted{text: text, entities: ents}
}

// commandEntities marks every /command as a bot_command entity, as Telegram
// does for messages users send (tdlib's rule): a '/' at the start or after a
// character that is neither a word character nor '/', '<' or '>'; then 1-64
// word characters and an optional @username of 3-32; then the end or a
// character that is, again, neither of those. So "/start," and "(/help)" are
// commands, "/x<b>" and "a/b" are not.
func commandEntities(text string) []entity {
	var ents []entity
	off := 0 // UTF-16 offset of text[i]
	edge := func(c byte) bool { return !isWord(c) && c != '/' && c != '<' && c != '>' }
	for i := 0; i < len(text); {
		if text[i] == '/' && (i == 0 || edge(text[i-1])) {
			j := i + 1
			for j < len(text) && isWord(text[j]) {
				j++
			}
			if j < len(text) && text[j] == '@' {
				k := j + 1
				for k < len(text) && isWord(text[k]) {
					k++
				}
				if k-j-1 >= 3 && k-j-1 <= 32 {
					j = k
				}
			}
			name := text[i+1 : j]
			if at := strings.IndexByte(name, '@'); at >= 0 {
				name = name[:at]
			}
			if len(name) >= 1 && len(name) <= 64 && (j == len(text) || edge(text[j])) {
				ents = append(ents, entity{Type: "bot_command", Offset: off, Length: j - i})
			}
			off += utf16Count(text[i:j])
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		off += utf16Len(r)
		i += size
	}
	return ents
}

func isWord(c byte) bool { return isAlnum(c) || c == '_' }

func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// utf16Count is the length of s in UTF-16 code units.
func utf16Count(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x80:
			n++
		case c >= 0xF0:
			n += 2 // lead byte of a 4-byte sequence: a surrogate pair
		case c >= 0xC0:
			n++
		}
		// continuation bytes (0x80..0xBF) add nothing
	}
	return n
}

// utf16Slice returns the substring of b spanning [off, off+length) in UTF-16 units.
func utf16Slice(b []byte, off, length int) string {
	pos, start := 0, -1
	for i, r := range string(b) {
		if pos == off {
			start = i
		}
		if pos == off+length && start >= 0 {
			return string(b[start:i])
		}
		pos += utf16Len(r)
	}
	if start < 0 {
		return ""
	}
	return string(b[start:])
}
