package valex_test

import (
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

// t0 is the fixed "now" the desk tests start from.
var t0 = time.Date(2025, time.March, 10, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// wantKey fails unless err is a UserError with key, or nil when key is "".
func wantKey(tb testing.TB, err error, key string) {
	tb.Helper()
	if key == "" {
		if err != nil {
			tb.Fatalf("unexpected error: %v", err)
		}
		return
	}
	ue, ok := valex.AsUserError(err)
	if !ok {
		tb.Fatalf("error = %v, want user error %q", err, key)
	}
	if ue.Key != key {
		tb.Fatalf("error key = %q, want %q", ue.Key, key)
	}
}

func TestRequestKindIsPrivacy(t *testing.T) {
	want := map[valex.RequestKind]bool{
		valex.KindAccess:            true,
		valex.KindRectification:     true,
		valex.KindErasure:           true,
		valex.KindRestriction:       true,
		valex.KindObjection:         true,
		valex.KindConsentWithdrawal: true,
		valex.KindPersonalData:      true,
		valex.KindSupport:           false,
		valex.KindFeedback:          false,
	}
	if len(valex.RequestKinds) != len(want) {
		t.Fatalf("RequestKinds has %d kinds, want %d", len(valex.RequestKinds), len(want))
	}
	for _, k := range valex.RequestKinds {
		t.Run(string(k), func(t *testing.T) {
			if !k.Valid() {
				t.Errorf("Valid() = false")
			}
			if got := k.IsPrivacy(); got != want[k] {
				t.Errorf("IsPrivacy() = %v, want %v", got, want[k])
			}
		})
	}
	for _, k := range []valex.RequestKind{"", "Access", "delete"} {
		if k.Valid() || k.IsPrivacy() {
			t.Errorf("%q: Valid or IsPrivacy true for an unknown kind", k)
		}
	}
}

func TestRequestStatusOpen(t *testing.T) {
	want := map[valex.RequestStatus]bool{
		valex.StatusNew:         true,
		valex.StatusInProgress:  true,
		valex.StatusWaitingUser: true,
		valex.StatusOnHold:      true,
		valex.StatusDone:        false,
		valex.StatusRejected:    false,
		"":                      false,
		"closed":                false,
	}
	for s, w := range want {
		if got := s.Open(); got != w {
			t.Errorf("%q.Open() = %v, want %v", s, got, w)
		}
	}
}

// legal lists every allowed transition; every other pair must be refused.
var legal = map[[2]valex.RequestStatus]bool{
	{valex.StatusNew, valex.StatusInProgress}:         true,
	{valex.StatusNew, valex.StatusWaitingUser}:        true,
	{valex.StatusNew, valex.StatusOnHold}:             true,
	{valex.StatusNew, valex.StatusDone}:               true,
	{valex.StatusNew, valex.StatusRejected}:           true,
	{valex.StatusInProgress, valex.StatusWaitingUser}: true,
	{valex.StatusInProgress, valex.StatusOnHold}:      true,
	{valex.StatusInProgress, valex.StatusDone}:        true,
	{valex.StatusInProgress, valex.StatusRejected}:    true,
	{valex.StatusWaitingUser, valex.StatusInProgress}: true,
	{valex.StatusWaitingUser, valex.StatusDone}:       true,
	{valex.StatusWaitingUser, valex.StatusRejected}:   true,
	{valex.StatusOnHold, valex.StatusInProgress}:      true,
	{valex.StatusOnHold, valex.StatusRejected}:        true,
}

func TestCanTransitionAllPairs(t *testing.T) {
	all := append(append([]valex.RequestStatus{}, valex.RequestStatuses...), "", "closed")
	n := 0
	for _, from := range all {
		for _, to := range all {
			want := legal[[2]valex.RequestStatus{from, to}]
			if want {
				n++
			}
			if got := valex.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%q, %q) = %v, want %v", from, to, got, want)
			}
		}
	}
	if n != len(legal) {
		t.Errorf("table has %d legal pairs, only %d reachable from RequestStatuses", len(legal), n)
	}
}

