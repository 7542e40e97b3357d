package tghtml

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestMarkdownToHTML(t *testing.T) {
	tests := []struct {
		name, md, want string
	}{
		{"plain", "hello", "hello"},
		{"bold", "**bold**", "<b>bold</b>"},
		{"bold underscores", "__bold__", "<b>bold</b>"},
		{"italic star", "*it*", "<i>it</i>"},
		{"italic underscore", "_it_", "<i>it</i>"},
		{"bold italic", "***both***", "<i><b>both</b></i>"},
		{"bold inside bold is not repeated", "**a **b** c**", "<b>a b c</b>"},
		{"strike", "~~gone~~", "<s>gone</s>"},
		{"unbalanced star", "2 * 3 = 6 and *oops", "2 * 3 = 6 and *oops"},
		{"unbalanced double star", "**not closed", "**not closed"},
		{"stray < and &", "a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"},
		{"quotes escaped", `say "hi"`, "say &quot;hi&quot;"},
		{"backslash escapes", `\*not italic\*`, "*not italic*"},
		{"markdown entities resolved", "&copy; &amp; &#60;", "© &amp; &lt;"},
		{"raw inline html escaped", "<b>x</b> <script>", "&lt;b&gt;x&lt;/b&gt; &lt;script&gt;"},
		{"raw html block escaped", "<div>\na & b\n</div>", "&lt;div&gt;\na &amp; b\n&lt;/div&gt;"},
		{"code span", "use `a < b && c`", "use <code>a &lt; b &amp;&amp; c</code>"},
		{"code span with backtick", "``a ` b``", "<code>a ` b</code>"},
		{"code span keeps stars", "`**x**`", "<code>**x**</code>"},
		{
			"fenced code with language",
			"```go\nif a < b && c > d {\n\tfmt.Println(\"*x*\")\n}\n```",
			"<pre><code class=\"language-go\">if a &lt; b &amp;&amp; c &gt; d {\n\tfmt.Println(&quot;*x*&quot;)\n}</code></pre>",
		},
		{"fenced code without language", "```\nx < 1\n```", "<pre>x &lt; 1</pre>"},
		{"fenced code info string with attributes", "```python title=x\nprint(1)\n```", "<pre><code class=\"language-python\">print(1)</code></pre>"},
		{"fenced code hostile language dropped", "```\"><script>\nx\n```", "<pre>x</pre>"},
		{"unclosed fence runs to end", "```js\nlet a = 1 < 2", "<pre><code class=\"language-js\">let a = 1 &lt; 2</code></pre>"},
		{"empty code block dropped", "a\n\n```\n```\n\nb", "a\n\nb"},
		{"indented code", "    x <y>", "<pre>x &lt;y&gt;</pre>"},
		{"heading", "# Title *x*", "<b>Title <i>x</i></b>"},
		{"setext heading", "Title\n=====", "<b>Title</b>"},
		{"paragraphs", "one\n\ntwo", "one\n\ntwo"},
		{"soft break kept", "one\ntwo", "one\ntwo"},
		{"hard break", "one\\\ntwo", "one\ntwo"},
		{"bullet list", "- a\n- b", "• a\n• b"},
		{"ordered list keeps start", "3. a\n4. b", "3. a\n4. b"},
		{
			"nested lists",
			"- a\n  - b\n    1. c\n    2. d\n- e",
			"• a\n  • b\n    1. c\n    2. d\n• e",
		},
		{"list item with two paragraphs", "- a\n\n  more\n- b", "• a\n  more\n• b"},
		{"list then paragraph", "- a\n\nafter", "• a\n\nafter"},
		{"link", "[Go](https://go.dev/doc?a=1&b=2)", `<a href="https://go.dev/doc?a=1&amp;b=2">Go</a>`},
		{"link with formatting", "[**Go**](http://go.dev)", `<a href="http://go.dev"><b>Go</b></a>`},
		{"tg link", "[me](tg://user?id=42)", `<a href="tg://user?id=42">me</a>`},
		{"javascript link dropped", "[click](javascript:alert(1))", "click"},
		{"javascript link mixed case dropped", "[click](JaVaScRiPt:alert(1))", "click"},
		{"data link dropped", "[x](data:text/html,hi)", "x"},
		{"relative link dropped", "[x](/etc/passwd)", "x"},
		{"http without host dropped", "[x](http:///path)", "x"},
		{"empty link text shows url", "[](https://go.dev)", `<a href="https://go.dev">https://go.dev</a>`},
		{"code inside link is text", "[`go`](https://go.dev)", `<a href="https://go.dev">go</a>`},
		{"autolink", "<https://go.dev>", `<a href="https://go.dev">https://go.dev</a>`},
		{"autolink javascript", "<javascript:alert(1)>", "javascript:alert(1)"},
		{"email autolink is text", "<a@b.co>", "a@b.co"},
		{"image becomes link", "![chart](https://x.y/c.png)", `<a href="https://x.y/c.png">chart</a>`},
		{"image inside link", "[![a](https://x.y/i.png)](https://x.y)", `<a href="https://x.y">a</a>`},
		{"url with quote escaped", `[x](https://x.y/"a")`, `<a href="https://x.y/%22a%22">x</a>`},
		{"blockquote", "> a\n> b", "<blockquote>a\nb</blockquote>"},
		{"nested blockquote flattened", "> a\n>\n> > b", "<blockquote>a\nb</blockquote>"},
		{"blockquote with list", "> - a\n> - b", "<blockquote>• a\n• b</blockquote>"},
		{"thematic break", "a\n\n---\n\nb", "a\n\n———\n\nb"},
		{"table stays text", "|a|b|\n|-|-|\n|1|2|", "|a|b|\n|-|-|\n|1|2|"},
		{"invalid UTF-8 replaced", "a\xffb `c\xfe`", "a\uFFFDb <code>c\uFFFD</code>"},
		{"NUL replaced", "a\x00b", "a\uFFFDb"},
		{"empty", "", ""},
		{"only spaces", "   \n\n  ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MarkdownToHTML(tt.md)
			if got != tt.want {
				t.Errorf("MarkdownToHTML(%q)\n got: %q\nwant: %q", tt.md, got, tt.want)
			}
			if err := Valid(got); err != nil {
				t.Errorf("output not valid: %v\n%s", err, got)
			}
		})
	}
}

// TestMarkdownToHTMLGolden renders a full model answer; refresh with
// go test ./bot/tghtml -run Golden -update.
func TestMarkdownToHTMLGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "answer.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := MarkdownToHTML(string(in))
	if err := Valid(got); err != nil {
		t.Fatalf("output not valid: %v", err)
	}
	golden := filepath.Join("testdata", "answer.html")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n%s", golden, got)
	}
}

func FuzzMarkdownToHTML(f *testing.F) {
	for _, s := range []string{
		"**bold** *it* `code` [x](https://y.z)",
		"```go\na < b\n```",
		"- a\n  - b\n> q\n> > qq",
		"*unbalanced **mess_ ~~x",
		"<b>raw</b> &amp; &copy; &#0; &#x110000;",
		"[a](javascript:x) ![i](https://x.y) <https://a.b>",
		"# h\n\n1. x\n2. y\n\n---\n\n    code",
		"\xff\x00`\x00`",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, md string) {
		out := MarkdownToHTML(md)
		if err := Valid(out); err != nil {
			t.Fatalf("MarkdownToHTML(%q) = %q: %v", md, out, err)
		}
	})
}

func BenchmarkMarkdownToHTML(b *testing.B) {
	md := answer10k(b)
	b.SetBytes(int64(len(md)))
	for b.Loop() {
		MarkdownToHTML(md)
	}
}
