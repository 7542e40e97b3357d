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
		// The poller reads the head from the parsed update: the same.
		e, u, err := entryOf([]byte(c.raw), "valex_bot")
		if (err != nil) != c.unreadable || e.ID != c.id || e.UserID != c.sender || string(e.Payload) != c.raw {
			t.Errorf("entryOf(%s) = %+v, %v; want %d, %d (error %v)", c.raw, e, err, c.id, c.sender, c.unreadable)
		}
		if err == nil && (u == nil || u.ID != c.id) {
			t.Errorf("entryOf(%s): parsed %+v", c.raw, u)
		}
	}
}

// A stop tap in a private chat names no "from": the parsed update takes
// the chat's user as its sender, so the stored update is sealed with that
// user's key (erasing the user makes it unreadable) like their messages.
func TestEntryOfSealsAStopWithItsUser(t *testing.T) {
	raw := `{"update_id":16,"stopped_message_generation":{"chat":{"id":50,"type":"private","first_name":"a"},"draft_id":5}}`
	e, u, err := entryOf([]byte(raw), "valex_bot")
	if err != nil || e.ID != 16 || e.UserID != 50 || u == nil || u.Kind != KindStop {
		t.Fatalf("entryOf = %+v, %+v, %v; want id 16, sender 50, a stop", e, u, err)
	}
}

// A payload that does not parse as an update but has an update_id is still
// stored by its head (and reported unreadable when dispatched).
func TestEntryOfKeepsAnUnparsableUpdate(t *testing.T) {
	raw := `{"update_id":17,"message":{"message_id":"not a number","from":{"id":51}}}`
	e, u, err := entryOf([]byte(raw), "valex_bot")
	if err != nil || e.ID != 17 || e.UserID != 51 || u != nil {
		t.Fatalf("entryOf = %+v, %+v, %v; want id 17, sender 51, not parsed", e, u, err)
	}
}
