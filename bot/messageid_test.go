package bot

import (
	"encoding/json"
	"testing"
)

func TestMessageIDReadsTheHeadOrDecodes(t *testing.T) {
	for _, c := range []struct {
		res  string
		want int
		bad  bool
	}{
		{`{"message_id":42,"date":1,"chat":{"id":7},"text":"hi"}`, 42, false},
		{`{"message_id":7}`, 7, false},
		{`{"date":1,"message_id":9}`, 9, false},            // another order: decoded in full
		{`{"message_id": 11, "date":1}`, 11, false},        // spaces: decoded in full
		{`{"message_id":12x}`, 0, true},                    // not JSON
		{`{"message_id":"13"}`, 0, true},                   // not a number
		{`{"message_id":1234567890123456789012}`, 0, true}, // too long for an int
	} {
		got, err := messageID(json.RawMessage(c.res))
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("messageID(%s) = %d, %v; want %d (error %v)", c.res, got, err, c.want, c.bad)
		}
	}
}
