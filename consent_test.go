package valex_test

import (
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

func TestConsentState(t *testing.T) {
	c := func(kind valex.ConsentKind, granted bool, at time.Duration) valex.ConsentEvent {
		return valex.ConsentEvent{UserID: 1, Kind: kind, Granted: granted, At: t0.Add(at), PolicyVersion: "2025-01", Source: "privacy_menu"}
	}
	r := func(kind valex.RestrictionKind, active bool, at time.Duration) valex.RestrictionEvent {
		return valex.RestrictionEvent{UserID: 1, Kind: kind, Active: active, At: t0.Add(at), Source: "desk"}
	}
	ai, mkt := valex.ConsentAITransfer, valex.ConsentMarketing
	tests := []struct {
		name          string
		consents      []valex.ConsentEvent
		restrictions  []valex.RestrictionEvent
		wantAI        bool
		wantMarketing bool
		wantAnalytics bool
	}{
		{"no events: nothing granted, nothing restricted", nil, nil, false, false, true},
		{"ai granted", []valex.ConsentEvent{c(ai, true, 0)}, nil, true, false, true},
		{"ai granted then withdrawn", []valex.ConsentEvent{c(ai, true, 0), c(ai, false, time.Hour)}, nil, false, false, true},
		{"withdrawn then granted again", []valex.ConsentEvent{c(ai, true, 0), c(ai, false, time.Hour), c(ai, true, 2*time.Hour)}, nil, true, false, true},
		{"latest by time, not by position", []valex.ConsentEvent{c(ai, false, time.Hour), c(ai, true, 0)}, nil, false, false, true},
		{"same time: later in the log wins", []valex.ConsentEvent{c(ai, true, 0), c(ai, false, 0)}, nil, false, false, true},
		{"marketing is separate from ai", []valex.ConsentEvent{c(mkt, true, 0)}, nil, false, true, true},
		{"withdrawing marketing keeps ai", []valex.ConsentEvent{c(ai, true, 0), c(mkt, true, 0), c(mkt, false, time.Hour)}, nil, true, false, true},
		{"ai restricted despite consent", []valex.ConsentEvent{c(ai, true, 0)}, []valex.RestrictionEvent{r(valex.RestrictAI, true, time.Hour)}, false, false, true},
		{"ai restriction lifted", []valex.ConsentEvent{c(ai, true, 0)}, []valex.RestrictionEvent{r(valex.RestrictAI, true, time.Hour), r(valex.RestrictAI, false, 2*time.Hour)}, true, false, true},
		{"analytics restricted leaves ai alone", []valex.ConsentEvent{c(ai, true, 0)}, []valex.RestrictionEvent{r(valex.RestrictAnalytics, true, 0)}, true, false, false},
		{"restriction out of order", nil, []valex.RestrictionEvent{r(valex.RestrictAnalytics, false, 2*time.Hour), r(valex.RestrictAnalytics, true, time.Hour)}, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valex.NewConsentState(tt.consents, tt.restrictions)
			if got := valex.CanUseAI(s); got != tt.wantAI {
				t.Errorf("CanUseAI = %v, want %v", got, tt.wantAI)
			}
			if got := valex.CanSendMarketing(s); got != tt.wantMarketing {
				t.Errorf("CanSendMarketing = %v, want %v", got, tt.wantMarketing)
			}
			if got := valex.CanUseForAnalytics(s); got != tt.wantAnalytics {
				t.Errorf("CanUseForAnalytics = %v, want %v", got, tt.wantAnalytics)
			}
		})
	}
}

func TestConsentStateKeepsLatestEvent(t *testing.T) {
	// The state keeps the deciding event, so the bot can say when and under
	// which policy version the user chose.
	events := []valex.ConsentEvent{
		{UserID: 1, Kind: valex.ConsentAITransfer, Granted: true, At: t0, PolicyVersion: "v1"},
		{UserID: 1, Kind: valex.ConsentAITransfer, Granted: true, At: t0.Add(day), PolicyVersion: "v2"},
	}
	s := valex.NewConsentState(events, nil)
	got := s.Consents[valex.ConsentAITransfer]
	if got.PolicyVersion != "v2" || !got.At.Equal(t0.Add(day)) {
		t.Errorf("latest = %+v, want the v2 event", got)
	}
}

func TestConsentKindsValid(t *testing.T) {
	for _, k := range valex.ConsentKinds {
		if !k.Valid() {
			t.Errorf("%q not valid", k)
		}
	}
	for _, k := range valex.RestrictionKinds {
		if !k.Valid() {
			t.Errorf("%q not valid", k)
		}
	}
	if valex.ConsentKind("restrict_ai").Valid() || valex.RestrictionKind("marketing").Valid() {
		t.Error("a restriction kind passed as a consent kind, or the reverse")
	}
}
