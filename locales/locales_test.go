package locales

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"text/template"
	"text/template/parse"
	"unicode"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"

	"github.com/valex-ai/valex/bot/tghtml"
)

func mustLoad(tb testing.TB) *Bundle {
	tb.Helper()
	b, err := Load()
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return b
}

func TestLanguages(t *testing.T) {
	b := mustLoad(t)
	if got := b.Languages(); !slices.Equal(got, []string{"en", "ru"}) {
		t.Errorf("Languages() = %q, want [en ru]", got)
	}
}

// forms lists a message's plural forms by CLDR category.
func forms(m *i18n.Message) map[plural.Form]string {
	all := map[plural.Form]string{
		plural.Zero: m.Zero, plural.One: m.One, plural.Two: m.Two,
		plural.Few: m.Few, plural.Many: m.Many, plural.Other: m.Other,
	}
	set := map[plural.Form]string{}
	for f, s := range all {
		if s != "" {
			set[f] = s
		}
	}
	return set
}

func isPlural(m *i18n.Message) bool {
	return m.Zero != "" || m.One != "" || m.Two != "" || m.Few != "" || m.Many != ""
}

// requiredForms returns the CLDR cardinal categories lang uses, found by
// asking x/text's rules about integers and one-decimal fractions (Russian
// "other", for instance, is only reached by fractions).
func requiredForms(lang string) map[plural.Form]bool {
	tag := language.MustParse(lang)
	need := map[plural.Form]bool{}
	for i := range 1000 {
		need[plural.Cardinal.MatchPlural(tag, i, 0, 0, 0, 0)] = true
	}
	for i := range 20 {
		for f := range 10 {
			w := 0
			if f != 0 {
				w = 1
			}
			need[plural.Cardinal.MatchPlural(tag, i, 1, w, f, f)] = true
		}
	}
	return need
}

var formName = map[plural.Form]string{plural.Zero: "zero", plural.One: "one", plural.Two: "two",
	plural.Few: "few", plural.Many: "many", plural.Other: "other"}

func formNames(set map[plural.Form]bool) string {
	var s []string
	for f := range set {
		s = append(s, formName[f])
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// TestEveryKeyInEveryLanguage: every key of every file exists in all the
// others, plural in all or none, and plural messages have exactly the forms
// their language needs.
func TestEveryKeyInEveryLanguage(t *testing.T) {
	b := mustLoad(t)
	all := map[string]bool{}
	for _, lang := range b.Languages() {
		for _, k := range b.Keys(lang) {
			all[k] = true
		}
	}
	if len(all) == 0 {
		t.Fatal("no keys loaded")
	}
	for _, lang := range b.Languages() {
		need := requiredForms(lang)
		for _, key := range slices.Sorted(maps.Keys(all)) {
			if !b.Has(lang, key) {
				t.Errorf("%s: missing key %q", lang, key)
				continue
			}
			m := b.message(lang, key)
			if isPlural(m) != isPlural(b.message(DefaultLanguage, key)) {
				t.Errorf("%s: %q is plural in one language and not in the other", lang, key)
				continue
			}
			have := forms(m)
			if !isPlural(m) {
				if strings.TrimSpace(m.Other) == "" {
					t.Errorf("%s: %q is empty", lang, key)
				}
				continue
			}
			haveSet := map[plural.Form]bool{}
			for f := range have {
				haveSet[f] = true
			}
			if !maps.Equal(haveSet, need) {
				t.Errorf("%s: %q has plural forms [%s], the language needs [%s]",
					lang, key, formNames(haveSet), formNames(need))
			}
		}
	}
}

// fields collects the argument paths a template uses ({{.A}}, {{.A.B}}).
func fields(n parse.Node, out map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			fields(c, out)
		}
	case *parse.ActionNode:
		fields(n.Pipe, out)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				fields(a, out)
			}
		}
	case *parse.FieldNode:
		out[strings.Join(n.Ident, ".")] = true
	case *parse.IfNode:
		fields(n.Pipe, out)
		fields(n.List, out)
		fields(n.ElseList, out)
	case *parse.RangeNode:
		fields(n.Pipe, out)
		fields(n.List, out)
		fields(n.ElseList, out)
	case *parse.WithNode:
		fields(n.Pipe, out)
		fields(n.List, out)
		fields(n.ElseList, out)
	}
}

