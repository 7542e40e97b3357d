package ai

import (
	"math"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai/aitest"
)

func TestOggDuration(t *testing.T) {
	tests := []struct {
		name  string
		audio []byte
		want  float64
	}{
		{"3 s", aitest.SilentOggOpus(3 * time.Second), 3},
		{"12 s, several pages", aitest.SilentOggOpus(12 * time.Second), 12},
		{"mp3", aitest.SilentMP3(time.Second), 0},
		{"empty", nil, 0},
		{"header only", aitest.SilentOggOpus(time.Second)[:40], 0},
		{"garbage after OggS", []byte("OggS garbage that is long enough to pass"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oggDuration(tc.audio); math.Abs(got-tc.want) > 0.001 {
				t.Errorf("oggDuration = %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzOggDuration(f *testing.F) {
	f.Add(aitest.SilentOggOpus(time.Second))
	f.Add([]byte("OggS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d := oggDuration(b); d < 0 || math.IsNaN(d) {
			t.Errorf("oggDuration = %v", d)
		}
	})
}
