package handlers

import (
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// withBulk sends the harness's notices through the outbox's broadcast
// lane, as paid broadcasts or not, over the same Bot API emulator.
func (x *deskHarness) withBulk(paid bool) {
	x.t.Helper()
	c, err := bot.NewClient(context.Background(), x.out.emu.URL(), x.out.emu.Token(), nil)
	if err != nil {
		x.t.Fatal(err)
	}
	x.desk.Bulk = bot.NewOutbox(c, bot.OutboxConfig{Pace: bot.PaceConfig{Disabled: true}, PaidBroadcast: paid}, zerolog.Nop())
}

// The preview of a paid broadcast states its cost before Send: at most
// 0.1 Stars for each message. Free broadcasts say nothing about Stars, and
// only the notices themselves go out as paid broadcasts.
func TestPreviewStatesThePaidBroadcastCost(t *testing.T) {
	tests := []struct {
		name     string
		bulk     string // "": notices through Out; "free", "paid": the broadcast lane
		wantCost string // "": no cost line
	}{
		{"through the outbox's Send", "", ""},
		{"free broadcast", "free", ""},
		{"paid broadcast", "paid", "Paid broadcast: up to 0.5 ⭐ from the bot's balance (5 messages × 0.1 ⭐"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newDeskHarness(t)
			if tt.bulk != "" {
				x.withBulk(tt.bulk == "paid")
			}
			x.cmd(deskAdmin, "policy_update", "2026-02")
			preview := x.out.last(t, deskAdmin)
			wantText(t, preview, "Preview", "to 5 users", "version 2026-02")
			if tt.wantCost == "" && strings.Contains(preview.Text, "⭐") {
				t.Fatalf("a free broadcast's preview mentions Stars: %q", preview.Text)
			}
			if tt.wantCost != "" {
				wantText(t, preview, tt.wantCost)
			}
			x.mustPress(deskAdmin, "Send")
			x.desk.Wait()
			wantText(t, x.out.last(t, deskAdmin), "5 delivered")
			for _, e := range x.out.emu.Events() {
				if e.Method != "sendMessage" {
					continue
				}
				notice := strings.Contains(e.Text, "privacy policy has changed") && !strings.Contains(e.Text, "Preview")
				if e.PaidBroadcast != (notice && tt.bulk == "paid") {
					t.Errorf("%q to %d: paid broadcast %v", e.Text, e.ChatID, e.PaidBroadcast)
				}
			}
		})
	}
}

// A broadcast stopped while a message was on its way resumes without
// sending it again, and the admin's totals say who may not have got it.
func TestResumedBroadcastReportsUncertain(t *testing.T) {
	x := newDeskHarness(t)
	x.withBulk(false)
	n, err := x.db.CreateNotice(valex.Notice{Kind: valex.NoticePolicyUpdate, Text: "2026-03", CreatedAt: x.clock.Now(), CreatedBy: deskAdmin})
	if err != nil {
		t.Fatal(err)
	}
	// The stop came after deskUser was claimed and before their outcome
	// was recorded; deskUser2's was.
	if _, err := x.db.ClaimDeliveries(n.ID, []int64{deskUser, deskUser2}, x.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := x.db.RecordDeliveries([]valex.Delivery{{NoticeID: n.ID, UserID: deskUser2, Status: valex.DeliveryDelivered, At: x.clock.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := x.desk.Service.ResumeBroadcasts(context.Background()); err != nil {
		t.Fatal(err)
	}
	x.desk.Wait()
	for _, u := range []int64{deskUser, deskUser2} {
		if got := x.out.to(u); len(got) != 0 {
			t.Errorf("user %d got the notice again: %v", u, got)
		}
	}
	for _, u := range []int64{deskStaff, deskStaff2, deskAdmin} {
		if got := x.out.to(u); len(got) == 0 || !strings.Contains(got[0].Text, "2026-03") {
			t.Errorf("user %d did not get the notice: %v", u, got)
		}
	}
	wantText(t, x.out.last(t, deskAdmin), "4 delivered, 0 blocked the bot, 0 failed, 0 skipped",
		"1 user may not have got it: the bot stopped while the message was on its way")
	got, err := x.db.Notice(n.ID)
	if err != nil || got.FinishedAt.IsZero() || got.Totals[valex.DeliveryUncertain] != 1 {
		t.Fatalf("notice = %+v, %v", got, err)
	}
}
