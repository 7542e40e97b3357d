package bottest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

type method struct {
	name string
	fn   handler
}

// methodTable maps canonical and lower-case names (Telegram's method names
// are case-insensitive) to handlers. Built once, read-only afterwards.
var methodTable = buildMethodTable(map[string]handler{
	"getMe":                           getMe,
	"getUpdates":                      getUpdates,
	"sendMessage":                     sendMessage,
	"editMessageText":                 editMessageText,
	"editMessageCaption":              editMessageCaption,
	"editMessageReplyMarkup":          editMessageReplyMarkup,
	"deleteMessage":                   deleteMessage,
	"sendChatAction":                  sendChatAction,
	"sendMessageDraft":                sendMessageDraft,
	"answerCallbackQuery":             answerCallbackQuery,
	"setMyCommands":                   setMyCommands,
	"deleteMyCommands":                deleteMyCommands,
	"getMyCommands":                   getMyCommands,
	"sendInvoice":                     sendInvoice,
	"answerPreCheckoutQuery":          answerPreCheckoutQuery,
	"refundStarPayment":               refundStarPayment,
	"createInvoiceLink":               createInvoiceLink,
	"editUserStarSubscription":        editUserStarSubscription,
	"sendDocument":                    sendMedia("document"),
	"sendPhoto":                       sendMedia("photo"),
	"sendVoice":                       sendMedia("voice"),
	"sendAudio":                       sendMedia("audio"),
	"getFile":                         getFile,
	"getChat":                         getChat,
	"setWebhook":                      setWebhook,
	"deleteWebhook":                   deleteWebhook,
	"getWebhookInfo":                  getWebhookInfo,
	"logOut":                          acknowledge,
	"close":                           acknowledge,
	"setMyDescription":                acknowledge,
	"setMyShortDescription":           acknowledge,
	"setMyName":                       acknowledge,
	"setChatMenuButton":               acknowledge,
	"pinChatMessage":                  acknowledge,
	"unpinChatMessage":                acknowledge,
	"unpinAllChatMessages":            acknowledge,
	"leaveChat":                       acknowledge,
	"setMyDefaultAdministratorRights": acknowledge,
})

func buildMethodTable(hs map[string]handler) map[string]method {
	t := make(map[string]method, 2*len(hs))
	for name, fn := range hs {
		t[name] = method{name: name, fn: fn}
		t[strings.ToLower(name)] = method{name: name, fn: fn}
	}
	return t
}

func lookupMethod(name string) (method, bool) {
	if m, ok := methodTable[name]; ok {
		return m, true
	}
	if m, ok := methodTable[strings.ToLower(name)]; ok {
		return m, true
	}
	return method{name: name}, false
}

func intParam(p url.Values, key string) (int, bool, *apiError) {
	v := p.Get(key)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false, badRequest("parameter \"" + key + "\" must be an integer")
	}
	return n, true, nil
}

func getMe(s *Server, req *request, ev *Event) (any, *apiError) {
	s.emit(*ev)
	return wireMe{wireUser: s.bot, CanJoinGroups: true, HasTopicsEnabled: s.topics, AllowsUsersToCreateTopics: s.topics}, nil
}

// acknowledge serves methods the emulator only records.
func acknowledge(s *Server, req *request, ev *Event) (any, *apiError) {
	if id, err := strconv.ParseInt(req.params.Get("chat_id"), 10, 64); err == nil {
		ev.ChatID = id
	}
	s.emit(*ev)
	return true, nil
}

// parseText validates text or a caption for parse_mode and renders it as the
// user sees it, trimmed like Telegram trims.
func parseText(text, parseMode string) (formatted, *apiError) {
	if !utf8.ValidString(text) {
		return formatted{}, badRequest("strings must be encoded in UTF-8")
	}
	var f formatted
	switch strings.ToLower(parseMode) {
	case "":
		f = formatted{text: text}
	case "html":
		var err error
		if f, err = parseHTML(text); err != nil {
			return formatted{}, badRequest("can't parse entities: " + err.Error())
		}
	case "markdown", "markdownv2":
		f = formatted{text: text} // accepted, not validated or rendered
	default:
		return formatted{}, badRequest("unsupported parse_mode")
	}
	return trimText(f), nil
}

