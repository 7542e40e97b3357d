package doctext_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/valex-ai/valex/doctext"
	"github.com/valex-ai/valex/doctext/doctexttest"
)

func TestExtract(t *testing.T) {
	utf16le := []byte{0xFF, 0xFE}
	for _, r := range "привет\r\nмир" {
		utf16le = append(utf16le, byte(r), byte(r>>8))
	}
	tests := []struct {
		name  string
		kind  doctext.Kind
		data  []byte
		lim   doctext.Limits
		want  []string // substrings of the text, in order
		pages int
		err   error
	}{
		{name: "pdf", kind: doctext.PDF, data: doctexttest.PDF("Quarterly revenue grew 12%", "Second (page) here"),
			want: []string{"Quarterly revenue grew 12%", "Second (page) here"}, pages: 2},
		{name: "pdf flate", kind: doctext.PDF, data: doctexttest.FlatePDF("compressed text"), want: []string{"compressed text"}, pages: 1},
		{name: "pdf scanned", kind: doctext.PDF, data: doctexttest.PDF("", ""), err: doctext.ErrNoText},
		{name: "pdf too many pages", kind: doctext.PDF, data: doctexttest.PDF("a", "b", "c"), lim: doctext.Limits{MaxPages: 2}, err: doctext.ErrTooManyPages},
		{name: "pdf bomb", kind: doctext.PDF, data: doctexttest.BombPDF(2 << 20), lim: doctext.Limits{MaxUnpacked: 1 << 20}, err: doctext.ErrTooBig},
		{name: "pdf garbage", kind: doctext.PDF, data: []byte("%PDF-1.4 this is not a pdf"), err: doctext.ErrMalformed},
		{name: "pdf truncated", kind: doctext.PDF, data: doctexttest.PDF("some text")[:200], err: doctext.ErrMalformed},
		{name: "docx", kind: doctext.DOCX, data: doctexttest.DOCX("Hello & welcome", "cell1\tcell2", "line1\nline2"),
			want: []string{"Hello & welcome\ncell1\tcell2\nline1\nline2"}},
		{name: "docx not a zip", kind: doctext.DOCX, data: []byte("PK nope"), err: doctext.ErrMalformed},
		{name: "docx without body", kind: doctext.DOCX, data: doctexttest.Zip(map[string][]byte{"a.txt": []byte("x")}), err: doctext.ErrMalformed},
		{name: "docx bomb", kind: doctext.DOCX, data: doctexttest.Zip(map[string][]byte{"word/document.xml": bytes.Repeat([]byte(" "), 2<<20)}),
			lim: doctext.Limits{MaxUnpacked: 1 << 20}, err: doctext.ErrTooBig},
		{name: "txt", kind: doctext.Text, data: []byte("\xEF\xBB\xBFline one\r\nline two"), want: []string{"line one\nline two"}},
		{name: "md utf-16", kind: doctext.Markdown, data: utf16le, want: []string{"привет\nмир"}},
		{name: "txt binary", kind: doctext.Text, data: []byte("MZ\x90\x00\x03"), err: doctext.ErrNotText},
		{name: "txt invalid utf-8", kind: doctext.Text, data: []byte("caf\xe9"), err: doctext.ErrNotText},
		{name: "txt empty", kind: doctext.Text, data: []byte(" \n "), err: doctext.ErrEmpty},
		{name: "unsupported", kind: "exe", data: []byte("x"), err: doctext.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := doctext.Extract(tc.kind, tc.data, tc.lim)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			rest := d.Text
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("text %q lacks %q", d.Text, w)
				}
				rest = rest[i+len(w):]
			}
			if d.Pages != tc.pages {
				t.Errorf("pages = %d, want %d", d.Pages, tc.pages)
			}
		})
	}
}

func TestExtractTruncates(t *testing.T) {
	d, err := doctext.Extract(doctext.Text, []byte(strings.Repeat("я", 100)), doctext.Limits{MaxChars: 10})
	if err != nil {
		t.Fatal(err)
	}
	if d.Text != strings.Repeat("я", 10) || !d.Truncated {
		t.Fatalf("got %q truncated=%v", d.Text, d.Truncated)
	}
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		name, mime string
		want       doctext.Kind
		ok         bool
	}{
		{"report.PDF", "application/octet-stream", doctext.PDF, true},
		{"notes.md", "", doctext.Markdown, true},
		{"a.docx", "", doctext.DOCX, true},
		{"noext", "application/pdf", doctext.PDF, true},
		{"noext", "text/plain; charset=utf-8", doctext.Text, true},
		{"setup.exe", "application/x-msdownload", "", false},
		{"photo.jpg", "image/jpeg", "", false},
		{"old.doc", "application/msword", "", false},
	}
	for _, tc := range tests {
		got, ok := doctext.KindOf(tc.name, tc.mime)
		if got != tc.want || ok != tc.ok {
			t.Errorf("KindOf(%q, %q) = %q, %v; want %q, %v", tc.name, tc.mime, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzExtract: no input panics or exceeds the limits, whatever its kind.
func FuzzExtract(f *testing.F) {
	f.Add(doctexttest.PDF("hello", ""))
	f.Add(doctexttest.FlatePDF("hello"))
	f.Add(doctexttest.DOCX("hello\tworld"))
	f.Add([]byte("plain text"))
	f.Add([]byte{0xFE, 0xFF, 0, 'a'})
	lim := doctext.Limits{MaxPages: 5, MaxChars: 1000, MaxUnpacked: 1 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, k := range []doctext.Kind{doctext.PDF, doctext.DOCX, doctext.Text} {
			d, err := doctext.Extract(k, data, lim)
			if err == nil && (len([]rune(d.Text)) > lim.MaxChars || d.Pages > lim.MaxPages) {
				t.Fatalf("%s: over the limits: %d chars, %d pages", k, len([]rune(d.Text)), d.Pages)
			}
		}
	})
}
