package bot

import (
	"strings"
	"testing"
)

func TestSignerRoundTripAndTampering(t *testing.T) {
	s := NewSigner([]byte("secret"))
	data := s.Data("prof", "edit", "city")
	prefix, args, ok := s.Parse(data)
	if !ok || prefix != "prof" || strings.Join(args, ",") != "edit,city" {
		t.Fatalf("Parse(%q) = %q %v %v", data, prefix, args, ok)
	}
	tampered := []struct{ name, data string }{
		{"changed argument", strings.Replace(data, "city", "email", 1)},
		{"changed prefix", strings.Replace(data, "prof", "lang", 1)},
		{"no signature", "prof:edit:city"},
		{"empty", ""},
		{"garbage", "\x00\xff.."},
		{"other key", NewSigner([]byte("other")).Data("prof", "edit", "city")},
	}
	for _, tc := range tampered {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, ok := s.Parse(tc.data); ok {
				t.Fatalf("tampered data %q accepted", tc.data)
			}
		})
	}
}

func TestSignerPanicsOverTelegramLimit(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for callback data over 64 bytes")
		}
	}()
	NewSigner(nil).Data("x", strings.Repeat("a", 60))
}

func TestDigest(t *testing.T) {
	s := NewSigner([]byte("k1"))
	d := s.Digest("retry", "7", "how are you")
	if d != s.Digest("retry", "7", "how are you") || len(d) != 11 {
		t.Fatalf("digest %q is not stable or not 11 characters", d)
	}
	for _, other := range []string{
		s.Digest("retry", "7", "how are you?"),
		s.Digest("retry", "7how are", "you"), // parts are kept apart
		NewSigner([]byte("k2")).Digest("retry", "7", "how are you"),
	} {
		if other == d {
			t.Errorf("different input, same digest %q", d)
		}
	}
	// A digest is no signature of a button: it cannot pass Parse.
	if _, _, ok := s.Parse("retry:7:how are you." + d); ok {
		t.Error("a digest verified as callback data")
	}
}
