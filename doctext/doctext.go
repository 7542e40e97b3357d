// Package doctext extracts plain text from the documents users send the bot
// (PDF, DOCX, plain text and Markdown) within limits, so that a hostile or
// broken file costs bounded memory and never panics the bot.
//
// PDF text comes from github.com/ledongthuc/pdf (pure Go, a maintained fork
// of rsc.io/pdf with plain-text extraction); DOCX is read with archive/zip
// and encoding/xml; text files are checked to be UTF-8 (or UTF-16 with a BOM).
package doctext

import (
	"errors"
	"path"
	"strings"
	"unicode/utf8"
)

// Kind is a supported document format.
type Kind string

const (
	PDF      Kind = "pdf"
	DOCX     Kind = "docx"
	Text     Kind = "txt"
	Markdown Kind = "md"
)

// Errors a caller turns into what the user is told.
var (
	ErrUnsupported  = errors.New("unsupported document type")
	ErrTooManyPages = errors.New("too many pages")
	ErrNoText       = errors.New("no text layer") // a scanned PDF: pages of images
	ErrNotText      = errors.New("not a text file")
	ErrTooBig       = errors.New("document unpacks too big")
	ErrEncrypted    = errors.New("document is encrypted")
	ErrMalformed    = errors.New("malformed document")
)

// Limits bound one extraction; zero values take the defaults.
type Limits struct {
	MaxPages    int   // most PDF pages, default 50
	MaxChars    int   // most characters of text kept, default 200,000; the rest is cut (Doc.Truncated)
	MaxUnpacked int64 // most bytes decompressed from a DOCX or PDF, default 64 MB
}

func (l Limits) withDefaults() Limits {
	if l.MaxPages <= 0 {
		l.MaxPages = 50
	}
	if l.MaxChars <= 0 {
		l.MaxChars = 200_000
	}
	if l.MaxUnpacked <= 0 {
		l.MaxUnpacked = 64 << 20
	}
	return l
}

// Doc is a document's text.
type Doc struct {
	Kind      Kind
	Text      string
	Pages     int  // PDF pages; 0 for other kinds
	Truncated bool // the text was cut at Limits.MaxChars
}

// KindOf names the format of a file from its name and MIME type, the
// extension first (Telegram clients often send text files as
// application/octet-stream); ok is false for anything unsupported.
func KindOf(name, mime string) (Kind, bool) {
	switch strings.ToLower(path.Ext(name)) {
	case ".pdf":
		return PDF, true
	case ".docx":
		return DOCX, true
	case ".txt", ".text", ".log", ".csv":
		return Text, true
	case ".md", ".markdown":
		return Markdown, true
	}
	mime, _, _ = strings.Cut(strings.ToLower(mime), ";")
	switch strings.TrimSpace(mime) {
	case "application/pdf":
		return PDF, true
	case "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return DOCX, true
	case "text/plain", "text/csv":
		return Text, true
	case "text/markdown", "text/x-markdown":
		return Markdown, true
	}
	return "", false
}

// Extract returns the text of data, a document of kind k.
func Extract(k Kind, data []byte, lim Limits) (Doc, error) {
	lim = lim.withDefaults()
	var (
		d   = Doc{Kind: k}
		err error
	)
	switch k {
	case PDF:
		d.Text, d.Pages, err = pdfText(data, lim)
	case DOCX:
		d.Text, err = docxText(data, lim)
	case Text, Markdown:
		d.Text, err = plainText(data)
	default:
		return Doc{}, ErrUnsupported
	}
	if err != nil {
		return Doc{}, err
	}
	d.Text = strings.TrimSpace(d.Text)
	if d.Text == "" {
		if k == PDF {
			return Doc{}, ErrNoText
		}
		return Doc{}, ErrEmpty
	}
	d.Text, d.Truncated = cut(d.Text, lim.MaxChars)
	return d, nil
}

// ErrEmpty is a document with no text at all (an empty file).
var ErrEmpty = errors.New("document is empty")

// cut keeps the first n characters of s.
func cut(s string, n int) (string, bool) {
	if len(s) <= n { // bytes ≥ runes
		return s, false
	}
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	if i >= len(s) {
		return s, false
	}
	return s[:i], true
}
