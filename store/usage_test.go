package store

import (
	"testing"
	"time"

	"github.com/valex-ai/valex"
)

func TestUsageTotalsPerDayMonthAndCapability(t *testing.T) {
	db := openTest(t, nil)
	mustAccount(t, db, 1, 2)
	day1 := time.Date(2025, 3, 31, 23, 59, 0, 0, time.UTC)
	day2 := time.Date(2025, 4, 1, 0, 1, 0, 0, time.UTC)
	// In UTC+3 this is already 1 April; usage periods are UTC days.
	msk := time.Date(2025, 4, 1, 2, 0, 0, 0, time.FixedZone("MSK", 3*3600))
	records := []valex.AIUsage{
		{UserID: 1, Model: "a", Capability: "chat", InputTokens: 10, OutputTokens: 5, Cost: 100, At: day1},
		{UserID: 1, Model: "b", Capability: "chat", InputTokens: 20, OutputTokens: 1, Cost: 50, At: msk},
		{UserID: 1, Model: "i", Capability: "image", Images: 1, Cost: 4_000_000, At: day2},
		{UserID: 1, Model: "w", Capability: "transcribe", AudioSeconds: 61.5, Cost: 615, At: day2},
		{UserID: 2, Model: "a", Capability: "chat", InputTokens: 999, Cost: 999, At: day2},
	}
	for _, u := range records {
		if err := db.RecordUsage(u); err != nil {
			t.Fatal(err)
		}
	}

	day, month, err := db.UsageTotals(1, day2)
	if err != nil {
		t.Fatal(err)
	}
	wantDay := []valex.UsageTotal{
		{Capability: "image", Calls: 1, Images: 1, Cost: 4_000_000},
		{Capability: "transcribe", Calls: 1, AudioSeconds: 61.5, Cost: 615},
	}
	if !equalTotals(day, wantDay) {
		t.Errorf("1 April = %+v, want %+v", day, wantDay)
	}
	if !equalTotals(month, wantDay) {
		t.Errorf("April = %+v, want %+v", month, wantDay)
	}
	day, month, _ = db.UsageTotals(1, day1)
	wantMarch := []valex.UsageTotal{{Capability: "chat", Calls: 2, InputTokens: 30, OutputTokens: 6, Cost: 150}}
	if !equalTotals(day, wantMarch) || !equalTotals(month, wantMarch) {
		t.Errorf("31 March = %+v / March = %+v, want %+v", day, month, wantMarch)
	}

	since, err := db.UsageSince(1, day2)
	if err != nil || len(since) != 2 || since[0].Capability != "image" || !since[0].At.Equal(day2) {
		t.Errorf("ledger since 1 April = %+v, %v", since, err)
	}
}

func equalTotals(a, b []valex.UsageTotal) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRecordUsageRefusesIncompleteRecords(t *testing.T) {
	db := openTest(t, nil)
	for _, u := range []valex.AIUsage{
		{Capability: "chat", At: convT0},
		{UserID: 1, At: convT0},
		{UserID: 1, Capability: "chat"},
	} {
		if err := db.RecordUsage(u); err == nil {
			t.Errorf("RecordUsage(%+v) succeeded", u)
		}
	}
	if err := db.SaveExchange(1, 1, nil, []valex.AIUsage{{UserID: 2, Capability: "chat", At: convT0}}); err == nil {
		t.Error("SaveExchange took another user's usage")
	}
}
