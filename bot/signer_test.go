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
