// Package locales holds the bot's user-facing messages in every supported
// language (en.toml, ru.toml, embedded in the binary) and renders them with
// go-i18n, which supplies the CLDR plural rules (Russian has one/few/many/other).
//
// Files are go-i18n TOML, one message per line with a flat quoted key
// ("error.generic" = "..."): a grep for a key finds it, and a key segment
// named "one" or "other" can never be mistaken for a plural form. Plural
// messages are inline tables with the forms the language needs:
//
//	"unit.days" = { one = "{{.Count}} day", other = "{{.Count}} days" }
//
// (Inline, not [section] tables: in TOML every key after a section header
// belongs to the section, so a key appended at the end would silently land
// inside the last plural message.)
//
// Templates use Go template syntax ({{.Name}}).
//
// Messages are Telegram HTML: a value may contain the tags b, i and code, and
// literal &, < and > must be written as &amp;, &lt; and &gt;. Arguments are
// NOT escaped here — callers escape user-supplied args (tghtml.Escape) before
// passing them, because only the caller knows whether an arg is text or markup.
package locales

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/nicksnyder/go-i18n/v2/i18n/template"
	"golang.org/x/text/language"
)

//go:embed *.toml
var files embed.FS

// DefaultLanguage is used for unsupported Telegram language codes and for
// keys missing in a translation.
const DefaultLanguage = "en"

// parser fails on a missing argument instead of printing "<no value>", which
// would be invalid Telegram HTML; T and N then fall back to the key.
var parser = &template.TextParser{Option: "missingkey=error"}

// Bundle is the parsed message files. It is read-only after Load and safe for
// concurrent use.
type Bundle struct {
	bundle     *i18n.Bundle
	languages  []string                            // default first, then sorted
	messages   map[string]map[string]*i18n.Message // lang → key → message
	localizers map[string]*i18n.Localizer
	// plain caches the messages rendered without arguments or count (the
	// same text every time): lang + "\x00" + key → text.
	plain sync.Map
}

// Load parses the embedded message files.
func Load() (*Bundle, error) {
	return load(files)
}

func load(fsys fs.FS) (*Bundle, error) {
	names, err := fs.Glob(fsys, "*.toml")
	if err != nil {
		return nil, fmt.Errorf("list message files: %w", err)
	}
	b := &Bundle{
		bundle:     i18n.NewBundle(language.MustParse(DefaultLanguage)),
		messages:   map[string]map[string]*i18n.Message{},
		localizers: map[string]*i18n.Localizer{},
	}
	b.bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	for _, name := range names {
		buf, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		mf, err := b.bundle.ParseMessageFileBytes(buf, name)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		lang := strings.TrimSuffix(name, ".toml")
		// Match compares primary language subtags only, so a file for
		// "pt-BR" could never be chosen.
		if base, _ := mf.Tag.Base(); mf.Tag.String() != lang || base.String() != lang {
			return nil, fmt.Errorf("parse %s: file name must be a bare language code like ru.toml", name)
		}
		msgs := make(map[string]*i18n.Message, len(mf.Messages))
		for _, m := range mf.Messages {
			msgs[m.ID] = m
		}
		b.messages[lang] = msgs
		b.localizers[lang] = i18n.NewLocalizer(b.bundle, lang)
		if lang != DefaultLanguage {
			b.languages = append(b.languages, lang)
		}
	}
	if _, ok := b.messages[DefaultLanguage]; !ok {
		return nil, fmt.Errorf("load messages: no %s.toml", DefaultLanguage)
	}
	sort.Strings(b.languages)
	b.languages = append([]string{DefaultLanguage}, b.languages...)
	return b, nil
}

// Languages returns the supported language codes, the default first.
func (b *Bundle) Languages() []string {
	return append([]string(nil), b.languages...)
}

// Match maps a Telegram language_code ("ru", "ru-RU", "en-US", "uk", "")
// to a supported language, or the default. It compares the primary language
// subtag only: x/text's matcher would map e.g. Ukrainian or Kazakh to Russian,
// which is not a choice to make for a user.
func (b *Bundle) Match(code string) string {
	base, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(code)), "-")
	base, _, _ = strings.Cut(base, "_")
	if _, ok := b.messages[base]; ok {
		return base
	}
	return DefaultLanguage
}

// T renders the message key in lang with args. A key missing in lang falls
// back to the default language; a key missing everywhere, or a template
// that fails (say, a missing argument), renders as the key itself so the
// mistake is visible without breaking the reply.
func (b *Bundle) T(lang, key string, args map[string]any) string {
	return b.localize(lang, key, args, nil)
}

// N renders the plural form of key for count. args["Count"] is set to count
// (args itself is not modified).
func (b *Bundle) N(lang, key string, count int, args map[string]any) string {
	data := make(map[string]any, len(args)+1)
	for k, v := range args {
		data[k] = v
	}
	data["Count"] = count
	return b.localize(lang, key, data, count)
}

func (b *Bundle) localize(lang, key string, args map[string]any, count any) string {
	lang = b.Match(lang)
	if len(args) == 0 && count == nil {
		ck := lang + "\x00" + key
		if s, ok := b.plain.Load(ck); ok {
			return s.(string)
		}
		s := b.render(lang, key, nil, nil)
		b.plain.Store(ck, s)
		return s
	}
	return b.render(lang, key, args, count)
}

// render executes key's template in lang (the default language when lang
// lacks it).
func (b *Bundle) render(lang, key string, args map[string]any, count any) string {
	if !b.Has(lang, key) {
		if !b.Has(DefaultLanguage, key) {
			return key
		}
		lang = DefaultLanguage
	}
	// go-i18n executes templates with nil data as "no data"; an empty map
	// keeps missing-argument errors consistent.
	if args == nil {
		args = map[string]any{}
	}
	s, err := b.localizers[lang].Localize(&i18n.LocalizeConfig{
		MessageID:      key,
		TemplateData:   args,
		PluralCount:    count,
		TemplateParser: parser,
	})
	if err != nil {
		return key
	}
	return s
}

// Has reports whether lang has its own message for key (no fallback).
func (b *Bundle) Has(lang, key string) bool {
	_, ok := b.messages[lang][key]
	return ok
}

// Keys returns the keys defined in lang, sorted.
func (b *Bundle) Keys(lang string) []string {
	keys := make([]string, 0, len(b.messages[lang]))
	for k := range b.messages[lang] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// message returns the raw message for tests.
func (b *Bundle) message(lang, key string) *i18n.Message {
	return b.messages[lang][key]
}
