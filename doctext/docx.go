package doctext

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// docxBody is the part of a DOCX package that holds the document's text.
const docxBody = "word/document.xml"

// docxText reads the text runs of word/document.xml: w:t runs, w:tab as a
// tab, w:br/w:cr as a line break, one line per paragraph and a tab between
// table cells. Deleted revisions (w:delText) are not text. At most
// lim.MaxUnpacked bytes are decompressed, whatever the zip header claims.
func docxText(data []byte, lim Limits) (string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var body *zip.File
	for _, f := range zr.File {
		if f.Name == docxBody {
			body = f
			break
		}
	}
	if body == nil {
		return "", fmt.Errorf("%w: no %s", ErrMalformed, docxBody)
	}
	if body.UncompressedSize64 > uint64(lim.MaxUnpacked) {
		return "", ErrTooBig
	}
	rc, err := body.Open()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	defer rc.Close()
	lr := &io.LimitedReader{R: rc, N: lim.MaxUnpacked + 1}
	text, err := wordText(lr, lim.MaxChars)
	if lr.N <= 0 {
		return "", ErrTooBig // the header lied: a zip bomb
	}
	return text, err
}

// wordText walks WordprocessingML and stops once it has more than max
// characters' worth of bytes (Extract cuts the rest).
func wordText(r io.Reader, maxChars int) (string, error) {
	dec := xml.NewDecoder(r)
	dec.Strict = false
	var b strings.Builder
	inText := false
	for b.Len() <= 4*maxChars { // 4 bytes per rune at most: enough for the cut
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "t":
				inText = true
			case "tab":
				b.WriteByte('\t')
			case "br", "cr":
				b.WriteByte('\n')
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				b.WriteByte('\n')
			case "tc":
				b.WriteByte('\t')
			}
		case xml.CharData:
			if inText {
				b.Write(t)
			}
		}
	}
	return b.String(), nil
}
