package handlers

import (
	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// Register adds the privacy desk's commands, buttons and prompts: find one
// here, then its handler in the file named beside it. The workflows behind
// them (tickets, reminders, broadcasts) are desk.Service's. Plain messages that belong to a ticket (a reply to
// a ticket message) reach the desk through the Intercept middleware before
// the AI chat sees them; answers to the desk's prompts are its dialogs.
func (d *Desk) Register(rt *bot.Router) {
	// Users: the rights of policy section 7 (privacy.go, forget.go,
	// consent.go) and free-text requests (tickets.go).
	rt.Command("privacy", valex.RoleUser, "cmd.privacy", d.Privacy)
	rt.Command("mydata", valex.RoleUser, "cmd.mydata", d.MyData)
	rt.Command("forget", valex.RoleUser, "cmd.forget", d.Forget)
	rt.Command("consent", valex.RoleUser, "cmd.consent", d.Consent)
	rt.Command("support", valex.RoleUser, "cmd.support", d.Support)
	rt.Command("feedback", valex.RoleUser, "cmd.feedback", d.Feedback)
	rt.Callback(cbPrivacy, valex.RoleUser, d.PrivacyButton)
	rt.Callback(cbForget, valex.RoleUser, d.ForgetButton)
	rt.Callback(cbConsent, valex.RoleUser, d.ConsentButton)

	// Support staff: the list (desk_list.go) and a ticket (desk_ticket.go,
	// desk_correct.go).
	rt.Command("requests", valex.RoleSupport, "cmd.requests", d.Requests)
	rt.Command("request", valex.RoleSupport, "cmd.request", d.Request)
	rt.Command("extend", valex.RoleSupport, "cmd.extend", d.Extend)
	rt.Command("reject", valex.RoleSupport, "cmd.reject", d.Reject)
	rt.Callback(cbRequests, valex.RoleSupport, d.RequestsButton)
	rt.Callback(cbTicket, valex.RoleSupport, d.TicketButton)
	// Prompts: the text of a new ticket, a message for one ticket
	// (tickets.go), and a staff member's reply, reason or correction
	// (desk_ticket.go).
	rt.Dialog(dialogNewTicket, valex.RoleUser, d.NewTicketText, bot.DialogOptions{})
	rt.Dialog(dialogTicket, valex.RoleUser, d.TicketText, bot.DialogOptions{Buttons: []bot.CallbackRoute{cbProfile}})
	for _, name := range []string{dialogReply, dialogReject, dialogExtend, dialogHold, dialogCorrect} {
		rt.Dialog(name, valex.RoleSupport, d.StaffText, bot.DialogOptions{Buttons: []bot.CallbackRoute{cbTicket}})
	}

	// Admins: legal holds (desk_holds.go), notices (broadcast.go) and
	// breach incidents (breach.go).
	rt.Command("hold", valex.RoleAdmin, "cmd.hold", d.Hold)
	rt.Command("unhold", valex.RoleAdmin, "cmd.unhold", d.Unhold)
	rt.Command("policy_update", valex.RoleAdmin, "cmd.policy_update", d.PolicyUpdate)
	rt.Command("breach", valex.RoleAdmin, "cmd.breach", d.Breach)
	rt.Command("marketing", valex.RoleAdmin, "cmd.marketing", d.Marketing)
	rt.Callback(cbNotice, valex.RoleAdmin, d.NoticeButton)     // a notice preview's Send / Cancel
	rt.Callback(cbIncident, valex.RoleAdmin, d.IncidentButton) // a breach incident's "authority told" (breach.go)
	rt.Dialog(dialogBreach, valex.RoleAdmin, d.BreachFormText, bot.DialogOptions{})
}
