package tghtml

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
)

// checkParts asserts what Split promises for valid input: every part is
// valid, within limit and not blank, and the parts' text is the original's
// text in order, with only whitespace missing between parts.
func checkParts(tb testing.TB, orig string, parts []string, limit int) {
	tb.Helper()
	if len(parts) == 0 {
		tb.Fatalf("no parts for %q", orig)
	}
	for i, p := range parts {
		if err := Valid(p); err != nil {
			tb.Fatalf("part %d invalid: %v\n%s", i, err, p)
		}
		if n := VisibleLen(p); n > limit {
			tb.Fatalf("part %d is %d long, limit %d", i, n, limit)
		}
		if strings.TrimSpace(Strip(p)) == "" {
			tb.Fatalf("part %d is blank: %q", i, p)
		}
	}
	checkText(tb, Strip(orig), parts)
}

// checkText asserts the parts' stripped text appears in want in order, with
// nothing but whitespace between and after them.
func checkText(tb testing.TB, want string, parts []string) {
	tb.Helper()
	rest := want
	for i, p := range parts {
		got := Strip(p)
		k := 0
		for !strings.HasPrefix(rest[k:], got) {
			r := []rune(rest[k:])
			if len(r) == 0 || !unicode.IsSpace(r[0]) {
				tb.Fatalf("part %d text %q does not follow in original at %q", i, trunc(got), trunc(rest))
			}
			k += len(string(r[0]))
		}
		rest = rest[k+len(got):]
	}
	if strings.TrimSpace(rest) != "" {
		tb.Fatalf("text lost after the last part: %q", trunc(rest))
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func TestSplitFits(t *testing.T) {
	s := "<b>short</b> &amp; sweet"
	if got := Split(s, 100); len(got) != 1 || got[0] != s {
		t.Errorf("Split = %q, want the input unchanged", got)
	}
	long := strings.Repeat("a", MaxMessageLen)
	if got := Split(long, 0); len(got) != 1 {
		t.Errorf("limit 0: %d parts for %d chars, want 1", len(got), MaxMessageLen)
	}
	if got := Split(long+"b", -1); len(got) != 2 {
		t.Errorf("limit -1: %d parts for %d chars, want 2", len(got), MaxMessageLen+1)
	}
}

func TestSplitParagraphs(t *testing.T) {
	html := MarkdownToHTML(answer10k(t))
	parts := Split(html, MaxMessageLen)
	checkParts(t, html, parts, MaxMessageLen)
	if len(parts) < 3 {
		t.Fatalf("got %d parts, want at least 3", len(parts))
	}
	// Paragraphs are shorter than half a message, so every cut must fall
	// on a paragraph break: each part but the last ends a paragraph.
	text := Strip(html)
	for i, p := range parts[:len(parts)-1] {
		s := Strip(p)
		if !strings.Contains(text, s+"\n\n") {
			t.Errorf("part %d does not end at a paragraph break: …%q", i, s[max(0, len(s)-40):])
		}
	}
}

func TestSplitPrefersLinesThenWords(t *testing.T) {
	tests := []struct {
		name  string
		html  string
		limit int
		want  []string
	}{
		{"paragraph over line", "aaaa bbbb\ncccc\n\ndddd eeee", 20, []string{"aaaa bbbb\ncccc", "dddd eeee"}},
		{"line over word", "aaaa bbbb\ncccc dddd", 15, []string{"aaaa bbbb", "cccc dddd"}},
		{"word", "aaaa bbbb cccc dddd", 12, []string{"aaaa bbbb", "cccc dddd"}},
		{"early paragraph loses to late word", "aa\n\nbbbb cccc dddd eeee", 17, []string{"aa\n\nbbbb cccc", "dddd eeee"}},
		{"early break beats a hard cut", "aa bbbbbbbbbbbbbbbbbbbb", 10, []string{"aa", "bbbbbbbbbb", "bbbbbbbbbb"}},
		{"hard cut", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"whitespace run dropped", "aaaa      bbbb", 6, []string{"aaaa", "bbbb"}},
		{"leading indentation kept after a line cut", "aaaa\n  bb", 6, []string{"aaaa", "  bb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Split(tt.html, tt.limit)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Split(%q, %d) = %q, want %q", tt.html, tt.limit, got, tt.want)
			}
			checkParts(t, tt.html, got, tt.limit)
		})
	}
}

func TestSplitLongLine(t *testing.T) {
	line := strings.Repeat("abcdefghij", 1_000)
	parts := Split(line, MaxMessageLen)
	checkParts(t, line, parts, MaxMessageLen)
	if len(parts) != 3 || strings.Join(parts, "") != line {
		t.Errorf("got %d parts, want 3 hard-cut parts that rejoin to the input", len(parts))
	}
}

func TestSplitPre(t *testing.T) {
	var code strings.Builder
	for i := range 400 {
		code.WriteString("\tif x < 10 && y > 0 { fmt.Println(\"line\", " + string(rune('a'+i%26)) + ") }\n")
	}
	html := `<b>Here is the code:</b>` + "\n\n" +
		`<pre><code class="language-go">` + Escape(code.String()) + `</code></pre>` + "\n\nDone."
	parts := Split(html, 1000)
	checkParts(t, html, parts, 1000)
	if len(parts) < 10 {
		t.Fatalf("got %d parts, want at least 10", len(parts))
	}
	open := `<pre><code class="language-go">`
	for i, p := range parts[1 : len(parts)-1] {
		if !strings.HasPrefix(p, open) || !strings.HasSuffix(p, "</code></pre>") {
			t.Errorf("part %d does not reopen and close the code block: %q … %q", i+1, p[:40], p[len(p)-20:])
		}
		// Lines are shorter than the limit: cut at line ends, and keep the
		// next line's indentation.
		if !strings.HasPrefix(p, open+"\t") {
			t.Errorf("part %d lost the line's indentation: %q", i+1, p[:40])
		}
	}
}

