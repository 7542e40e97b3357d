package bottest

import (
	"net/url"
	"slices"
	"strconv"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// User is a Telegram user acting against the bot.
type User struct {
	ID                                int64
	Username, FirstName, LanguageCode string
}

// Chat is where a user acts. Type is "private", "group" or "supergroup".
type Chat struct {
	ID    int64
	Type  string
	Title string
	// Thread is the topic the user acts in (message_thread_id), 0 for
	// none or the General topic. Messages sent with it carry
	// is_topic_message; CreateTopic returns such a Chat.
	Thread int
}

// PrivateChat is the chat between u and the bot; its id is the user's id.
func PrivateChat(u User) Chat { return Chat{ID: u.ID, Type: "private"} }

// Message is a bot message as the user sees it now.
type Message struct {
	ID        int
	Thread    int    // the topic it is in (message_thread_id), 0 for none
	Kind      string // "text", "photo", "document", "voice", "audio" or "invoice"
	Text      string // text or caption as rendered: tags stripped, entities decoded
	Raw       string // text or caption as sent
	ParseMode string
	Keyboard  [][]Button // inline keyboard
	FileName  string
	Date      time.Time
	Edits     int
	Deleted   bool
}

// storedMsg is a message of a chat, the bot's or a user's.
type storedMsg struct {
	wire      wireMessage // as Telegram returns it now; replaced fields, never mutated in place
	fromBot   bool
	kind      string
	raw       string
	parseMode string
	keyboard  [][]Button
	fileName  string
	date      time.Time
	edits     int
	deleted   bool
}

// replyCopy is the message as embedded in reply_to_message or
// callback_query.message: Telegram does not nest replies further.
func (m *storedMsg) replyCopy() *wireMessage {
	c := m.wire
	c.ReplyToMessage = nil
	return &c
}

func (m *storedMsg) hasCallback(data string) bool {
	for _, row := range m.keyboard {
		for _, b := range row {
			if b.Data == data {
				return true
			}
		}
	}
	return false
}

type chatState struct {
	wire          wireChat
	msgs          []*storedMsg    // index = message_id-1: ids are dense per chat
	replyKeyboard [][]Button      // the reply keyboard the user sees now
	topics        map[int]bool    // message_thread_id of the chat's topics
	drafts        map[int64]Draft // by draft_id: the last draft shown (drafts.go)
}

// checkThread refuses a send into a topic the chat does not have, as
// Telegram does.
func (c *chatState) checkThread(thread int) *apiError {
	if thread != 0 && !c.topics[thread] {
		return badRequest("message thread not found")
	}
	return nil
}

func (c *chatState) addTopic(thread int) {
	if c.topics == nil {
		c.topics = make(map[int]bool)
	}
	c.topics[thread] = true
}

func threadParam(p url.Values) (int, *apiError) {
	v := p.Get("message_thread_id")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest("parameter \"message_thread_id\" must be an integer")
	}
	return n, nil
}

func (c *chatState) get(id int) *storedMsg {
	if id < 1 || id > len(c.msgs) {
		return nil
	}
	return c.msgs[id-1]
}

// nextID is the id the next added message gets; add must follow in the same
// lock section.
func (c *chatState) nextID() int { return len(c.msgs) + 1 }

func (c *chatState) add(m *storedMsg) { c.msgs = append(c.msgs, m) }

func userWire(u User) wireUser {
	first := u.FirstName
	if first == "" {
		first = u.Username // Telegram users always have a first name
	}
	if first == "" {
		first = "User"
	}
	return wireUser{ID: u.ID, FirstName: first, Username: u.Username, LanguageCode: u.LanguageCode}
}

// userChatLocked returns the chat a user acts in, creating it on first use.
func (s *Server) userChatLocked(chat Chat, from User) *chatState {
	if cs, ok := s.chats[chat.ID]; ok {
		return cs
	}
	w := wireChat{ID: chat.ID, Type: chat.Type, Title: chat.Title}
	if w.Type == "" {
		w.Type = "private"
	}
	if w.Type == "private" {
		uw := userWire(from)
		w.FirstName, w.Username = uw.FirstName, uw.Username
	}
	cs := &chatState{wire: w}
	s.chats[chat.ID] = cs
	return cs
}

// botChatLocked returns the chat a bot call addresses. A positive id the
// emulator has not seen yet is taken as a private chat (the bot may write
// to users it knows from its store); unknown groups are "chat not found".
func (s *Server) botChatLocked(chatID int64) (*chatState, *apiError) {
	if s.blocked[chatID] {
		return nil, errBlocked
	}
	if s.missing[chatID] {
		return nil, badRequest("chat not found")
	}
	if cs, ok := s.chats[chatID]; ok {
		return cs, nil
	}
	if chatID <= 0 {
		return nil, badRequest("chat not found")
	}
	cs := &chatState{wire: wireChat{ID: chatID, Type: "private"}}
	s.chats[chatID] = cs
	return cs, nil
}

// existingChatLocked is botChatLocked for calls about earlier messages.
func (s *Server) existingChatLocked(chatID int64) (*chatState, *apiError) {
	if s.blocked[chatID] {
		return nil, errBlocked
	}
	if s.missing[chatID] {
		return nil, badRequest("chat not found")
	}
	cs, ok := s.chats[chatID]
	if !ok {
		return nil, badRequest("chat not found")
	}
	return cs, nil
}

func chatIDParam(p url.Values) (int64, *apiError) {
	v := p.Get("chat_id")
	if v == "" {
		return 0, badRequest("chat_id is empty")
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("chat not found") // @usernames are not emulated
	}
	return id, nil
}

// Messages returns the bot's messages in chatID as the user sees them now:
// after edits, with deleted ones flagged.
func (s *Server) Messages(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.chats[chatID]
	if !ok {
		return nil
	}
	var out []Message
	for _, m := range cs.msgs {
		if !m.fromBot {
			continue
		}
		text := m.wire.Text
		if text == "" {
			text = m.wire.Caption
		}
		if m.wire.Invoice != nil {
			text = m.wire.Invoice.Title
		}
		out = append(out, Message{
			ID: m.wire.MessageID, Thread: m.wire.MessageThreadID, Kind: m.kind, Text: text, Raw: m.raw, ParseMode: m.parseMode,
			Keyboard: m.keyboard, FileName: m.fileName, Date: m.date, Edits: m.edits, Deleted: m.deleted,
		})
	}
	return out
}

// ReplyKeyboard returns the reply keyboard the user sees in chatID now (nil
// if none or removed).
func (s *Server) ReplyKeyboard(chatID int64) [][]Button {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs, ok := s.chats[chatID]; ok {
		return cs.replyKeyboard
	}
	return nil
}

// Commands returns the commands set with setMyCommands for the default
// scope and languageCode ("" = no language).
func (s *Server) Commands(languageCode string) []tgbotapi.BotCommand {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands[commandKey{scope: "default", lang: languageCode}])
}