func TestTransition(t *testing.T) {
	at := t0.Add(2 * time.Hour)
	tests := []struct {
		name     string
		from, to valex.RequestStatus
		note     string
		wantKey  string
	}{
		{"new to in_progress", valex.StatusNew, valex.StatusInProgress, "", ""},
		{"new to done", valex.StatusNew, valex.StatusDone, "export sent", ""},
		{"waiting_user back to in_progress", valex.StatusWaitingUser, valex.StatusInProgress, "user replied", ""},
		{"on_hold lifted", valex.StatusOnHold, valex.StatusInProgress, "dispute settled", ""},
		{"reject with reason", valex.StatusInProgress, valex.StatusRejected, "identity not confirmed", ""},
		{"reject from hold", valex.StatusOnHold, valex.StatusRejected, "legal hold", ""},
		{"reject without reason", valex.StatusInProgress, valex.StatusRejected, "", "desk.reason_required"},
		{"reject with blank reason", valex.StatusNew, valex.StatusRejected, " \n\t", "desk.reason_required"},
		{"done is final", valex.StatusDone, valex.StatusInProgress, "", "desk.illegal_transition"},
		{"rejected is final", valex.StatusRejected, valex.StatusNew, "", "desk.illegal_transition"},
		{"done to rejected", valex.StatusDone, valex.StatusRejected, "why", "desk.illegal_transition"},
		{"on_hold straight to done", valex.StatusOnHold, valex.StatusDone, "", "desk.illegal_transition"},
		{"waiting_user to on_hold", valex.StatusWaitingUser, valex.StatusOnHold, "", "desk.illegal_transition"},
		{"back to new", valex.StatusInProgress, valex.StatusNew, "", "desk.illegal_transition"},
		{"same status", valex.StatusInProgress, valex.StatusInProgress, "", "desk.illegal_transition"},
		{"unknown target", valex.StatusNew, "closed", "", "desk.illegal_transition"},
		{"note too long", valex.StatusNew, valex.StatusDone, strings.Repeat("x", valex.MaxRequestTextLen+1), "desk.too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := valex.Request{ID: 1, Status: tt.from, History: []valex.StatusChange{{At: t0, To: tt.from}}}
			err := r.Transition(tt.to, 42, tt.note, at)
			wantKey(t, err, tt.wantKey)
			if tt.wantKey != "" {
				if r.Status != tt.from || len(r.History) != 1 || !r.ClosedAt.IsZero() {
					t.Errorf("refused transition changed the request: %+v", r)
				}
				return
			}
			if r.Status != tt.to {
				t.Errorf("Status = %q, want %q", r.Status, tt.to)
			}
			want := valex.StatusChange{At: at, By: 42, From: tt.from, To: tt.to, Note: strings.TrimSpace(tt.note)}
			if len(r.History) != 2 || r.History[1] != want {
				t.Errorf("History = %+v, want last %+v", r.History, want)
			}
			final := tt.to == valex.StatusDone || tt.to == valex.StatusRejected
			if final != r.ClosedAt.Equal(at) {
				t.Errorf("ClosedAt = %v for status %q", r.ClosedAt, tt.to)
			}
			if tt.to == valex.StatusRejected && r.RejectReason != tt.note {
				t.Errorf("RejectReason = %q, want %q", r.RejectReason, tt.note)
			}
			if tt.to == valex.StatusDone && r.Resolution != tt.note {
				t.Errorf("Resolution = %q, want %q", r.Resolution, tt.note)
			}
		})
	}
}

func TestTransitionIllegalArgs(t *testing.T) {
	r := valex.Request{Status: valex.StatusDone}
	ue, ok := valex.AsUserError(r.Transition(valex.StatusInProgress, 1, "", t0))
	if !ok || ue.Args["From"] != "done" || ue.Args["To"] != "in_progress" {
		t.Fatalf("error = %+v, want From/To args", ue)
	}
}
