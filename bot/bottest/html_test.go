package bottest

import (
	"html"
	"testing"
	"unicode/utf8"
)

func TestTrimTextClipsEntities(t *testing.T) {
	tests := []struct {
		name     string
		in       formatted
		text     string
		entities []entity
	}{
		{"nothing to trim", formatted{"ab", []entity{{Type: "bold", Offset: 0, Length: 2}}}, "ab", []entity{{Type: "bold", Offset: 0, Length: 2}}},
		{"shift", formatted{"  ab", []entity{{Type: "bold", Offset: 2, Length: 2}}}, "ab", []entity{{Type: "bold", Offset: 0, Length: 2}}},
		{"clip both ends", formatted{" ab \n", []entity{{Type: "bold", Offset: 0, Length: 5}}}, "ab", []entity{{Type: "bold", Offset: 0, Length: 2}}},
		{"whitespace-only entity dropped", formatted{"ab ", []entity{{Type: "bold", Offset: 2, Length: 1}}}, "ab", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := trimText(tc.in)
			if got.text != tc.text || !entitiesEqual(got.entities, tc.entities) {
				t.Fatalf("trimText = %q %+v, want %q %+v", got.text, got.entities, tc.text, tc.entities)
			}
		})
	}
}

func TestCommandEntities(t *testing.T) {
	tests := []struct {
		text string
		want []entity
	}{
		{"/start", []entity{{Type: "bot_command", Offset: 0, Length: 6}}},
		{"/start@valex_bot x", []entity{{Type: "bot_command", Offset: 0, Length: 16}}},
		{"😀 /help me", []entity{{Type: "bot_command", Offset: 3, Length: 5}}},
		{"see http://a/b", nil},
		{"/", nil},
		{"/a /b", []entity{{Type: "bot_command", Offset: 0, Length: 2}, {Type: "bot_command", Offset: 3, Length: 2}}},
		{"/start, please", []entity{{Type: "bot_command", Offset: 0, Length: 6}}},
		{"(/help)", []entity{{Type: "bot_command", Offset: 1, Length: 5}}},
		{"/x&amp;y", []entity{{Type: "bot_command", Offset: 0, Length: 2}}},
		{"/x<b>", nil},
		{"a/b", nil},
		{"/a@ab x", []entity{{Type: "bot_command", Offset: 0, Length: 2}}},
	}
	for _, tc := range tests {
		if got := commandEntities(tc.text); !entitiesEqual(got, tc.want) {
			t.Errorf("commandEntities(%q) = %+v, want %+v", tc.text, got, tc.want)
		}
	}
}

func TestDecodeEntity(t *testing.T) {
	tests := []struct {
		in   string
		r    rune
		size int
	}{
		{"&lt;x", '<', 4}, {"&quot;", '"', 6}, {"&#65;", 'A', 5}, {"&#x1F600;", 0x1F600, 9},
		{"&#0;", 0, 0}, {"&#xD800;", 0, 0}, {"&#x110000;", 0, 0}, {"&apos;", 0, 0},
		{"&#X41;", 0, 0}, {"&lt", 0, 0}, {"&;", 0, 0}, {"&#;", 0, 0}, {"&#x;", 0, 0},
	}
	for _, tc := range tests {
		r, n := decodeEntity(tc.in)
		if r != tc.r || n != tc.size {
			t.Errorf("decodeEntity(%q) = %q, %d; want %q, %d", tc.in, r, n, tc.r, tc.size)
		}
	}
}

// FuzzParseHTML checks the parser never panics, keeps entities inside the
// text, and that escaped plain text always parses back to itself.
func FuzzParseHTML(f *testing.F) {
	for _, seed := range []string{
		"<b>x</b>", "a < b", "<a href='x'>y</a>", "&amp;&#65;&#x42;", "<pre><code class=\"language-go\">x</code></pre>",
		"<blockquote expandable>q</blockquote>", "😀<i>x</i>", "<b><i>x</b></i>", "<tg-emoji emoji-id=\"1\">👍</tg-emoji>",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		out, err := parseHTML(s)
		if err == nil {
			if !utf8.ValidString(out.text) {
				t.Fatalf("invalid UTF-8 output %q", out.text)
			}
			n := utf16Count(out.text)
			for _, e := range out.entities {
				if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > n {
					t.Fatalf("entity %+v outside text of length %d", e, n)
				}
			}
		}
		back, err := parseHTML(html.EscapeString(s))
		if err != nil || back.text != s || len(back.entities) != 0 {
			t.Fatalf("escaped %q parsed to %q, %v", s, back.text, err)
		}
	})
}
