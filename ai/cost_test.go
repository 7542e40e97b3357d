package ai_test

import (
	"strings"
	"testing"

	"github.com/valex-ai/valex/ai"
)

func TestCost(t *testing.T) {
	r, err := ai.New(ai.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		price ai.Price
		usage ai.Usage
		want  int64
	}{
		{"nothing used", ai.Price{InputPer1K: 1000}, ai.Usage{}, 0},
		{"free model", ai.Price{}, ai.Usage{InputTokens: 5000, OutputTokens: 5000}, 0},
		{"tokens exact", ai.Price{InputPer1K: 2500, OutputPer1K: 10_000}, ai.Usage{InputTokens: 2000, OutputTokens: 500}, 5000 + 5000},
		{"tokens round up once", ai.Price{InputPer1K: 1, OutputPer1K: 1}, ai.Usage{InputTokens: 1, OutputTokens: 1}, 1},
		{"sum before rounding", ai.Price{InputPer1K: 1, OutputPer1K: 1}, ai.Usage{InputTokens: 500, OutputTokens: 500}, 1},
		{"just over", ai.Price{InputPer1K: 1000}, ai.Usage{InputTokens: 1001}, 1001},
		{"images", ai.Price{PerImage: 40_000, InputPer1K: 1000}, ai.Usage{Images: 2, InputTokens: 10}, 80_010},
		{"audio a minute", ai.Price{PerAudioMinute: 6000}, ai.Usage{AudioSeconds: 60}, 6000},
		{"audio 2.5 s", ai.Price{PerAudioMinute: 6000}, ai.Usage{AudioSeconds: 2.5}, 250},
		{"audio rounds up", ai.Price{PerAudioMinute: 1}, ai.Usage{AudioSeconds: 0.001}, 1},
		{"chars", ai.Price{Per1KChars: 15_000}, ai.Usage{Chars: 1234}, 18_510},
		{"negative usage ignored", ai.Price{InputPer1K: 1000, PerAudioMinute: 60}, ai.Usage{InputTokens: -5, AudioSeconds: -3}, 0},
		{"a million calls' worth", ai.Price{InputPer1K: 150, OutputPer1K: 600}, ai.Usage{InputTokens: 1_000_000, OutputTokens: 1_000_000}, 750_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Cost(ai.Model{Price: tc.price}, tc.usage); got != tc.want {
				t.Errorf("Cost = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCostDoesNotDrift(t *testing.T) {
	// 1000 calls of 1000 tokens at 1 micro-credit per 1K cost exactly 1000.
	r, _ := ai.New(ai.Config{}, nil)
	m := ai.Model{Price: ai.Price{InputPer1K: 1}}
	var total int64
	for range 1000 {
		total += r.Cost(m, ai.Usage{InputTokens: 1000})
	}
	if total != 1000 {
		t.Errorf("total = %d, want 1000", total)
	}
}

func TestEstimateTokens(t *testing.T) {
	tests := []struct {
		name string
		text string
		want int
	}{
		{"empty", "", 0},
		{"one char", "a", 1},
		{"four ascii", "abcd", 1},
		{"five ascii", "abcde", 2},
		{"sentence", "The quick brown fox jumps.", 7},
		{"cyrillic two per token", "привет", 3},
		{"mixed", "hi, мир", 3}, // 4 ascii + 3×2 = 10 quarters → 3
		{"cjk one per token", "你好世界", 4},
		{"emoji", "👍👍", 2},
		{"long ascii", strings.Repeat("x", 4000), 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ai.EstimateTokens(tc.text); got != tc.want {
				t.Errorf("EstimateTokens(%q) = %d, want %d", tc.text, got, tc.want)
			}
		})
	}
}
