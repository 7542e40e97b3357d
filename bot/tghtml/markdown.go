package tghtml

import (
	"bytes"
	"net/url"
	"strconv"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// Why goldmark and a hand-written renderer rather than regular expressions
// or goldmark's own HTML renderer: model output is Markdown with every edge
// case CommonMark defines (nested emphasis, backticks inside code spans,
// unbalanced delimiters that must stay literal, lists inside quotes), and
// only a real parser gets those right. Its HTML renderer, though, emits tags
// Telegram rejects (p, ul, li, h1, br, img), so we walk the AST ourselves and
// emit only what Telegram knows, escaping everything else.

// mdParser is read-only after construction; goldmark parsers are safe for
// concurrent use.
var mdParser = goldmark.New(goldmark.WithExtensions(extension.Strikethrough)).Parser()

// MarkdownToHTML converts model Markdown to Telegram HTML that always passes
// Valid: **bold**, *italic* and _italic_, ~~strike~~, `code`, fenced and
// indented code blocks (<pre><code class="language-x">), [links](url) for
// http, https and tg URLs only (others become their text), headings as bold
// lines, lists as "• " and "1. " lines, block quotes. Raw HTML, unbalanced
// delimiters and everything else come out as escaped text.
func MarkdownToHTML(md string) string {
	// Telegram rejects invalid UTF-8; code spans and blocks are written
	// without goldmark's NUL replacement.
	md = strings.ToValidUTF8(md, "\uFFFD")
	md = strings.ReplaceAll(md, "\x00", "\uFFFD")
	src := []byte(md)
	doc := mdParser.Parse(text.NewReader(src))
	r := &mdRenderer{src: src, open: map[string]int{}}
	r.buf.Grow(len(src) + len(src)/4)
	r.blocks(doc, "\n\n", "")
	return strings.TrimRight(r.buf.String(), " \t\n")
}

// bufWriter is the util.BufWriter goldmark's text writer needs, over a
// bytes.Buffer we can truncate when a block renders to nothing.
type bufWriter struct{ bytes.Buffer }

func (w *bufWriter) Available() int { return 1 << 16 }
func (w *bufWriter) Buffered() int  { return w.Len() }
func (w *bufWriter) Flush() error   { return nil }

type mdRenderer struct {
	src []byte
	buf bufWriter
	// open counts the formatting tags currently open, so that nested
	// emphasis of the same kind does not emit <b><b>.
	open    map[string]int
	inLink  bool
	inQuote bool
}

// blocks renders parent's child blocks separated by sep; indent prefixes the
// lines of nested lists.
func (r *mdRenderer) blocks(parent ast.Node, sep, indent string) {
	first := true
	for c := parent.FirstChild(); c != nil; c = c.NextSibling() {
		mark := r.buf.Len()
		if !first {
			r.buf.WriteString(sep)
		}
		body := r.buf.Len()
		r.block(c, indent)
		if r.buf.Len() == body {
			// Nothing rendered (an empty code block): drop the separator too.
			r.buf.Truncate(mark)
			continue
		}
		first = false
	}
}

func (r *mdRenderer) block(n ast.Node, indent string) {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		r.inlines(n)
	case *ast.Heading:
		r.wrap("b", "<b>", func() { r.inlines(n) })
	case *ast.ThematicBreak:
		r.buf.WriteString("———")
	case *ast.FencedCodeBlock:
		r.codeBlock(n, codeLanguage(n.Language(r.src)))
	case *ast.CodeBlock:
		r.codeBlock(n, "")
	case *ast.Blockquote:
		// Telegram does not nest quotes: an inner quote is just its text.
		if r.inQuote {
			r.blocks(n, "\n", indent)
			return
		}
		r.inQuote = true
		r.buf.WriteString("<blockquote>")
		r.blocks(n, "\n", indent)
		r.buf.WriteString("</blockquote>")
		r.inQuote = false
	case *ast.List:
		r.list(n, indent)
	case *ast.HTMLBlock:
		var lines []byte
		for i := range n.Lines().Len() {
			seg := n.Lines().At(i)
			lines = append(lines, seg.Value(r.src)...)
		}
		if n.HasClosure() {
			lines = append(lines, n.ClosureLine.Value(r.src)...)
		}
		html.DefaultWriter.RawWrite(&r.buf, bytes.TrimRight(lines, "\n"))
	default:
		// Blocks from extensions we do not enable; keep their text.
		r.blocks(n, "\n", indent)
	}
}

func (r *mdRenderer) list(l *ast.List, indent string) {
	num := l.Start
	for item := l.FirstChild(); item != nil; item = item.NextSibling() {
		if item != l.FirstChild() {
			r.buf.WriteByte('\n')
		}
		r.buf.WriteString(indent)
		if l.IsOrdered() {
			r.buf.WriteString(strconv.Itoa(num) + ". ")
			num++
		} else {
			r.buf.WriteString("• ")
		}
		// The item's first block follows the marker; later blocks and
		// nested lists go on their own lines, indented one level.
		inner := indent + "  "
		for c := item.FirstChild(); c != nil; c = c.NextSibling() {
			if c != item.FirstChild() {
				r.buf.WriteByte('\n')
				if _, ok := c.(*ast.List); !ok {
					r.buf.WriteString(inner)
				}
			}
			r.block(c, inner)
		}
	}
}

