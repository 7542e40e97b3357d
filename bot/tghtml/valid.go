package tghtml

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Valid checks s against Telegram's HTML rules and returns the first problem.
//
// It enforces what makes Telegram reject a message with "can't parse
// entities" (unknown tags or attributes, unmatched or unclosed tags, a bare
// '<' or '&', an unsupported entity, invalid UTF-8), is strict about a bare
// '>' (the docs require &gt;), and checks the nesting rules our own output
// must follow: nothing inside code, only code inside pre, a language class
// only on code inside pre, no link, code or pre inside a link, no
// blockquote inside a blockquote. Telegram's softer rule that bold, italic
// and the like should not wrap code is not checked: breaking it only loses
// the outer formatting, never the message.
func Valid(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("tghtml: invalid UTF-8")
	}
	var open []string
	inside := map[string]int{} // open tags by name, for the nesting rules
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			t, ok := readTag(s[i:])
			if !ok {
				return fmt.Errorf("tghtml: byte %d: bare < or malformed tag", i)
			}
			if t.end {
				if len(open) == 0 || open[len(open)-1] != t.name {
					return fmt.Errorf("tghtml: byte %d: unexpected </%s>", i, t.name)
				}
				open = open[:len(open)-1]
				inside[t.name]--
			} else {
				parent := ""
				if len(open) > 0 {
					parent = open[len(open)-1]
				}
				if err := checkStart(t, parent, inside); err != nil {
					return fmt.Errorf("tghtml: byte %d: <%s>: %w", i, t.name, err)
				}
				open = append(open, t.name)
				inside[t.name]++
			}
			i += t.n
		case '&':
			_, n, ok := readEntity(s[i:])
			if !ok {
				return fmt.Errorf("tghtml: byte %d: bare & or unsupported entity", i)
			}
			i += n
		case '>':
			return fmt.Errorf("tghtml: byte %d: bare >", i)
		default:
			i++
		}
	}
	if len(open) > 0 {
		return fmt.Errorf("tghtml: unclosed <%s>", open[len(open)-1])
	}
	return nil
}

// checkStart checks a start tag's name and attributes and where it sits:
// parent is the innermost open tag, inside counts the open tags by name.
func checkStart(t tag, parent string, inside map[string]int) error {
	if inside["code"] > 0 {
		return errors.New("no tags allowed inside <code>")
	}
	if parent == "pre" && t.name != "code" {
		return errors.New("only <code> is allowed inside <pre>")
	}
	for i, a := range t.attrs {
		for _, b := range t.attrs[:i] {
			if a.name == b.name {
				return fmt.Errorf("duplicate attribute %s", a.name)
			}
		}
		if a.hasValue && strings.ContainsRune(a.value, '&') {
			if err := checkEntities(a.value); err != nil {
				return fmt.Errorf("attribute %s: %w", a.name, err)
			}
		}
	}

	switch t.name {
	case "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler":
		return noAttrs(t)
	case "span":
		if len(t.attrs) != 1 || t.attrs[0].name != "class" || t.attrs[0].value != "tg-spoiler" {
			return errors.New(`span needs exactly class="tg-spoiler"`)
		}
	case "a":
		if len(t.attrs) != 1 || t.attrs[0].name != "href" || strings.TrimSpace(t.attrs[0].value) == "" {
			return errors.New("a needs exactly a non-empty href")
		}
		if inside["a"] > 0 {
			return errors.New("links can't be nested")
		}
	case "code":
		if len(t.attrs) > 0 {
			a := t.attrs[0]
			if parent != "pre" {
				return errors.New("a language class is only allowed on code inside pre")
			}
			lang, ok := strings.CutPrefix(a.value, "language-")
			if len(t.attrs) != 1 || a.name != "class" || !ok || lang == "" {
				return errors.New(`code takes only class="language-..."`)
			}
		}
		if inside["a"] > 0 {
			return errors.New("code can't be inside a link")
		}
	case "pre":
		if err := noAttrs(t); err != nil {
			return err
		}
		if inside["a"] > 0 {
			return errors.New("pre can't be inside a link")
		}
	case "blockquote":
		if len(t.attrs) > 1 || len(t.attrs) == 1 && (t.attrs[0].name != "expandable" || t.attrs[0].hasValue) {
			return errors.New("blockquote takes only the expandable attribute")
		}
		if inside["blockquote"] > 0 {
			return errors.New("blockquotes can't be nested")
		}
	default:
		return errors.New("unsupported tag")
	}
	return nil
}

func noAttrs(t tag) error {
	if len(t.attrs) > 0 {
		return fmt.Errorf("unsupported attribute %s", t.attrs[0].name)
	}
	return nil
}

func checkEntities(s string) error {
	for i := strings.IndexByte(s, '&'); i >= 0; i = strings.IndexByte(s, '&') {
		_, n, ok := readEntity(s[i:])
		if !ok {
			return errors.New("bare & or unsupported entity")
		}
		s = s[i+n:]
	}
	return nil
}