// placeholders builds args for the given paths: 7 at every leaf, so the
// value prints and also compares as a number.
func placeholders(paths map[string]bool) map[string]any {
	args := map[string]any{}
	for p := range paths {
		m := args
		parts := strings.Split(p, ".")
		for _, part := range parts[:len(parts)-1] {
			next, ok := m[part].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[part] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = 7
	}
	return args
}

var tagName = regexp.MustCompile(`</?([a-zA-Z0-9-]+)`)

// TestTemplates parses every form of every message, checks all languages use
// the same arguments, and renders each with placeholder arguments: the
// result must not fall back to the key and must be valid Telegram HTML using
// only b, i and code.
func TestTemplates(t *testing.T) {
	b := mustLoad(t)
	for _, key := range b.Keys(DefaultLanguage) {
		var want map[string]bool
		for _, lang := range b.Languages() {
			m := b.message(lang, key)
			if m == nil {
				continue // reported by TestEveryKeyInEveryLanguage
			}
			used := map[string]bool{}
			for f, src := range forms(m) {
				tmpl, err := template.New(key).Option("missingkey=error").Parse(src)
				if err != nil {
					t.Errorf("%s: %q form %s: %v", lang, key, formName[f], err)
					continue
				}
				fields(tmpl.Root, used)
			}
			delete(used, "Count") // supplied by N
			if want == nil {
				want = used
			} else if !maps.Equal(used, want) {
				t.Errorf("%s: %q uses args %v, %s uses %v", lang, key,
					slices.Sorted(maps.Keys(used)), DefaultLanguage, slices.Sorted(maps.Keys(want)))
			}

			args := placeholders(used)
			var outs []string
			if isPlural(m) {
				for _, n := range []int{0, 1, 2, 5, 11, 21, 22, 101} {
					outs = append(outs, b.N(lang, key, n, args))
				}
			} else {
				outs = append(outs, b.T(lang, key, args))
			}
			for _, out := range outs {
				if out == key {
					t.Errorf("%s: %q did not render with args %v", lang, key, args)
					continue
				}
				if err := tghtml.Valid(out); err != nil {
					t.Errorf("%s: %q is not valid Telegram HTML: %v\n%s", lang, key, err, out)
				}
				for _, m := range tagName.FindAllStringSubmatch(out, -1) {
					if name := strings.ToLower(m[1]); name != "b" && name != "i" && name != "code" {
						t.Errorf("%s: %q uses <%s>; messages may use only b, i and code", lang, key, name)
					}
				}
			}
		}
	}
}

func TestMatch(t *testing.T) {
	b := mustLoad(t)
	tests := []struct{ code, want string }{
		{"ru", "ru"},
		{"ru-RU", "ru"},
		{"RU", "ru"},
		{"ru_RU", "ru"},
		{"en", "en"},
		{"en-US", "en"},
		{"en-GB", "en"},
		{"uk", "en"},
		{"be", "en"},
		{"kk", "en"},
		{"de", "en"},
		{"pt-br", "en"},
		{"", "en"},
		{"  ", "en"},
		{"-", "en"},
		{"not a tag", "en"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.code), func(t *testing.T) {
			if got := b.Match(tt.code); got != tt.want {
				t.Errorf("Match(%q) = %q, want %q", tt.code, got, tt.want)
			}
		})
	}
}

