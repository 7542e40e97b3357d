package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valex-ai/valex/ai/aitest"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/bottest"
)

// Every command and every button, sent from a group by a user with
// personal data, by support staff and by an admin, posts nothing personal
// there: the seeded markers (profile, chat, tickets) never appear in the
// group's messages.
func TestNothingPersonalReachesAGroup(t *testing.T) {
	aisv := aitest.New()
	t.Cleanup(aisv.Close)
	a := startApp(t, func(c *Config) { c.AI = demoAIConfig(aisv.URL()) })
	owner := bottest.User{ID: 7401, Username: "zq-grp-username", FirstName: "zq-grp-first", LanguageCode: "en"}
	mk := markers{"zq-grp"}
	seedUser(t, a, aisv, owner, mk)
	a.say(support, "/start")
	a.say(admin, "/start")
	ticket := a.tickets(owner)[0].ID

	group := bottest.Chat{ID: -7400, Type: "group", Title: "friends"}
	a.emu.SendText(group, owner, "/help@"+a.m.Outbox.Client().Self().Username)
	a.idle()
	msgs := a.emu.Messages(group.ID)
	if len(msgs) == 0 {
		t.Fatal("/help in the group got no answer")
	}
	anchor := msgs[len(msgs)-1].ID // a bot message in the group to press buttons on

	commands, callbacks := a.m.Router.Routes()
	signer := bot.NewSigner([]byte(a.m.Config.Telegram.Token))
	botName := a.m.Outbox.Client().Self().Username
	for _, u := range []bottest.User{owner, support, admin} {
		for _, c := range commands {
			for _, args := range []string{"", fmt.Sprint(ticket), fmt.Sprint(owner.ID)} {
				a.emu.SendText(group, u, strings.TrimSpace(fmt.Sprintf("/%s@%s %s", c, botName, args)))
			}
		}
		for _, p := range callbacks {
			for _, args := range [][]string{{"show", fmt.Sprint(ticket)}, {"edit", "city"}, {fmt.Sprint(ticket)}, {"1"}} {
				a.emu.PressForged(group, u, anchor, signer.Data(p, args...))
			}
		}
		a.idle()
	}
	a.idle()
	var leaks []string
	for _, m := range a.emu.Messages(group.ID) {
		for _, marker := range append(mk.all(), "+7", "@example.org") {
			if strings.Contains(m.Text, marker) {
				leaks = append(leaks, fmt.Sprintf("%q in %.80q", marker, m.Text))
			}
		}
	}
	if len(leaks) > 0 {
		t.Fatalf("personal data posted in the group:\n  %s", strings.Join(leaks, "\n  "))
	}
	// The refusals point to the private chat.
	refusals := 0
	for _, m := range a.emu.Messages(group.ID) {
		if strings.Contains(m.Text, "private chat") {
			refusals++
		}
	}
	if refusals == 0 {
		t.Fatal("no command in the group was pointed to the private chat")
	}
	t.Logf("%d commands and %d button prefixes tried from the group as 3 roles; %d messages posted there, none personal",
		len(commands), len(callbacks), len(a.emu.Messages(group.ID)))
}