func (r *mdRenderer) codeBlock(n ast.Node, lang string) {
	var code []byte
	for i := range n.Lines().Len() {
		seg := n.Lines().At(i)
		code = append(code, seg.Value(r.src)...)
	}
	code = bytes.TrimRight(code, "\n")
	if len(bytes.TrimSpace(code)) == 0 {
		return
	}
	if lang != "" {
		r.buf.WriteString(`<pre><code class="language-` + lang + `">`)
	} else {
		r.buf.WriteString("<pre>")
	}
	html.DefaultWriter.RawWrite(&r.buf, code)
	if lang != "" {
		r.buf.WriteString("</code>")
	}
	r.buf.WriteString("</pre>")
}

// codeLanguage keeps the info string's first word if it looks like a language
// name (go, c++, c#, objective-c, shell-session), else nothing.
func codeLanguage(info []byte) string {
	if len(info) == 0 || len(info) > 32 {
		return ""
	}
	for _, c := range info {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '+' || c == '#' || c == '.'
		if !ok {
			return ""
		}
	}
	return string(info)
}

func (r *mdRenderer) inlines(parent ast.Node) {
	for c := parent.FirstChild(); c != nil; c = c.NextSibling() {
		r.inline(c)
	}
}

func (r *mdRenderer) inline(n ast.Node) {
	switch n := n.(type) {
	case *ast.Text:
		// Write resolves backslash escapes and entity references and
		// escapes <, >, & and " — exactly Telegram's four entities.
		if n.IsRaw() {
			html.DefaultWriter.RawWrite(&r.buf, n.Segment.Value(r.src))
		} else {
			html.DefaultWriter.Write(&r.buf, n.Segment.Value(r.src))
		}
		// Chat text keeps the model's line breaks.
		if n.SoftLineBreak() || n.HardLineBreak() {
			r.buf.WriteByte('\n')
		}
	case *ast.String:
		if n.IsCode() || n.IsRaw() {
			html.DefaultWriter.RawWrite(&r.buf, n.Value)
		} else {
			html.DefaultWriter.Write(&r.buf, n.Value)
		}
	case *ast.CodeSpan:
		// Telegram drops one of a link and a code that contain each
		// other; keep the link, write the code as text.
		if !r.inLink {
			r.buf.WriteString("<code>")
		}
		for c := n.FirstChild(); c != nil; c = c.NextSibling() {
			t, ok := c.(*ast.Text)
			if !ok {
				continue
			}
			v := t.Segment.Value(r.src)
			if bytes.HasSuffix(v, []byte("\n")) {
				v = append(v[:len(v)-1:len(v)-1], ' ')
			}
			html.DefaultWriter.RawWrite(&r.buf, v)
		}
		if !r.inLink {
			r.buf.WriteString("</code>")
		}
	case *ast.Emphasis:
		if n.Level >= 2 {
			r.wrap("b", "<b>", func() { r.inlines(n) })
		} else {
			r.wrap("i", "<i>", func() { r.inlines(n) })
		}
	case *east.Strikethrough:
		r.wrap("s", "<s>", func() { r.inlines(n) })
	case *ast.Link:
		r.link(n.Destination, func() { r.inlines(n) })
	case *ast.Image:
		// Telegram messages cannot inline images: link the alt text.
		r.link(n.Destination, func() { r.inlines(n) })
	case *ast.AutoLink:
		label := n.Label(r.src)
		if n.AutoLinkType != ast.AutoLinkURL {
			html.DefaultWriter.RawWrite(&r.buf, label)
			return
		}
		r.link(n.URL(r.src), func() { html.DefaultWriter.RawWrite(&r.buf, label) })
	case *ast.RawHTML:
		for i := range n.Segments.Len() {
			seg := n.Segments.At(i)
			html.DefaultWriter.RawWrite(&r.buf, seg.Value(r.src))
		}
	default:
		r.inlines(n)
	}
}

// wrap writes open, body and the matching end tag, unless a tag of the same
// name is already open (nesting it again adds nothing).
func (r *mdRenderer) wrap(name, open string, body func()) {
	if r.open[name] > 0 {
		body()
		return
	}
	r.open[name]++
	r.buf.WriteString(open)
	body()
	r.buf.WriteString("</" + name + ">")
	r.open[name]--
}

// link writes body as a link to dest when dest is a safe URL, else just body.
// A link with no visible text shows its URL.
func (r *mdRenderer) link(dest []byte, body func()) {
	href, ok := safeURL(dest)
	if !ok || r.inLink {
		body()
		return
	}
	r.inLink = true
	r.buf.WriteString(`<a href="` + Escape(href) + `">`)
	start := r.buf.Len()
	body()
	if r.buf.Len() == start {
		r.buf.WriteString(Escape(href))
	}
	r.buf.WriteString("</a>")
	r.inLink = false
}

// safeURL resolves a Markdown link destination and accepts only http and
// https URLs with a host, and tg: links (user mentions, deep links).
// Everything else (javascript:, data:, file:, relative paths) is refused.
func safeURL(dest []byte) (string, bool) {
	s := string(util.URLEscape(dest, true))
	u, err := url.Parse(s)
	if err != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return s, u.Host != ""
	case "tg":
		return s, u.Host != "" || u.Opaque != ""
	}
	return "", false
}
