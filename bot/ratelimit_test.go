package bot

import (
	"context"
	"testing"

	"github.com/valex-ai/valex"
)

func TestUserLimitWarnsOnceThenDrops(t *testing.T) {
	handled := 0
	h := UserLimit(3)(func(context.Context, *Request) error { handled++; return nil })
	user := func() *Request {
		return &Request{Update: &Update{From: From{ID: 1}, Kind: KindText}, Role: valex.RoleUser}
	}
	var warnings int
	for i := 0; i < 10; i++ {
		if err := h(context.Background(), user()); err != nil {
			if ue, ok := valex.AsUserError(err); !ok || ue.Key != "error.rate_limited" {
				t.Fatalf("error = %v", err)
			}
			warnings++
		}
	}
	if handled != 3 || warnings != 1 {
		t.Fatalf("handled %d, warned %d times; want 3 and 1", handled, warnings)
	}
	// Another user and staff are not affected.
	other := &Request{Update: &Update{From: From{ID: 2}, Kind: KindText}, Role: valex.RoleUser}
	staff := &Request{Update: &Update{From: From{ID: 1}, Kind: KindText}, Role: valex.RoleSupport}
	for _, r := range []*Request{other, staff} {
		if err := h(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if handled != 5 {
		t.Fatalf("handled %d, want 5", handled)
	}
}
