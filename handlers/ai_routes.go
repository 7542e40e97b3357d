package handlers

import (
	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/bot"
)

// Register routes the AI aggregator's commands, buttons and messages. Call
// it after Handlers.Register: it takes over plain text (dialog answers still
// reach Handlers.Text) and /cancel (which falls back to Handlers.Cancel).
func (a *AI) Register(rt *bot.Router) {
	rt.On(bot.KindText, a.Text)
	rt.On(bot.KindPhoto, a.Photo)
	rt.On(bot.KindVoice, a.VoiceIn)
	rt.On(bot.KindDocument, a.Document)
	rt.On(bot.KindStop, a.Stopped) // the stop button of a streaming answer
	rt.Command("new", valex.RoleUser, "cmd.new", a.New)
	rt.Command("model", valex.RoleUser, "cmd.model", a.Model)
	rt.Command("mode", valex.RoleUser, "cmd.mode", a.Mode)
	rt.Command("image", valex.RoleUser, "cmd.image", a.Image)
	rt.Command("tts", valex.RoleUser, "cmd.tts", a.TTS)
	rt.Command("voice", valex.RoleUser, "cmd.voice", a.Voice)
	rt.Command("usage", valex.RoleUser, "cmd.usage", a.Usage)
	rt.Callback(cbAIConsent, valex.RoleUser, a.ConsentButton)
	rt.Callback(cbModel, valex.RoleUser, a.ModelPicked)
	rt.Callback(cbMode, valex.RoleUser, a.ModePicked)
	rt.Callback(cbImage, valex.RoleUser, a.ImageButton)
	rt.Callback(cbRetry, valex.RoleUser, a.RetryButton)
	// In groups the bot answers when mentioned, draws and speaks, and its
	// answers carry their asker's buttons; every other screen (models,
	// usage, modes) stays in the private chat.
	rt.InGroups("image", "tts", string(cbImage), string(cbRetry))
}

// Register routes /history, its older name /conversations (kept working
// for the privacy texts and those who know it, not listed in menus), and
// their buttons (conversations.go).
func (c *Conversations) Register(rt *bot.Router) {
	rt.Command("history", valex.RoleUser, "cmd.history", c.List)
	rt.Command("conversations", valex.RoleUser, "", c.List)
	rt.Callback(cbConversations, valex.RoleUser, c.Button)
}