func TestSplitReopensAttributes(t *testing.T) {
	html := `<b>bold <a href="https://x.y/?a=1&amp;b=2"><i>` + strings.Repeat("word ", 50) + `</i></a> tail</b>`
	parts := Split(html, 60)
	checkParts(t, html, parts, 60)
	if len(parts) < 3 {
		t.Fatalf("got %d parts, want at least 3", len(parts))
	}
	if !strings.HasSuffix(parts[0], "</i></a></b>") {
		t.Errorf("part 0 = %q, want the open tags closed", parts[0])
	}
	for i, p := range parts[1:] {
		if !strings.HasPrefix(p, `<b><a href="https://x.y/?a=1&amp;b=2"><i>word`) {
			t.Errorf("part %d = %q, want the tags reopened with their attributes", i+1, p)
		}
	}
}

func TestSplitNeverCutsEntities(t *testing.T) {
	html := strings.Repeat("&lt;&amp;&#x1F600;&quot;", 500)
	for _, limit := range []int{2, 3, 5, 7, 100, 1001} {
		parts := Split(html, limit)
		checkParts(t, html, parts, limit)
		if strings.Join(parts, "") != html {
			t.Errorf("limit %d: parts do not rejoin to the input", limit)
		}
	}
}

func TestSplitUTF16(t *testing.T) {
	html := strings.Repeat("😀", 3_000) // 6,000 UTF-16 units
	parts := Split(html, MaxMessageLen)
	checkParts(t, html, parts, MaxMessageLen)
	if got := len([]rune(parts[0])); got != MaxMessageLen/2 {
		t.Errorf("first part has %d emoji, want %d", got, MaxMessageLen/2)
	}
}

func TestSplitKeepsGraphemes(t *testing.T) {
	tests := []struct{ name, unit string }{
		{"combining accent", "e\u0301"},
		{"zwj family", "👩\u200D👩\u200D👧"},
		{"skin tone", "👍🏽"},
		{"variation selector", "❤\uFE0F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := strings.Repeat(tt.unit, 200)
			for _, p := range Split(html, 50) {
				if strings.ReplaceAll(p, tt.unit, "") != "" {
					t.Fatalf("part splits %q: %q", tt.unit, p)
				}
			}
		})
	}
}

func TestSplitDropsBlankParts(t *testing.T) {
	html := "aaaa" + strings.Repeat("\n", 30) + "bbbb"
	got := Split(html, 10)
	if strings.Join(got, "|") != "aaaa|bbbb" {
		t.Errorf("Split = %q", got)
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("<b>bold</b> text\n\nmore <i>it</i>", 10)
	f.Add(`<pre><code class="language-go">a &lt; b`+"\n"+`c</code></pre>`, 3)
	f.Add("&amp;&lt;😀e\u0301 <a href=\"https://x.y\">link text</a>", 2)
	f.Add("**md** input `code` [x](https://y.z)\n\n- a\n- b", 7)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		// Split's contract is valid input: use s if it is, else the
		// Markdown renderer's output for it.
		html := s
		if Valid(html) != nil {
			html = MarkdownToHTML(s)
		}
		if limit < 0 {
			limit = -(limit + 1)
		}
		limit = 2 + limit%300
		parts := Split(html, limit)
		if strings.TrimSpace(Strip(html)) == "" {
			return // nothing visible: Split may return the input or nothing
		}
		checkParts(t, html, parts, limit)
	})
}

func BenchmarkSplit(b *testing.B) {
	html := MarkdownToHTML(answer10k(b))
	b.SetBytes(int64(len(html)))
	for b.Loop() {
		Split(html, MaxMessageLen)
	}
}

// answer10k returns a model answer whose rendered text is at least 10,000
// characters long.
func answer10k(tb testing.TB) string {
	tb.Helper()
	for n := 10_000; ; n += 1_000 {
		md := longAnswer(n)
		if VisibleLen(MarkdownToHTML(md)) >= 10_000 {
			return md
		}
	}
}

// longAnswer returns a deterministic model-style Markdown answer of about n
// bytes: paragraphs with inline formatting, lists and code blocks.
func longAnswer(n int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"the", "server", "**returns**", "a", "`value`", "when", "*each*", "request",
		"is", "handled", "by", "[docs](https://go.dev/doc)", "and", "x < y", "R&D", "ответ", "😀", "data"}
	var b strings.Builder
	sentence := func() {
		k := 6 + rng.IntN(12)
		for i := range k {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteString(".")
	}
	for b.Len() < n {
		switch rng.IntN(6) {
		case 0:
			b.WriteString("## Section\n\n")
		case 1:
			for range 3 + rng.IntN(3) {
				b.WriteString("- ")
				sentence()
				b.WriteByte('\n')
			}
			b.WriteByte('\n')
		case 2:
			b.WriteString("```go\nfunc f(a, b int) bool {\n\treturn a < b && b > 0\n}\n```\n\n")
		default:
			for i := range 2 + rng.IntN(4) {
				if i > 0 {
					b.WriteByte(' ')
				}
				sentence()
			}
			b.WriteString("\n\n")
		}
	}
	return b.String()
}