func parseMessageText(text, parseMode string) (formatted, *apiError) {
	f, aerr := parseText(text, parseMode)
	if aerr != nil {
		return f, aerr
	}
	if f.text == "" {
		return f, badRequest("message text is empty")
	}
	if utf16Count(f.text) > maxTextLen {
		return f, badRequest("message is too long")
	}
	return f, nil
}

func parseCaption(caption, parseMode string) (formatted, *apiError) {
	f, aerr := parseText(caption, parseMode)
	if aerr != nil {
		return f, aerr
	}
	if utf16Count(f.text) > maxCaptionLen {
		return f, badRequest("message caption is too long")
	}
	return f, nil
}

// markup is a parsed reply_markup.
type markup struct {
	kind    string // "", "inline", "reply", "remove" or "force_reply"
	buttons [][]Button
	inline  json.RawMessage // canonical inline keyboard JSON; nil if none
}

type inlineButtonIn struct {
	Text                         string          `json:"text"`
	URL                          *string         `json:"url,omitempty"`
	CallbackData                 *string         `json:"callback_data,omitempty"`
	WebApp                       *webAppIn       `json:"web_app,omitempty"`
	LoginURL                     json.RawMessage `json:"login_url,omitempty"`
	SwitchInlineQuery            *string         `json:"switch_inline_query,omitempty"`
	SwitchInlineQueryCurrentChat *string         `json:"switch_inline_query_current_chat,omitempty"`
	SwitchInlineQueryChosenChat  json.RawMessage `json:"switch_inline_query_chosen_chat,omitempty"`
	CopyText                     json.RawMessage `json:"copy_text,omitempty"`
	CallbackGame                 json.RawMessage `json:"callback_game,omitempty"`
	Pay                          bool            `json:"pay,omitempty"`
}

type webAppIn struct {
	URL string `json:"url"`
}

type replyButtonIn struct {
	Text            string `json:"text"`
	RequestContact  bool   `json:"request_contact,omitempty"`
	RequestLocation bool   `json:"request_location,omitempty"`
}

type markupIn struct {
	InlineKeyboard [][]inlineButtonIn `json:"inline_keyboard"`
	Keyboard       [][]replyButtonIn  `json:"keyboard"`
	RemoveKeyboard bool               `json:"remove_keyboard"`
	ForceReply     bool               `json:"force_reply"`
}

// parseMarkup validates reply_markup like Telegram: every inline button
// needs an action, callback_data is 1-64 bytes, URLs must be valid.
func parseMarkup(raw string) (markup, *apiError) {
	if raw == "" || raw == "null" {
		return markup{}, nil
	}
	var in markupIn
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return markup{}, badRequest("can't parse reply keyboard markup JSON object")
	}
	var mk markup
	switch {
	case in.InlineKeyboard != nil:
		mk.kind = "inline"
		n := 0
		for _, row := range in.InlineKeyboard {
			out := make([]Button, 0, len(row))
			for _, b := range row {
				if aerr := checkInlineButton(b); aerr != nil {
					return markup{}, aerr
				}
				btn := Button{Text: b.Text}
				if b.CallbackData != nil {
					btn.Data = *b.CallbackData
				}
				if b.URL != nil {
					btn.URL = *b.URL
				} else if b.WebApp != nil {
					btn.URL = b.WebApp.URL
				}
				out = append(out, btn)
				n++
			}
			mk.buttons = append(mk.buttons, out)
		}
		if n > 0 { // an empty inline keyboard is no keyboard
			mk.inline, _ = json.Marshal(struct {
				InlineKeyboard [][]inlineButtonIn `json:"inline_keyboard"`
			}{in.InlineKeyboard})
		} else {
			mk.buttons = nil
		}
	case in.Keyboard != nil:
		mk.kind = "reply"
		for _, row := range in.Keyboard {
			out := make([]Button, 0, len(row))
			for _, b := range row {
				out = append(out, Button{Text: b.Text, RequestContact: b.RequestContact})
			}
			mk.buttons = append(mk.buttons, out)
		}
	case in.RemoveKeyboard:
		mk.kind = "remove"
	case in.ForceReply:
		mk.kind = "force_reply"
	default:
		return markup{}, badRequest("can't parse reply keyboard markup JSON object")
	}
	return mk, nil
}

