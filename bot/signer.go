package bot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strings"
	"sync"
)

// Signer signs callback data so that a tampered button (any client can send
// arbitrary callback data) is recognised before a handler sees it.
// Format: prefix:arg1:arg2.SIG where SIG is 8 bytes of HMAC-SHA256, base64url.
// Telegram allows 64 bytes of callback data; keep prefixes and args short.
type Signer struct {
	key  []byte
	macs sync.Pool // HMAC-SHA256 states with the key: an answer signs several buttons
}

// MaxCallbackData is Telegram's limit on callback_data.
const MaxCallbackData = 64

// NewSigner returns a signer with the given secret.
func NewSigner(secret []byte) *Signer {
	k := sha256.Sum256(append([]byte("valex-callback:"), secret...))
	s := &Signer{key: k[:]}
	s.macs.New = func() any { return hmac.New(sha256.New, s.key) }
	return s
}

func (s *Signer) sig(body string) string {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(body))
	var sum [sha256.Size]byte
	out := base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:8])
	s.macs.Put(m)
	return out
}

// Data builds signed callback data. Arguments must not contain ':' or '.'.
// It panics when the result exceeds Telegram's 64 bytes: that is a bug in
// the calling code, found by its tests, never by a user.
func (s *Signer) Data(prefix string, args ...string) string {
	body := prefix
	if len(args) > 0 {
		body += ":" + strings.Join(args, ":")
	}
	d := body + "." + s.sig(body)
	if len(d) > MaxCallbackData {
		panic("callback data over 64 bytes: " + prefix)
	}
	return d
}

// Digest is a short keyed hash of parts (8 bytes of HMAC-SHA256,
// base64url: 11 characters). It names a value in callback data — a
// question to answer again — without carrying it: nobody without the
// secret can tell from it what was asked.
func (s *Signer) Digest(parts ...string) string {
	return s.sig("digest\x00" + strings.Join(parts, "\x00"))
}

// Parse verifies data and splits it into prefix and arguments.
func (s *Signer) Parse(data string) (prefix string, args []string, ok bool) {
	i := strings.LastIndexByte(data, '.')
	if i < 0 {
		return "", nil, false
	}
	body, sig := data[:i], data[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.sig(body))) {
		return "", nil, false
	}
	parts := strings.Split(body, ":")
	return parts[0], parts[1:], true
}
