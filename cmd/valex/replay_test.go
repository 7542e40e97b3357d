package main

import (
	"testing"
	"time"

	"github.com/valex-ai/valex/bot/bottest"
)

// A stop between a ticket's commit and its reply (the reply waiting out a
// 429) leaves the update pending; after the restart the replayed update
// finds the ticket it opened: one ticket, and the reply arrives.
func TestTicketReplayedAfterAStopIsOpenedOnce(t *testing.T) {
	emu, err := bottest.New(bottest.Options{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dir := t.TempDir()
	// A grace period shorter than the wait: the stop cuts the reply off,
	// as a crash or a deploy would.
	short := func(c *Config) { c.Telegram.Shutdown = Duration{time.Second} }
	a := startAppOn(t, emu, dir, short, nil)
	a.say(alice, "/start")

	// Every message refused for 1.5 s, told to wait 5 s: the reply to the
	// ticket is still waiting when the bot stops.
	floodEnds := time.Now().Add(1500 * time.Millisecond)
	emu.Flood("sendMessage", 1500*time.Millisecond, 5)
	seq := a.lastSeq()
	emu.SendText(bottest.PrivateChat(alice), alice, "/support my invoice is wrong")
	deadline := time.Now().Add(5 * time.Second)
	for len(a.tickets(alice)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(a.tickets(alice)); n != 1 {
		t.Fatalf("%d tickets before the stop", n)
	}
	a.stop()
	if pending, err := openPending(t, dir); err != nil || pending != 1 {
		t.Fatalf("pending after the stop: %d (%v), want the /support update", pending, err)
	}

	time.Sleep(time.Until(floodEnds))
	b := startAppOn(t, emu, dir, short, nil)
	b.waitText(alice.ID, seq, "registered")
	b.idle()
	if ts := b.tickets(alice); len(ts) != 1 {
		t.Fatalf("%d tickets after the replay, want 1", len(ts))
	}
}

// openPending counts the updates stored but not handled in dataDir.
func openPending(t *testing.T, dataDir string) (int, error) {
	t.Helper()
	db, err := openStoreAt(Config{DataDir: dataDir})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	p, err := db.InboxPending()
	return len(p), err
}
