package ai

import (
	"bytes"
	"encoding/binary"
	"math"
	"unicode/utf8"
)

// Cost is price × usage in micro-credits. All terms are summed over a common
// denominator and rounded up once, so a call that used anything billable
// costs at least one micro-credit and totals never drift.
func (r *Router) Cost(m Model, u Usage) int64 {
	p := m.Price
	audioMillis := int64(0)
	if u.AudioSeconds > 0 {
		audioMillis = int64(math.Round(u.AudioSeconds * 1000))
	}
	// Denominator 60000: per-1K prices × 60, per-minute price × milliseconds.
	num := 60*(int64(max(u.InputTokens, 0))*p.InputPer1K+
		int64(max(u.OutputTokens, 0))*p.OutputPer1K+
		int64(max(u.Chars, 0))*p.Per1KChars) +
		audioMillis*p.PerAudioMinute +
		60000*int64(max(u.Images, 0))*p.PerImage
	return (num + 59999) / 60000
}

// EstimateTokens is a cheap, deliberately high estimate of the tokens in
// text, for context budgeting and for providers that report no usage:
// about 4 ASCII characters per token, 2 for other alphabets (Cyrillic,
// Greek, accented Latin), and 1 per CJK character or emoji.
func EstimateTokens(text string) int {
	quarters := 0 // in quarter tokens
	for _, r := range text {
		switch {
		case r < utf8.RuneSelf:
			quarters++
		case r < 0x2E80: // before the CJK blocks
			quarters += 2
		default:
			quarters += 4
		}
	}
	return (quarters + 3) / 4
}

// oggDuration reads the length of Ogg Opus audio (a Telegram voice message)
// from the granule position of its last page; 0 when the audio is not Ogg
// Opus. Opus granules count 48 kHz samples, minus the header's pre-skip.
func oggDuration(b []byte) float64 {
	const pageHeader = 27
	if len(b) < pageHeader || !bytes.HasPrefix(b, []byte("OggS")) {
		return 0
	}
	start := pageHeader + int(b[26]) // after the segment table
	if start > len(b) {
		return 0
	}
	head := b[start:]
	if len(head) < 12 || !bytes.HasPrefix(head, []byte("OpusHead")) {
		return 0
	}
	preSkip := int64(binary.LittleEndian.Uint16(head[10:12]))
	// Walk back over pages; a granule of -1 means no packet ends there.
	end := len(b)
	for {
		i := bytes.LastIndex(b[:end], []byte("OggS"))
		if i < 0 {
			return 0
		}
		if i+pageHeader <= len(b) {
			granule := int64(binary.LittleEndian.Uint64(b[i+6 : i+14]))
			if granule > preSkip {
				return float64(granule-preSkip) / 48000
			}
			if granule >= 0 {
				return 0
			}
		}
		end = i
	}
}
