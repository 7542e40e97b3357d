package bot

import (
	"strings"
	"testing"
)

// FuzzParseUpdate: any bytes from the network are either an error or an
// Update with a known kind — never a panic.
func FuzzParseUpdate(f *testing.F) {
	f.Add([]byte(`{"update_id":1,"message":{"message_id":5,"chat":{"id":7,"type":"private"},"from":{"id":7},"text":"/start x","entities":[{"type":"bot_command","offset":0,"length":6}]}}`))
	f.Add([]byte(`{"update_id":2,"callback_query":{"id":"c","from":{"id":7},"data":"x.y"}}`))
	f.Add([]byte(`{"update_id":3,"message":{"message_id":1,"chat":{"id":-5,"type":"group"},"text":"/a@b","entities":[{"type":"bot_command","offset":0,"length":40}]}}`))
	f.Add([]byte(`{"update_id":4,"pre_checkout_query":{"id":"p","from":{"id":1},"currency":"RUB","total_amount":100,"invoice_payload":"x"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		u, err := parseUpdate(raw, "valex_bot")
		if err != nil {
			return
		}
		if u.Kind < KindUnsupported || u.Kind > KindIgnored {
			t.Fatalf("unknown kind %d", u.Kind)
		}
		if u.Kind == KindCommand && (u.Command == "" || strings.ContainsAny(u.Command, "@/")) {
			t.Fatalf("command %q", u.Command)
		}
	})
}

// FuzzSignerParse: no callback data, however forged, parses without the key.
func FuzzSignerParse(f *testing.F) {
	s := NewSigner([]byte("k"))
	f.Add(s.Data("prof", "edit", "city"))
	f.Add("prof:edit:city.AAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, data string) {
		prefix, args, ok := s.Parse(data)
		if !ok {
			return
		}
		// Whatever parsed must be exactly what Data would have produced.
		if again := s.Data(prefix, args...); again != data {
			t.Fatalf("parsed %q as %q %v, which signs to %q", data, prefix, args, again)
		}
	})
}
