package bot

import "testing"

// headOf reads the same sender as the generic senderOf, in one pass for
// the kinds Valex receives, and falls back to it for the others.
func TestHeadOfFindsTheSender(t *testing.T) {
	for _, c := range []struct {
		raw        string
		id         int
		sender     int64
		unreadable bool
	}{
		{`{"update_id":7,"message":{"message_id":1,"from":{"id":42,"is_bot":false,"first_name":"a"},"chat":{"id":42,"type":"private"},"date":1,"text":"hi"}}`, 7, 42, false},
		{`{"update_id":8,"edited_message":{"message_id":1,"from":{"id":43},"chat":{"id":43},"date":1}}`, 8, 43, false},
		{`{"update_id":9,"callback_query":{"id":"c","from":{"id":44},"data":"x"}}`, 9, 44, false},
		{`{"update_id":10,"pre_checkout_query":{"id":"p","from":{"id":45},"currency":"XTR","total_amount":5,"invoice_payload":"x"}}`, 10, 45, false},
		{`{"update_id":11,"my_chat_member":{"chat":{"id":46},"from":{"id":46},"date":1}}`, 11, 46, false},
		{`{"update_id":12,"message_reaction":{"chat":{"id":47},"user":{"id":47},"date":1}}`, 12, 0, false},                 // no "from"
		{`{"update_id":13,"business_message":{"message_id":1,"from":{"id":48},"chat":{"id":48},"date":1}}`, 13, 48, false}, // a kind not listed: the fallback
		{`{"update_id":14,"stopped_message_generation":{"chat":{"id":49},"draft_id":5}}`, 14, 0, false},
		{`{"update_id":15`, 0, 0, true},
	} {
		id, sender, err := headOf([]byte(c.raw))
		if (err != nil) != c.unreadable || id != c.id || sender != c.sender {
			t.Errorf("headOf(%s) = %d, %d, %v; want %d, %d (error %v)", c.raw, id, sender, err, c.id, c.sender, c.unreadable)
		}
		if err == nil && sender != senderOf([]byte(c.raw)) {
			t.Errorf("headOf(%s): sender %d, senderOf says %d", c.raw, sender, senderOf([]byte(c.raw)))
		}
	}
}