func TestPlural(t *testing.T) {
	b := mustLoad(t)
	tests := []struct {
		lang  string
		count int
		want  string
	}{
		{"ru", 1, "1 день"},
		{"ru", 2, "2 дня"},
		{"ru", 5, "5 дней"},
		{"ru", 11, "11 дней"},
		{"ru", 21, "21 день"},
		{"ru", 22, "22 дня"},
		{"ru", 25, "25 дней"},
		{"ru", 111, "111 дней"},
		{"ru", 0, "0 дней"},
		{"ru", 12, "12 дней"},
		{"ru", 14, "14 дней"},
		{"ru", 104, "104 дня"},
		{"en", 0, "0 days"},
		{"en", 1, "1 day"},
		{"en", 2, "2 days"},
		{"en", 21, "21 days"},
		{"uk", 21, "21 days"}, // unsupported language: English rules
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.lang, tt.count), func(t *testing.T) {
			if got := b.N(tt.lang, "unit.days", tt.count, nil); got != tt.want {
				t.Errorf("N(%s, unit.days, %d) = %q, want %q", tt.lang, tt.count, got, tt.want)
			}
		})
	}
}

func TestT(t *testing.T) {
	b := mustLoad(t)
	tests := []struct {
		name, lang, key string
		args            map[string]any
		want            string
	}{
		{"plain", "en", "error.bad_callback", nil, "This button is no longer valid."},
		{"russian", "ru", "error.bad_callback", nil, "Эта кнопка больше не действует."},
		{"region code", "ru-RU", "error.bad_callback", nil, "Эта кнопка больше не действует."},
		{"argument", "en", "error.too_long", map[string]any{"Max": 4096}, "Your message is too long. The limit is 4096 characters."},
		{"html argument is not escaped here", "en", "error.unknown_command", map[string]any{"Command": "/a&amp;b"},
			"I don't know the command <code>/a&amp;b</code>. /help lists the ones I do."},
		{"missing key", "en", "no.such.key", nil, "no.such.key"},
		{"missing argument falls back to the key", "en", "error.too_long", nil, "error.too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.T(tt.lang, tt.key, tt.args); got != tt.want {
				t.Errorf("T(%s, %s) = %q, want %q", tt.lang, tt.key, got, tt.want)
			}
		})
	}
}

func TestNKeepsArgs(t *testing.T) {
	b := mustLoad(t)
	args := map[string]any{"Other": 1}
	b.N("en", "unit.days", 3, args)
	if _, ok := args["Count"]; ok || len(args) != 1 {
		t.Errorf("N modified the caller's args: %v", args)
	}
}

func TestFallbackToDefaultLanguage(t *testing.T) {
	b, err := load(fstest.MapFS{
		"en.toml": {Data: []byte(`"a" = "A"` + "\n" + `"b" = "B"`)},
		"ru.toml": {Data: []byte(`"a" = "А"`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.T("ru", "b", nil); got != "B" {
		t.Errorf("T(ru, b) = %q, want the English text", got)
	}
	if b.Has("ru", "b") {
		t.Error("Has(ru, b) = true for a key only in en")
	}
	if got := b.Keys("ru"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Keys(ru) = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
	}{
		{"bad toml", fstest.MapFS{"en.toml": {Data: []byte(`"a" = `)}}},
		{"no default language", fstest.MapFS{"ru.toml": {Data: []byte(`"a" = "А"`)}}},
		{"region in file name", fstest.MapFS{"en.toml": {Data: []byte(`"a" = "A"`)}, "pt-BR.toml": {Data: []byte(`"a" = "A"`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := load(tt.fsys); err == nil {
				t.Error("load succeeded, want an error")
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	b := mustLoad(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				b.N("ru", "unit.days", i*j, nil)
				b.T("en", "error.too_long", map[string]any{"Max": j})
			}
		})
	}
	wg.Wait()
}

// No user-visible Russian word lives in Go code: every text is in the
// locale files. (Comments may quote one; tests may check one.)
func TestNoRussianInGoCode(t *testing.T) {
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			code, _, _ := strings.Cut(line, "//")
			for _, r := range code {
				if unicode.Is(unicode.Cyrillic, r) {
					t.Errorf("%s:%d: Russian text in Go code: %s", path, i+1, strings.TrimSpace(line))
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
