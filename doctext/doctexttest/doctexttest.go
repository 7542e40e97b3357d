// Package doctexttest builds small real documents for tests: a PDF with a
// text layer (or pages without one, like a scan) and a DOCX package.
package doctexttest

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"fmt"
	"sort"
	"strings"
)

// PDF returns a valid PDF with one page per entry, each showing its text
// in Helvetica; an empty entry is a page with no text operators (a filled
// rectangle, as a scanned page has only an image). Text is ASCII.
func PDF(pages ...string) []byte { return build(pages, false) }

// FlatePDF is PDF with FlateDecode content streams, as most writers make.
func FlatePDF(pages ...string) []byte { return build(pages, true) }

// BombPDF is a one-page PDF whose content stream inflates to n bytes of
// spaces (no text): for the decompression limit.
func BombPDF(n int) []byte {
	return buildStreams([][]byte{bytes.Repeat([]byte{' '}, n)}, true)
}

func build(pages []string, flate bool) []byte {
	contents := make([][]byte, len(pages))
	for i, p := range pages {
		if p == "" {
			contents[i] = []byte("q 0.5 g 72 72 200 200 re f Q")
			continue
		}
		var b strings.Builder
		b.WriteString("BT /F1 12 Tf 72 720 Td 14 TL\n")
		for _, line := range strings.Split(p, "\n") {
			fmt.Fprintf(&b, "(%s) Tj T*\n", escape(line))
		}
		b.WriteString("ET")
		contents[i] = []byte(b.String())
	}
	return buildStreams(contents, flate)
}

func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`).Replace(s)
}

// buildStreams writes objects 1 catalog, 2 page tree, 3 font, then a page
// and its content stream per page, with a correct xref table.
func buildStreams(contents [][]byte, flate bool) []byte {
	var buf bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, buf.Len())
		fmt.Fprintf(&buf, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	buf.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	kids := make([]string, len(contents))
	for i := range contents {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(contents)))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	for i, c := range contents {
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 5+2*i))
		filter := ""
		if flate {
			var z bytes.Buffer
			w := zlib.NewWriter(&z)
			w.Write(c)
			w.Close()
			c, filter = z.Bytes(), " /Filter /FlateDecode"
		}
		offsets = append(offsets, buf.Len())
		fmt.Fprintf(&buf, "%d 0 obj\n<< /Length %d%s >>\nstream\n", len(offsets), len(c), filter)
		buf.Write(c)
		buf.WriteString("\nendstream\nendobj\n")
	}
	xref := buf.Len()
	fmt.Fprintf(&buf, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, off := range offsets {
		fmt.Fprintf(&buf, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&buf, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return buf.Bytes()
}

// DOCX returns a minimal Word document with one paragraph per entry; a
// tab in an entry becomes w:tab, a newline w:br.
func DOCX(paragraphs ...string) []byte {
	var body strings.Builder
	for _, p := range paragraphs {
		body.WriteString("<w:p><w:r>")
		for i, line := range strings.Split(p, "\n") {
			if i > 0 {
				body.WriteString("<w:br/>")
			}
			for j, cell := range strings.Split(line, "\t") {
				if j > 0 {
					body.WriteString("<w:tab/>")
				}
				fmt.Fprintf(&body, `<w:t xml:space="preserve">%s</w:t>`, xmlEscape(cell))
			}
		}
		body.WriteString("</w:r></w:p>")
	}
	doc := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` +
		`<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
		body.String() + `</w:body></w:document>`
	return Zip(map[string][]byte{
		"[Content_Types].xml": []byte(`<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`),
		"word/document.xml":   []byte(doc),
	})
}

// Zip packs files (deflated) in name order.
func Zip(files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic output
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			panic(err)
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
