package bottest_test

import (
	"testing"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/valex-ai/valex/bot/bottest"
)

// sendMessage's allow_paid_broadcast is recorded, and anything but a
// boolean is refused as Telegram refuses it.
func TestAllowPaidBroadcast(t *testing.T) {
	s, api := start(t, bottest.Options{})
	tests := []struct {
		name    string
		value   string // "" = parameter left out
		paid    bool
		refused bool
	}{
		{"left out", "", false, false},
		{"false", "false", false, false},
		{"true", "true", true, false},
		{"not a boolean", "yes", false, true},
	}
	for _, tt := range tests {
		p := tgbotapi.Params{"chat_id": "42", "text": "notice"}
		if tt.value != "" {
			p["allow_paid_broadcast"] = tt.value
		}
		_, err := api.MakeRequest("sendMessage", p)
		if (err != nil) != tt.refused {
			t.Fatalf("%s: err = %v", tt.name, err)
		}
		evs := s.Events()
		if ev := evs[len(evs)-1]; ev.PaidBroadcast != tt.paid {
			t.Fatalf("%s: event %+v, want PaidBroadcast %v", tt.name, ev, tt.paid)
		}
	}
}

// SetRateLimit holds messages to Telegram's broadcast limit; paid
// broadcasts are held to their own.
func TestRateLimit(t *testing.T) {
	tests := []struct {
		name       string
		free, paid float64
		calls      int
		paidCalls  bool
		wantOK     int // of calls made at once
	}{
		{"free calls past the limit get 429", 5, 1000, 8, false, 5},
		{"paid calls are not held to the free limit", 5, 1000, 8, true, 8},
		{"paid calls past their own limit get 429", 5, 3, 8, true, 3},
		{"no limit", 0, 0, 8, false, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, api := start(t, bottest.Options{})
			s.SetRateLimit(tt.free, tt.paid)
			ok := 0
			for range tt.calls {
				p := tgbotapi.Params{"chat_id": "42", "text": "notice"}
				if tt.paidCalls {
					p["allow_paid_broadcast"] = "true"
				}
				_, err := api.MakeRequest("sendMessage", p)
				if err == nil {
					ok++
					continue
				}
				if e := apiError(t, err); e.Code != 429 || e.RetryAfter != 1 {
					t.Fatalf("refusal = %+v", e)
				}
			}
			if ok != tt.wantOK {
				t.Fatalf("%d calls went through, want %d", ok, tt.wantOK)
			}
			// Chat actions are not messages: never limited.
			if _, err := api.Request(tgbotapi.NewChatAction(42, tgbotapi.ChatTyping)); err != nil {
				t.Fatalf("chat action: %v", err)
			}
		})
	}
}
