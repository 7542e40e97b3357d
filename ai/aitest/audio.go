package aitest

import (
	"encoding/binary"
	"time"
)

// SilentMP3 is d of silence as MPEG-1 Layer III frames (128 kbit/s,
// 44.1 kHz, mono): each frame is a header and all-zero side info and data,
// which decoders play as silence. One frame lasts 1152/44100 s.
func SilentMP3(d time.Duration) []byte {
	const frameLen = 417 // 144 × 128000 / 44100, no padding
	frames := max(int(d.Seconds()*44100/1152+0.5), 1)
	out := make([]byte, 0, frames*frameLen)
	for range frames {
		frame := make([]byte, frameLen)
		copy(frame, []byte{0xFF, 0xFB, 0x90, 0xC0})
		out = append(out, frame...)
	}
	return out
}

// opusPreSkip is the customary encoder delay at 48 kHz.
const opusPreSkip = 312

// SilentOggOpus is d of silence as Ogg Opus, the format of Telegram voice
// messages: an OpusHead page, an OpusTags page, then 20 ms silence packets.
// The last page's granule position gives the duration, as in real files.
func SilentOggOpus(d time.Duration) []byte {
	const samplesPerPacket = 960 // 20 ms at 48 kHz
	packets := max(int(d/(20*time.Millisecond)), 1)

	head := []byte("OpusHead")
	head = append(head, 1, 1) // version, channels
	head = binary.LittleEndian.AppendUint16(head, opusPreSkip)
	head = binary.LittleEndian.AppendUint32(head, 48000) // input sample rate
	head = append(head, 0, 0, 0)                         // output gain, mapping family
	tags := []byte("OpusTags")
	tags = binary.LittleEndian.AppendUint32(tags, 6)
	tags = append(tags, "aitest"...)
	tags = binary.LittleEndian.AppendUint32(tags, 0) // no user comments

	const serial = 0x61697465
	var out []byte
	out = appendOggPage(out, 0x02, 0, serial, 0, [][]byte{head})
	out = appendOggPage(out, 0x00, 0, serial, 1, [][]byte{tags})
	silence := []byte{0xF8, 0xFF, 0xFE} // CELT fullband 20 ms, one silent frame
	seq := uint32(2)
	granule := int64(opusPreSkip)
	for packets > 0 {
		n := min(packets, 255) // one lacing value per 3-byte packet
		page := make([][]byte, n)
		for i := range page {
			page[i] = silence
		}
		packets -= n
		granule += int64(n * samplesPerPacket)
		flags := byte(0)
		if packets == 0 {
			flags = 0x04 // end of stream
		}
		out = appendOggPage(out, flags, granule, serial, seq, page)
		seq++
	}
	return out
}

// appendOggPage appends one Ogg page holding whole packets shorter than 255
// bytes each (all we need here).
func appendOggPage(out []byte, flags byte, granule int64, serial, seq uint32, packets [][]byte) []byte {
	start := len(out)
	out = append(out, "OggS"...)
	out = append(out, 0, flags)
	out = binary.LittleEndian.AppendUint64(out, uint64(granule))
	out = binary.LittleEndian.AppendUint32(out, serial)
	out = binary.LittleEndian.AppendUint32(out, seq)
	out = append(out, 0, 0, 0, 0) // CRC, filled below
	out = append(out, byte(len(packets)))
	for _, p := range packets {
		out = append(out, byte(len(p)))
	}
	for _, p := range packets {
		out = append(out, p...)
	}
	binary.LittleEndian.PutUint32(out[start+22:], oggCRC(out[start:]))
	return out
}

// oggCRC is Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial 0
// (hash/crc32 only offers the reflected form).
func oggCRC(b []byte) uint32 {
	var crc uint32
	for _, c := range b {
		crc ^= uint32(c) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// pcmBytes is d of OpenAI's raw PCM: 24 kHz, 16-bit, mono.
func pcmBytes(d time.Duration) int { return int(d.Seconds()*24000) * 2 }

// silentWAV is d of silence as a 24 kHz 16-bit mono WAV file.
func silentWAV(d time.Duration) []byte {
	n := pcmBytes(d)
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(36+n))
	out = append(out, "WAVEfmt "...)
	out = binary.LittleEndian.AppendUint32(out, 16)      // fmt chunk size
	out = binary.LittleEndian.AppendUint16(out, 1)       // PCM
	out = binary.LittleEndian.AppendUint16(out, 1)       // mono
	out = binary.LittleEndian.AppendUint32(out, 24000)   // sample rate
	out = binary.LittleEndian.AppendUint32(out, 24000*2) // byte rate
	out = binary.LittleEndian.AppendUint16(out, 2)       // block align
	out = binary.LittleEndian.AppendUint16(out, 16)      // bits per sample
	out = append(out, "data"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(n))
	return append(out, make([]byte, n)...)
}
