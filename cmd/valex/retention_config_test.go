package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valex-ai/valex"
)

// `valex check` prints every retention period the jobs enforce.
func TestCheckPrintsTheRetentionPeriods(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"defaults", "", []string{
			"configuration OK", "\nretention:\n",
			"notified after 24 months without activity, account deleted 30 days after the notice",
			"payment records: kept at least 5 years",
			"text deleted 12 months after closing",
			"feedback: closes when staff answer, or 30 days after its last message",
			"AI conversations and voice transcripts: kept until the user deletes them (/conversations) or the account",
		}},
		{"configured", "[retention]\ninactive_months = 18\ninactive_grace_days = 14\npayments_years = 7\ncommunications_months = 6\nfeedback_close_days = 10\nconversations = \"90d\"\n", []string{
			"notified after 18 months without activity, account deleted 14 days after the notice",
			"kept at least 7 years",
			"text deleted 6 months after closing",
			"or 10 days after its last message",
			"AI conversations and voice transcripts: turns deleted 90d after they were written",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "valex.toml")
			if err := os.WriteFile(file, []byte(tt.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := run(context.Background(), []string{"check"}, nil, &out, &out, envFrom(map[string]string{
				"VALEX_CONFIG": file, "VALEX_DATA_DIR": dir, "VALEX_TELEGRAM_TOKEN": testToken,
			}))
			if err != nil {
				t.Fatalf("check: %v\n%s", err, out.String())
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("check output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

func TestRetentionConfigRefusesBrokenPromises(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "valex.toml")
	os.WriteFile(file, []byte("[retention]\npayments_years = 3\ncommunications_months = 24\nfeedback_close_days = 0\nconversations = \"90h\"\n"), 0o600)
	var out bytes.Buffer
	err := run(context.Background(), []string{"check"}, nil, &out, &out, envFrom(map[string]string{
		"VALEX_CONFIG": file, "VALEX_DATA_DIR": dir, "VALEX_TELEGRAM_TOKEN": testToken,
	}))
	if err == nil {
		t.Fatalf("check passed:\n%s", out.String())
	}
	for _, want := range []string{"payments_years 3", "communications_months 24", "feedback_close_days 0", `conversations "90h"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRetentionConfigIsThePolicy(t *testing.T) {
	if got := DefaultRetention().Policy(); got != valex.DefaultRetentionPolicy() {
		t.Fatalf("default config policy %+v, want %+v", got, valex.DefaultRetentionPolicy())
	}
	r := DefaultRetention()
	r.Conversations = "6m"
	if p := r.Policy(); p.Conversations != (valex.Period{Months: 6}) || p.ConversationsKept() {
		t.Fatalf("conversations 6m: %+v", p)
	}
}
