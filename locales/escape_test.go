package locales

import (
	"regexp"
	"strings"
	"testing"

	"github.com/valex-ai/valex/bot/bottest"
	"github.com/valex-ai/valex/bot/tghtml"
)

// hostile is what a user can put in any value a template shows: markup,
// entities, quotes and a closing tag of the template's own.
const hostile = `</code></b><b>FAKE</b> & "q" <a href="x">`

var placeholder = regexp.MustCompile(`\{\{\s*(?:if\s+)?\.(\w+)\s*\}\}`)

// Every template of every language, given escaped hostile values for all
// its arguments (as callers must pass them), renders as Telegram HTML that
// parses, shows each value as literal text, and adds no markup of its own
// beyond the template's.
func TestEveryTemplateEscapesHostileArguments(t *testing.T) {
	b := mustLoad(t)
	for _, lang := range b.Languages() {
		for _, key := range b.Keys(lang) {
			src := b.message(lang, key)
			raw := src.Other + src.One + src.Few + src.Many
			args := map[string]any{}
			for _, m := range placeholder.FindAllStringSubmatch(raw, -1) {
				if m[1] != "Count" { // plural forms: the number N passes
					args[m[1]] = tghtml.Escape(hostile)
				}
			}
			render := func(args map[string]any) string { return b.T(lang, key, args) }
			if src.One != "" || src.Few != "" || src.Many != "" {
				render = func(args map[string]any) string { return b.N(lang, key, 3, args) }
			}
			baseline, got := render(withPlain(args)), render(args)
			if got == key {
				t.Errorf("%s %s: does not render with values for %v", lang, key, args)
				continue
			}
			text, ents, err := bottest.ParseHTML(got)
			if err != nil {
				t.Errorf("%s %s: does not parse as Telegram HTML: %v\n%s", lang, key, err, got)
				continue
			}
			if len(args) > 0 && !strings.Contains(text, hostile) {
				t.Errorf("%s %s: the value is not shown literally:\n%s", lang, key, text)
			}
			_, want, err := bottest.ParseHTML(baseline)
			if err != nil {
				t.Errorf("%s %s: the template itself does not parse: %v", lang, key, err)
				continue
			}
			if strings.Join(ents, ",") != strings.Join(want, ",") {
				t.Errorf("%s %s: entities %v with hostile values, %v with plain ones", lang, key, ents, want)
			}
		}
	}
}

// withPlain replaces every string argument with a harmless word.
func withPlain(args map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range args {
		if _, ok := v.(string); ok {
			v = "word"
		}
		out[k] = v
	}
	return out
}
