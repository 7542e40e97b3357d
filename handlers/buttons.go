package handlers

import "github.com/valex-ai/valex/bot"

// Button routes, each declared once. A route makes the signed callback data
// of its buttons (route.Data(signer, args...)) and the route tables
// (routes.go, ai_routes.go, privacy_routes.go) map it to its handler, so no
// handler writes a prefix string by hand.
const (
	cbLanguage      bot.CallbackRoute = "lang" // /language: a language picked
	cbProfile       bot.CallbackRoute = "prof" // /profile: edit or clear a field, share the phone
	cbAIConsent     bot.CallbackRoute = "aic"  // the AI consent question's "I agree"
	cbModel         bot.CallbackRoute = "aim"  // /model: a model picked
	cbMode          bot.CallbackRoute = "aimd" // /mode: a mode picked
	cbImage         bot.CallbackRoute = "aii"  // /image: draw it, or not, at the quoted price
	cbRetry         bot.CallbackRoute = "ar"   // under an answer: answer again, with another model
	cbConversations bot.CallbackRoute = "cv"   // /conversations: open, delete
	cbPrivacy       bot.CallbackRoute = "pv"   // /privacy: a right
	cbForget        bot.CallbackRoute = "fg"   // /forget: yes or no
	cbConsent       bot.CallbackRoute = "cs"   // /consent: a toggle
	cbRequests      bot.CallbackRoute = "rq"   // /requests: page and filters
	cbTicket        bot.CallbackRoute = "tk"   // a ticket's staff actions
	cbNotice        bot.CallbackRoute = "nb"   // a notice preview's Send / Cancel
	cbIncident      bot.CallbackRoute = "bi"   // a breach incident's "authority told"
	cbPlans         bot.CallbackRoute = "pl"   // /plans: list, buy a pack
)