func checkInlineButton(b inlineButtonIn) *apiError {
	actions := 0
	for _, set := range []bool{
		b.URL != nil, b.CallbackData != nil, b.WebApp != nil, b.LoginURL != nil,
		b.SwitchInlineQuery != nil, b.SwitchInlineQueryCurrentChat != nil,
		b.SwitchInlineQueryChosenChat != nil, b.CopyText != nil, b.CallbackGame != nil, b.Pay,
	} {
		if set {
			actions++
		}
	}
	if actions == 0 {
		return badRequest("text buttons are unallowed in the inline keyboard")
	}
	if b.CallbackData != nil && (len(*b.CallbackData) == 0 || len(*b.CallbackData) > 64) {
		return badRequest("BUTTON_DATA_INVALID")
	}
	if b.URL != nil {
		u, err := url.Parse(*b.URL)
		ok := err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" ||
			err == nil && u.Scheme == "tg"
		if !ok {
			return badRequest("inline keyboard button URL '" + *b.URL + "' is invalid: Wrong HTTP URL")
		}
	}
	return nil
}

// outgoing holds what every send method shares.
type outgoing struct {
	chatID       int64
	thread       int // message_thread_id, 0 for none
	replyTo      int
	allowNoReply bool
	markup       markup
}

func parseOutgoing(p url.Values, ev *Event) (outgoing, *apiError) {
	var o outgoing
	var aerr *apiError
	if o.chatID, aerr = chatIDParam(p); aerr != nil {
		return o, aerr
	}
	ev.ChatID = o.chatID
	if o.thread, aerr = threadParam(p); aerr != nil {
		return o, aerr
	}
	ev.ThreadID = o.thread
	if o.replyTo, _, aerr = intParam(p, "reply_to_message_id"); aerr != nil {
		return o, aerr
	}
	o.allowNoReply = p.Get("allow_sending_without_reply") == "true"
	if rp := p.Get("reply_parameters"); rp != "" { // newer Bot API form
		var v struct {
			MessageID                int  `json:"message_id"`
			AllowSendingWithoutReply bool `json:"allow_sending_without_reply"`
		}
		if err := json.Unmarshal([]byte(rp), &v); err != nil {
			return o, badRequest("can't parse reply parameters JSON object")
		}
		o.replyTo, o.allowNoReply = v.MessageID, v.AllowSendingWithoutReply
	}
	ev.ReplyTo = o.replyTo
	switch p.Get("allow_paid_broadcast") {
	case "", "false":
	case "true":
		ev.PaidBroadcast = true
	default:
		return o, badRequest("can't parse allow_paid_broadcast: a Boolean is expected")
	}
	if o.markup, aerr = parseMarkup(p.Get("reply_markup")); aerr != nil {
		return o, aerr
	}
	ev.Keyboard = o.markup.buttons
	ev.RemoveKeyboard = o.markup.kind == "remove"
	return o, nil
}

// startBotMessageLocked checks the target chat and the replied message and
// returns the new message's frame; storeBotMessageLocked must follow in
// the same lock section.
func (s *Server) startBotMessageLocked(o outgoing) (*chatState, wireMessage, *apiError) {
	cs, aerr := s.botChatLocked(o.chatID)
	if aerr != nil {
		return nil, wireMessage{}, aerr
	}
	if aerr := cs.checkThread(o.thread); aerr != nil {
		return nil, wireMessage{}, aerr
	}
	m := wireMessage{MessageID: cs.nextID(), From: &s.bot, Date: s.clock().Unix(), Chat: cs.wire, ReplyMarkup: o.markup.inline,
		MessageThreadID: o.thread, IsTopicMessage: o.thread != 0}
	if o.replyTo != 0 {
		r := cs.get(o.replyTo)
		switch {
		case r != nil && !r.deleted:
			m.ReplyToMessage = r.replyCopy()
		case !o.allowNoReply:
			return nil, wireMessage{}, badRequest("message to be replied not found")
		}
	}
	return cs, m, nil
}

func (s *Server) storeBotMessageLocked(cs *chatState, m wireMessage, sm *storedMsg, mk markup) {
	sm.wire, sm.fromBot, sm.date = m, true, time.Unix(m.Date, 0)
	if mk.kind == "inline" {
		sm.keyboard = mk.buttons
	}
	cs.add(sm)
	switch mk.kind {
	case "reply":
		cs.replyKeyboard = mk.buttons
	case "remove":
		cs.replyKeyboard = nil
	}
}

