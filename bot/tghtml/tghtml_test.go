package tghtml

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello", "hello"},
		{"all four", `a & b < c > d "e"`, "a &amp; b &lt; c &gt; d &quot;e&quot;"},
		{"entity-like text is escaped again", "&amp;", "&amp;amp;"},
		{"apostrophe untouched", "it's", "it's"},
		{"unicode", "привет 😀", "привет 😀"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Escape(tt.in)
			if got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if err := Valid(got); err != nil {
				t.Errorf("Valid(Escape(%q)): %v", tt.in, err)
			}
			if s := Strip(got); s != tt.in {
				t.Errorf("Strip(Escape(%q)) = %q", tt.in, s)
			}
		})
	}
}

func TestStripAndVisibleLen(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		strip string
		n     int
	}{
		{"plain", "hello", "hello", 5},
		{"tags removed", `<b>bold</b> <a href="https://x.y/?a=1&amp;b=2">link</a>`, "bold link", 9},
		{"named entities count once", "&lt;&gt;&amp;&quot;", `<>&"`, 4},
		{"numeric entities", "&#65;&#x42;&#X43;", "ABC", 3},
		{"astral plane counts two", "😀", "😀", 2},
		{"astral entity counts two", "&#x1F600;", "😀", 2},
		{"cyrillic counts one each", "<i>день</i>", "день", 4},
		{"pre with language", `<pre><code class="language-go">x &lt; y</code></pre>`, "x < y", 5},
		{"newlines count", "a\n\nb", "a\n\nb", 4},
		{"bare ampersand kept", "fish & chips", "fish & chips", 12},
		{"unknown entity kept", "&nbsp;", "&nbsp;", 6},
		{"broken tag kept as text", "a < b", "a < b", 5},
		{"unterminated tag kept", "<b", "<b", 2},
		{"surrogate entity is not an entity", "&#xD800;", "&#xD800;", 8},
		{"empty", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Strip(tt.in); got != tt.strip {
				t.Errorf("Strip(%q) = %q, want %q", tt.in, got, tt.strip)
			}
			if got := VisibleLen(tt.in); got != tt.n {
				t.Errorf("VisibleLen(%q) = %d, want %d", tt.in, got, tt.n)
			}
		})
	}
}

func TestValid(t *testing.T) {
	valid := []struct{ name, in string }{
		{"empty", ""},
		{"text", "hello, world"},
		{"all simple tags", "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k</strike><del>d</del>"},
		{"spoilers", `<tg-spoiler>x</tg-spoiler><span class="tg-spoiler">y</span>`},
		{"link", `<a href="https://example.com/?a=1&amp;b=2">x</a>`},
		{"single-quoted href", `<a href='tg://user?id=1'>x</a>`},
		{"unquoted href", `<a href=https://example.com>x</a>`},
		{"pre with language", `<pre><code class="language-go">x</code></pre>`},
		{"pre alone", "<pre>x</pre>"},
		{"code", "<code>x &lt; y</code>"},
		{"blockquote", "<blockquote>q</blockquote>"},
		{"expandable blockquote", "<blockquote expandable>q</blockquote>"},
		{"nested formatting", "<b>a <i>b <u>c</u></i></b>"},
		{"bold link", `<b><a href="https://x.y">x</a></b>`},
		{"bold code (Telegram drops the bold, not the message)", "<b><code>x</code></b>"},
		{"upper-case tag", "<B>x</B>"},
		{"entities", "&lt;&gt;&amp;&quot;&#33;&#x1F600;"},
	}
	for _, tt := range valid {
		t.Run("valid/"+tt.name, func(t *testing.T) {
			if err := Valid(tt.in); err != nil {
				t.Errorf("Valid(%q) = %v, want nil", tt.in, err)
			}
		})
	}

	invalid := []struct{ name, in string }{
		{"bare <", "a < b"},
		{"bare >", "a > b"},
		{"bare &", "a & b"},
		{"unsupported named entity", "&nbsp;"},
		{"numeric entity zero", "&#0;"},
		{"numeric entity surrogate", "&#xD800;"},
		{"numeric entity too big", "&#x110000;"},
		{"entity without semicolon", "&lt"},
		{"unknown tag", "<p>x</p>"},
		{"br", "a<br>b"},
		{"self-closing", "<b/>"},
		{"unclosed", "<b>x"},
		{"unmatched end", "x</b>"},
		{"crossed", "<b><i>x</b></i>"},
		{"mismatched alias", "<b>x</strong>"},
		{"attribute on b", `<b class="x">y</b>`},
		{"link without href", "<a>x</a>"},
		{"link with empty href", `<a href="">x</a>`},
		{"link with extra attribute", `<a href="https://x.y" target="_blank">x</a>`},
		{"nested links", `<a href="https://a.b"><a href="https://c.d">x</a></a>`},
		{"code inside link", `<a href="https://a.b"><code>x</code></a>`},
		{"tag inside code", "<code><b>x</b></code>"},
		{"bold inside pre", "<pre><b>x</b></pre>"},
		{"language on standalone code", `<code class="language-go">x</code>`},
		{"wrong class on code", `<pre><code class="go">x</code></pre>`},
		{"nested blockquote", "<blockquote><blockquote>x</blockquote></blockquote>"},
		{"expandable with a value", `<blockquote expandable="true">x</blockquote>`},
		{"blockquote with another attribute", "<blockquote collapsed>x</blockquote>"},
		{"expandable twice", "<blockquote expandable expandable>x</blockquote>"},
		{"expandable on another tag", "<b expandable>x</b>"},
		{"span without class", "<span>x</span>"},
		{"bare & in href", `<a href="https://x.y/?a=1&b=2">x</a>`},
		{"duplicate attribute", `<a href="https://a.b" href="https://c.d">x</a>`},
		{"unterminated attribute", `<a href="https://a.b>x</a>`},
		{"invalid UTF-8", "a\xffb"},
		{"empty tag name", "<>x"},
	}
	for _, tt := range invalid {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			if err := Valid(tt.in); err == nil {
				t.Errorf("Valid(%q) = nil, want an error", tt.in)
			}
		})
	}
}

// TestLexRoundTrip checks that tokens cover the input exactly, which is what
// lets Split copy tokens verbatim.
func TestLexRoundTrip(t *testing.T) {
	for _, s := range []string{
		`<b>a</b> &amp; <a href="x">y</a>`,
		"a < b & c > d <b",
		"\xff\xfe<i>x</i>",
	} {
		var b strings.Builder
		for tok := range tokens(s) {
			b.WriteString(tok.raw)
		}
		if b.String() != s {
			t.Errorf("tokens(%q) joined = %q", s, b.String())
		}
	}
}
