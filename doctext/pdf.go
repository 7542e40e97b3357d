package doctext

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/ledongthuc/pdf"
)

// pdfTreeDepth bounds the walk down the page tree: real files nest a few
// levels, a cyclic tree would otherwise never end.
const pdfTreeDepth = 32

// pdfText returns the text of each page, pages apart by a blank line, and
// the page count. The library reports malformed input by panicking, so
// every call into it runs under recover.
func pdfText(data []byte, lim Limits) (text string, pages int, err error) {
	defer func() {
		if p := recover(); p != nil {
			text, pages, err = "", 0, fmt.Errorf("%w: pdf: %v", ErrMalformed, p)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if strings.Contains(err.Error(), "encrypt") {
			return "", 0, ErrEncrypted
		}
		return "", 0, fmt.Errorf("%w: pdf: %v", ErrMalformed, err)
	}
	if n := r.NumPage(); n > lim.MaxPages {
		return "", n, ErrTooManyPages
	}
	// The page tree itself, not /Count, says how many pages there are.
	var list []pdf.Page
	seen := 0
	if err := walkPages(r.Trailer().Key("Root").Key("Pages"), 0, &seen, lim.MaxPages, &list); err != nil {
		return "", len(list), err
	}
	// Content streams are decompressed here once within the budget, so
	// that a deflate bomb is refused before the library's text pass
	// decompresses them again.
	budget := lim.MaxUnpacked
	for _, p := range list {
		if budget, err = drain(p.V.Key("Contents"), budget); err != nil {
			return "", len(list), err
		}
	}
	var b strings.Builder
	for _, p := range list {
		t, err := p.GetPlainText(nil)
		if err != nil {
			return "", len(list), fmt.Errorf("%w: pdf page: %v", ErrMalformed, err)
		}
		if strings.TrimSpace(t) == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(t)
		if b.Len() > 4*lim.MaxChars {
			break // Extract cuts at MaxChars runes anyway
		}
	}
	return b.String(), len(list), nil
}

// walkPages collects the leaves of the page tree in order, refusing more
// than max pages, more nodes than a tree of max pages can have, and cycles
// (by depth).
func walkPages(node pdf.Value, depth int, seen *int, max int, out *[]pdf.Page) error {
	if depth > pdfTreeDepth {
		return fmt.Errorf("%w: pdf page tree too deep", ErrMalformed)
	}
	*seen++
	if *seen > 4*max+pdfTreeDepth {
		return ErrTooManyPages
	}
	switch node.Key("Type").Name() {
	case "Page":
		if len(*out) >= max {
			return ErrTooManyPages
		}
		*out = append(*out, pdf.Page{V: node})
		return nil
	case "Pages":
		kids := node.Key("Kids")
		for i := 0; i < kids.Len(); i++ {
			if err := walkPages(kids.Index(i), depth+1, seen, max, out); err != nil {
				return err
			}
		}
		return nil
	}
	return nil // not a page: skipped
}

// drain reads a page's content streams (a stream or an array of them) and
// returns what is left of the decompression budget.
func drain(contents pdf.Value, budget int64) (int64, error) {
	var streams []pdf.Value
	switch contents.Kind() {
	case pdf.Stream:
		streams = []pdf.Value{contents}
	case pdf.Array:
		for i := 0; i < contents.Len(); i++ {
			streams = append(streams, contents.Index(i))
		}
	}
	for _, s := range streams {
		if s.Kind() != pdf.Stream {
			continue
		}
		rc := s.Reader()
		n, err := io.Copy(io.Discard, io.LimitReader(rc, budget+1))
		rc.Close()
		if err != nil {
			return 0, fmt.Errorf("%w: pdf stream: %v", ErrMalformed, err)
		}
		if n > budget {
			return 0, ErrTooBig
		}
		budget -= n
	}
	return budget, nil
}
