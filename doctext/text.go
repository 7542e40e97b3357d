package doctext

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// plainText decodes a text file: UTF-8 (a BOM is dropped) or UTF-16 with
// its BOM. Invalid UTF-8 or NUL bytes mean a binary file sent as text.
func plainText(data []byte) (string, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		data = data[3:]
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		return utf16Text(data[2:], false)
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		return utf16Text(data[2:], true)
	}
	if !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		return "", ErrNotText
	}
	return normalizeNewlines(string(data)), nil
}

func utf16Text(data []byte, bigEndian bool) (string, error) {
	if len(data)%2 != 0 {
		return "", ErrNotText
	}
	units := make([]uint16, len(data)/2)
	for i := range units {
		hi, lo := data[2*i], data[2*i+1]
		if !bigEndian {
			hi, lo = lo, hi
		}
		units[i] = uint16(hi)<<8 | uint16(lo)
	}
	runes := utf16.Decode(units)
	for _, r := range runes {
		if r == 0 || r == utf8.RuneError {
			return "", ErrNotText // NULs or unpaired surrogates: not text
		}
	}
	return normalizeNewlines(string(runes)), nil
}

func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(s)
}