func sendMessage(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	o, aerr := parseOutgoing(p, ev)
	if aerr != nil {
		return nil, aerr
	}
	raw, mode := p.Get("text"), p.Get("parse_mode")
	ev.Raw, ev.Text, ev.ParseMode = raw, raw, mode
	f, aerr := parseMessageText(raw, mode)
	if aerr != nil {
		return nil, aerr
	}
	ev.Text = f.text
	if mode == "" && p.Get("entities") != "" {
		if err := json.Unmarshal([]byte(p.Get("entities")), &f.entities); err != nil {
			return nil, badRequest("can't parse entities JSON object")
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	cs, m, aerr := s.startBotMessageLocked(o)
	if aerr != nil {
		return nil, aerr
	}
	m.Text, m.Entities = f.text, f.entities
	s.storeBotMessageLocked(cs, m, &storedMsg{kind: "text", raw: raw, parseMode: mode}, o.markup)
	ev.MessageID = m.MessageID
	s.emitLocked(*ev)
	return m, nil
}

// editTarget reads chat_id + message_id. Inline messages (inline_message_id)
// are not emulated and are reported as not found.
func editTarget(p url.Values, ev *Event, missing string) (int64, int, *apiError) {
	if p.Get("inline_message_id") != "" {
		return 0, 0, badRequest(missing)
	}
	chatID, aerr := chatIDParam(p)
	if aerr != nil {
		return 0, 0, aerr
	}
	msgID, ok, aerr := intParam(p, "message_id")
	if aerr != nil {
		return 0, 0, aerr
	}
	if !ok {
		return 0, 0, badRequest("message identifier is not specified")
	}
	ev.ChatID, ev.MessageID = chatID, msgID
	return chatID, msgID, nil
}

var errNotModified = badRequest("message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message")

// editableLocked finds a live bot message for an edit.
func (s *Server) editableLocked(chatID int64, msgID int) (*storedMsg, *apiError) {
	cs, aerr := s.existingChatLocked(chatID)
	if aerr != nil {
		return nil, aerr
	}
	sm := cs.get(msgID)
	if sm == nil || sm.deleted {
		return nil, badRequest("message to edit not found")
	}
	if !sm.fromBot {
		return nil, badRequest("message can't be edited")
	}
	return sm, nil
}

// editMarkup parses an edit's reply_markup: only inline keyboards are
// allowed, and leaving it out removes the keyboard.
func editMarkup(p url.Values, ev *Event) (markup, *apiError) {
	mk, aerr := parseMarkup(p.Get("reply_markup"))
	if aerr != nil {
		return mk, aerr
	}
	if mk.kind != "" && mk.kind != "inline" {
		return mk, badRequest("inline keyboard expected")
	}
	ev.Keyboard = mk.buttons
	return mk, nil
}

func editMessageText(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	chatID, msgID, aerr := editTarget(p, ev, "message to edit not found")
	if aerr != nil {
		return nil, aerr
	}
	raw, mode := p.Get("text"), p.Get("parse_mode")
	ev.Raw, ev.Text, ev.ParseMode = raw, raw, mode
	f, aerr := parseMessageText(raw, mode)
	if aerr != nil {
		return nil, aerr
	}
	ev.Text = f.text
	mk, aerr := editMarkup(p, ev)
	if aerr != nil {
		return nil, aerr
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sm, aerr := s.editableLocked(chatID, msgID)
	if aerr != nil {
		return nil, aerr
	}
	if sm.wire.Text == "" {
		return nil, badRequest("there is no text in the message to edit")
	}
	if sm.wire.Text == f.text && entitiesEqual(sm.wire.Entities, f.entities) && bytes.Equal(sm.wire.ReplyMarkup, mk.inline) {
		return nil, errNotModified
	}
	sm.wire.Text, sm.wire.Entities = f.text, f.entities
	s.applyEditLocked(sm, mk)
	sm.raw, sm.parseMode = raw, mode
	s.emitLocked(*ev)
	return sm.wire, nil
}

func editMessageCaption(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	chatID, msgID, aerr := editTarget(p, ev, "message to edit not found")
	if aerr != nil {
		return nil, aerr
	}
	raw, mode := p.Get("caption"), p.Get("parse_mode")
	ev.Raw, ev.Text, ev.ParseMode = raw, raw, mode
	f, aerr := parseCaption(raw, mode)
	if aerr != nil {
		return nil, aerr
	}
	ev.Text = f.text
	mk, aerr := editMarkup(p, ev)
	if aerr != nil {
		return nil, aerr
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sm, aerr := s.editableLocked(chatID, msgID)
	if aerr != nil {
		return nil, aerr
	}
	if sm.kind == "text" {
		return nil, badRequest("there is no caption in the message to edit")
	}
	if sm.wire.Caption == f.text && entitiesEqual(sm.wire.CaptionEntities, f.entities) && bytes.Equal(sm.wire.ReplyMarkup, mk.inline) {
		return nil, errNotModified
	}
	sm.wire.Caption, sm.wire.CaptionEntities = f.text, f.entities
	s.applyEditLocked(sm, mk)
	sm.raw, sm.parseMode = raw, mode
	s.emitLocked(*ev)
	return sm.wire, nil
}

func editMessageReplyMarkup(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	chatID, msgID, aerr := editTarget(p, ev, "message to edit not found")
	if aerr != nil {
		return nil, aerr
	}
	mk, aerr := editMarkup(p, ev)
	if aerr != nil {
		return nil, aerr
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sm, aerr := s.editableLocked(chatID, msgID)
	if aerr != nil {
		return nil, aerr
	}
	if bytes.Equal(sm.wire.ReplyMarkup, mk.inline) {
		return nil, errNotModified
	}
	s.applyEditLocked(sm, mk)
	s.emitLocked(*ev)
	return sm.wire, nil
}

func (s *Server) applyEditLocked(sm *storedMsg, mk markup) {
	sm.wire.ReplyMarkup = mk.inline
	sm.keyboard = mk.buttons
	sm.wire.EditDate = s.clock().Unix()
	sm.edits++
}

func entitiesEqual(a, b []entity) bool {
	return slices.EqualFunc(a, b, func(x, y entity) bool {
		ux, uy := int64(0), int64(0)
		if x.User != nil {
			ux = x.User.ID
		}
		if y.User != nil {
			uy = y.User.ID
		}
		x.User, y.User = nil, nil
		return x == y && ux == uy
	})
}

func deleteMessage(s *Server, req *request, ev *Event) (any, *apiError) {
	chatID, msgID, aerr := editTarget(req.params, ev, "message to delete not found")
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, aerr := s.existingChatLocked(chatID)
	if aerr != nil {
		return nil, aerr
	}
	sm := cs.get(msgID)
	if sm == nil || sm.deleted {
		return nil, badRequest("message to delete not found")
	}
	sm.deleted = true
	s.emitLocked(*ev)
	return true, nil
}

func sendChatAction(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	chatID, aerr := chatIDParam(p)
	if aerr != nil {
		return nil, aerr
	}
	ev.ChatID, ev.Action = chatID, p.Get("action")
	if ev.ThreadID, aerr = threadParam(p); aerr != nil {
		return nil, aerr
	}
	switch ev.Action {
	case "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
		"upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note":
	default:
		return nil, badRequest("wrong parameter action in request")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, aerr := s.botChatLocked(chatID)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := cs.checkThread(ev.ThreadID); aerr != nil {
		return nil, aerr
	}
	s.emitLocked(*ev)
	return true, nil
}

var errQueryTooOld = badRequest("query is too old and response timeout expired or query ID is invalid")

func answerCallbackQuery(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	id := p.Get("callback_query_id")
	ev.CallbackID, ev.CallbackText, ev.ShowAlert = id, p.Get("text"), p.Get("show_alert") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	answered, ok := s.callbacks[id]
	if !ok || answered { // a query can be answered once
		return nil, errQueryTooOld
	}
	s.callbacks[id] = true
	s.emitLocked(*ev)
	return true, nil
}

// commandScope turns a BotCommandScope JSON into a map key.
func commandScope(raw string) (string, *apiError) {
	if raw == "" || raw == "null" {
		return "default", nil
	}
	var sc tgbotapi.BotCommandScope
	if err := json.Unmarshal([]byte(raw), &sc); err != nil {
		return "", badRequest("can't parse BotCommandScope JSON object")
	}
	switch sc.Type {
	case "", "default":
		return "default", nil
	case "chat", "chat_administrators":
		return sc.Type + ":" + strconv.FormatInt(sc.ChatID, 10), nil
	case "chat_member":
		return sc.Type + ":" + strconv.FormatInt(sc.ChatID, 10) + ":" + strconv.FormatInt(sc.UserID, 10), nil
	}
	return sc.Type, nil
}

func setMyCommands(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	var cmds []tgbotapi.BotCommand
	if err := json.Unmarshal([]byte(p.Get("commands")), &cmds); err != nil {
		return nil, badRequest("can't parse commands JSON array")
	}
	if len(cmds) > 100 {
		return nil, badRequest("too many commands")
	}
	for _, c := range cmds {
		if !validCommand(c.Command) {
			return nil, badRequest("BOT_COMMAND_INVALID")
		}
		if n := utf8.RuneCountInString(c.Description); n == 0 || n > 256 {
			return nil, badRequest("BOT_COMMAND_DESCRIPTION_INVALID")
		}
	}
	scope, aerr := commandScope(p.Get("scope"))
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := commandKey{scope: scope, lang: p.Get("language_code")}
	if len(cmds) == 0 {
		delete(s.commands, key)
	} else {
		s.commands[key] = cmds
	}
	s.emitLocked(*ev)
	return true, nil
}

func validCommand(c string) bool {
	if len(c) == 0 || len(c) > 32 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '_') {
			return false
		}
	}
	return true
}

func deleteMyCommands(s *Server, req *request, ev *Event) (any, *apiError) {
	scope, aerr := commandScope(req.params.Get("scope"))
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.commands, commandKey{scope: scope, lang: req.params.Get("language_code")})
	s.emitLocked(*ev)
	return true, nil
}

func getMyCommands(s *Server, req *request, ev *Event) (any, *apiError) {
	scope, aerr := commandScope(req.params.Get("scope"))
	if aerr != nil {
		return nil, aerr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cmds := s.commands[commandKey{scope: scope, lang: req.params.Get("language_code")}]
	s.emitLocked(*ev)
	if cmds == nil {
		return []tgbotapi.BotCommand{}, nil
	}
	return slices.Clone(cmds), nil
}

func sendInvoice(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	o, aerr := parseOutgoing(p, ev)
	if aerr != nil {
		return nil, aerr
	}
	title, currency := p.Get("title"), p.Get("currency")
	ev.Text = title
	var prices []tgbotapi.LabeledPrice
	if err := json.Unmarshal([]byte(p.Get("prices")), &prices); err != nil || len(prices) == 0 {
		return nil, badRequest("can't parse prices JSON object")
	}
	total := 0
	for _, pr := range prices {
		total += pr.Amount
	}
	switch {
	case title == "" || p.Get("description") == "" || p.Get("payload") == "":
		return nil, badRequest("title, description and payload must be non-empty")
	case len(currency) != 3:
		return nil, badRequest("CURRENCY_INVALID")
	case total <= 0:
		return nil, badRequest("CURRENCY_TOTAL_AMOUNT_INVALID")
	case p.Get("provider_token") == "" && currency != "XTR": // Telegram Stars need no provider
		return nil, badRequest("PAYMENT_PROVIDER_INVALID")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	cs, m, aerr := s.startBotMessageLocked(o)
	if aerr != nil {
		return nil, aerr
	}
	m.Invoice = &tgbotapi.Invoice{
		Title: title, Description: p.Get("description"), StartParameter: p.Get("start_parameter"),
		Currency: currency, TotalAmount: total,
	}
	s.storeBotMessageLocked(cs, m, &storedMsg{kind: "invoice", raw: title}, o.markup)
	ev.MessageID = m.MessageID
	s.emitLocked(*ev)
	return m, nil
}

func answerPreCheckoutQuery(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	id := p.Get("pre_checkout_query_id")
	ev.CallbackID, ev.Text = id, p.Get("error_message")
	s.mu.Lock()
	defer s.mu.Unlock()
	answered, ok := s.preCheckouts[id]
	if !ok || answered {
		return nil, errQueryTooOld
	}
	s.preCheckouts[id] = true
	s.emitLocked(*ev)
	return true, nil
}

// upload is the file of a send method: uploaded bytes, a known file_id or
// an HTTP URL.
type upload struct {
	name, mime string
	data       []byte
	fileID     string
	url        string
}

func readUpload(req *request, field string) (upload, *apiError) {
	fhs := req.files[field]
	v := req.params.Get(field)
	if ref, ok := strings.CutPrefix(v, "attach://"); ok {
		fhs = req.files[ref]
	}
	if len(fhs) > 0 {
		fh := fhs[0]
		f, err := fh.Open()
		if err != nil {
			return upload{}, badRequest("can't read uploaded file")
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			return upload{}, badRequest("can't read uploaded file")
		}
		return upload{name: fh.Filename, mime: uploadMIME(fh.Header.Get("Content-Type"), fh.Filename, field), data: data}, nil
	}
	switch {
	case v == "":
		return upload{}, badRequest("there is no " + field + " in the request")
	case strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://"):
		// Telegram would fetch it; the emulator keeps only the name.
		return upload{url: v, name: path.Base(v), mime: uploadMIME("", v, field)}, nil
	}
	return upload{fileID: v}, nil
}

// uploadMIME is the MIME type Telegram would report: multipart parts from
// tgbotapi always say application/octet-stream, so the name decides.
func uploadMIME(declared, name, field string) string {
	if declared != "" && declared != "application/octet-stream" {
		return declared
	}
	switch field {
	case "voice":
		return "audio/ogg"
	case "photo":
		return "image/jpeg"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		if base, _, ok := strings.Cut(t, ";"); ok {
			return base
		}
		return t
	}
	return "application/octet-stream"
}

var mediaDirs = map[string]string{"document": "documents", "photo": "photos", "voice": "voice", "audio": "music"}

// sendMedia serves sendDocument/sendPhoto/sendVoice/sendAudio; field is the
// parameter carrying the file.
func sendMedia(field string) handler {
	return func(s *Server, req *request, ev *Event) (any, *apiError) {
		p := req.params
		o, aerr := parseOutgoing(p, ev)
		if aerr != nil {
			return nil, aerr
		}
		raw, mode := p.Get("caption"), p.Get("parse_mode")
		ev.Raw, ev.Text, ev.ParseMode = raw, raw, mode
		f, aerr := parseCaption(raw, mode)
		if aerr != nil {
			return nil, aerr
		}
		ev.Text = f.text
		up, aerr := readUpload(req, field)
		if aerr != nil {
			return nil, aerr
		}
		ev.FileName, ev.FileData, ev.FileMIME = up.name, up.data, up.mime
		w, h := 0, 0
		if field == "photo" && up.data != nil {
			w, h = imageSize(up.data)
		}
		duration, _, _ := intParam(p, "duration")

		s.mu.Lock()
		defer s.mu.Unlock()
		var file *storedFile
		if up.fileID != "" {
			var ok bool
			if file, ok = s.files[up.fileID]; !ok {
				return nil, badRequest("wrong file identifier/HTTP URL specified")
			}
			ev.FileName, ev.FileMIME = file.name, file.mime
		}
		cs, m, aerr := s.startBotMessageLocked(o)
		if aerr != nil {
			return nil, aerr
		}
		if file == nil && field != "photo" {
			file = s.newFileLocked(mediaDirs[field], path.Ext(up.name), up.data, int64(len(up.data)))
			file.name, file.mime = up.name, up.mime
		}
		switch field {
		case "document":
			m.Document = &tgbotapi.Document{FileID: file.id, FileUniqueID: file.uniqueID, FileName: file.name, MimeType: file.mime, FileSize: int(file.size)}
		case "voice":
			m.Voice = &tgbotapi.Voice{FileID: file.id, FileUniqueID: file.uniqueID, Duration: duration, MimeType: file.mime, FileSize: int(file.size)}
		case "audio":
			m.Audio = &tgbotapi.Audio{FileID: file.id, FileUniqueID: file.uniqueID, Duration: duration,
				Performer: p.Get("performer"), Title: p.Get("title"), FileName: file.name, MimeType: file.mime, FileSize: int(file.size)}
		case "photo":
			if file != nil { // resent by file_id: one size, as stored
				m.Photo = []tgbotapi.PhotoSize{{FileID: file.id, FileUniqueID: file.uniqueID, Width: file.width, Height: file.height, FileSize: int(file.size)}}
			} else {
				if up.data == nil {
					w, h = 800, 600
				}
				m.Photo = s.photoSizesLocked(up.data, w, h)
			}
		}
		m.Caption, m.CaptionEntities = f.text, f.entities
		s.storeBotMessageLocked(cs, m, &storedMsg{kind: field, raw: raw, parseMode: mode, fileName: ev.FileName}, o.markup)
		ev.MessageID = m.MessageID
		s.emitLocked(*ev)
		return m, nil
	}
}

func getChat(s *Server, req *request, ev *Event) (any, *apiError) {
	chatID, aerr := chatIDParam(req.params)
	if aerr != nil {
		return nil, aerr
	}
	ev.ChatID = chatID
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, aerr := s.existingChatLocked(chatID)
	if aerr != nil {
		return nil, aerr
	}
	s.emitLocked(*ev)
	return cs.wire, nil
}

// setWebhook stores the URL only: with a webhook set, getUpdates answers 409
// as on Telegram. Updates are never pushed to it.
func setWebhook(s *Server, req *request, ev *Event) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook = req.params.Get("url")
	s.emitLocked(*ev)
	return true, nil
}

func deleteWebhook(s *Server, req *request, ev *Event) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhook = ""
	if req.params.Get("drop_pending_updates") == "true" {
		s.confirmLocked(s.lastUpdateID + 1)
	}
	s.emitLocked(*ev)
	return true, nil
}

func getWebhookInfo(s *Server, req *request, ev *Event) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitLocked(*ev)
	return wireWebhookInfo{URL: s.webhook, PendingUpdateCount: len(s.queue)}, nil
}

// refundStarPayment refunds a Stars payment the emulator knows (made with
// SendSuccessfulPayment or AddStarCharge) to the user who paid it, once,
// with Telegram's errors otherwise.
func refundStarPayment(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	charge := p.Get("telegram_payment_charge_id")
	user, err := strconv.ParseInt(p.Get("user_id"), 10, 64)
	if err != nil || charge == "" {
		return nil, badRequest("user_id and telegram_payment_charge_id are required")
	}
	ev.ChatID, ev.Text = user, charge
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.starCharges[charge]
	switch {
	case !ok || c.user != user:
		return nil, badRequest("CHARGE_NOT_FOUND")
	case c.refunded:
		return nil, badRequest("CHARGE_ALREADY_REFUNDED")
	}
	c.refunded = true
	s.starCharges[charge] = c
	s.emitLocked(*ev)
	return true, nil
}

// createInvoiceLink returns a t.me invoice link; a subscription must be in
// XTR with Telegram's one allowed period (2592000 seconds).
func createInvoiceLink(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	var prices []tgbotapi.LabeledPrice
	if err := json.Unmarshal([]byte(p.Get("prices")), &prices); err != nil || len(prices) == 0 {
		return nil, badRequest("can't parse prices JSON object")
	}
	switch {
	case p.Get("title") == "" || p.Get("description") == "" || p.Get("payload") == "":
		return nil, badRequest("title, description and payload must be non-empty")
	case p.Get("subscription_period") != "" && p.Get("subscription_period") != "2592000":
		return nil, badRequest("SUBSCRIPTION_PERIOD_INVALID")
	case p.Get("subscription_period") != "" && p.Get("currency") != "XTR":
		return nil, badRequest("SUBSCRIPTION_CURRENCY_INVALID")
	case p.Get("provider_token") == "" && p.Get("currency") != "XTR":
		return nil, badRequest("PAYMENT_PROVIDER_INVALID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invoiceLinks++
	link := "https://t.me/$emulator-invoice-" + strconv.Itoa(s.invoiceLinks)
	ev.Text = link
	s.emitLocked(*ev)
	return link, nil
}

// editUserStarSubscription cancels (or re-enables) a user's Stars
// subscription, known by the charge id of one of its payments.
func editUserStarSubscription(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	charge := p.Get("telegram_payment_charge_id")
	user, err := strconv.ParseInt(p.Get("user_id"), 10, 64)
	if err != nil || charge == "" || p.Get("is_canceled") == "" {
		return nil, badRequest("user_id, telegram_payment_charge_id and is_canceled are required")
	}
	ev.ChatID, ev.Text = user, charge
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.starCharges[charge]
	if !ok || c.user != user {
		return nil, badRequest("CHARGE_NOT_FOUND")
	}
	c.canceled = p.Get("is_canceled") == "true"
	s.starCharges[charge] = c
	s.emitLocked(*ev)
	return true, nil
}
