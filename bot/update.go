package bot

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// Kind says what an update is, as far as the router cares.
type Kind int

const (
	KindUnsupported Kind = iota // anything we do not handle (stickers, polls, edits ...)
	KindCommand                 // a message starting with /command
	KindText                    // a plain text message
	KindCallback                // an inline keyboard button press
	KindPhoto
	KindVoice // voice note or audio file
	KindDocument
	KindContact
	KindPreCheckout
	KindPayment // successful_payment service message
	KindIgnored // service updates that need no answer (my_chat_member, group joins ...)
	// KindStop is a tap on the stop button of a draft sent with CanStop
	// (stopped_message_generation, Bot API 10.3): DraftID says which.
	KindStop
)

// Chat types as Telegram names them.
const (
	ChatPrivate    = "private"
	ChatGroup      = "group"
	ChatSupergroup = "supergroup"
	ChatChannel    = "channel"
)

// From is the Telegram account behind an update.
type From struct {
	ID           int64
	Username     string
	FirstName    string
	LastName     string
	LanguageCode string
}

// File points at a file stored by Telegram; download it with Client.Download.
type File struct {
	ID       string
	Size     int64
	Name     string
	MIME     string
	Duration int // seconds, for voice and audio
}

// Update is the part of a Telegram update that handlers need, free of the
// Telegram SDK so that handlers never import it.
type Update struct {
	ID        int
	Kind      Kind
	ChatID    int64
	ChatType  string
	From      From
	MessageID int // the user's message, or the bot message whose button was pressed
	// Date is when the user sent the message (Telegram's date), zero for a
	// button press (Telegram does not say when it was pressed).
	Date       time.Time
	Text       string // message text or caption
	Command    string // without slash and @botname, lower case
	Args       string // text after the command
	ReplyTo    int    // message id this message replies to
	ReplyText  string // text of the message replied to
	ReplyToBot bool   // the replied-to message is the bot's

	// Callback queries.
	CallbackID   string
	CallbackData string

	// Media.
	Photo    *File
	Voice    *File
	Document *File
	Phone    string // shared contact
	// ContactUserID is the Telegram account the shared contact belongs to; a
	// phone only counts as the user's own when it equals From.ID.
	ContactUserID int64

	// Payments.
	PreCheckoutID  string
	Payload        string // invoice payload
	Currency       string
	TotalAmount    int
	ChargeID       string // telegram_payment_charge_id
	ProviderCharge string
	// Stars subscriptions (fields tgbotapi v5.5.1 does not know: read
	// from the raw update).
	SubscriptionUntil time.Time // subscription_expiration_date
	Recurring         bool      // is_recurring

	// ThreadID is the topic the message was sent in (message_thread_id of
	// a message with is_topic_message): a private chat where the user
	// enabled topics, or a forum supergroup. 0 outside topics and in the
	// General topic. For a button, the topic of the message it is under.
	// tgbotapi v5.5.1 predates it: read from the raw update. Replies go to
	// the same topic (Message.ThreadID).
	ThreadID int

	// Mentioned is set for group messages that address the bot (mention or reply).
	Mentioned bool

	// Stopped drafts (KindStop): the draft whose generation the user
	// stopped (its topic is ThreadID).
	DraftID int64
}

// Private reports whether the update comes from a private chat.
func (u *Update) Private() bool { return u.ChatType == ChatPrivate }

// parseUpdate turns the raw JSON of one update into an Update. botUsername is
// used to recognise /command@botname and mentions in groups.
func parseUpdate(raw []byte, botUsername string) (u *Update, err error) {
	// It runs on the poller's goroutine: a panic here would stop the bot
	// for everyone, so a malformed update becomes an error instead.
	defer func() {
		if p := recover(); p != nil {
			u, err = nil, fmt.Errorf("parse update: panic: %v", p)
		}
	}()
	var tu tgbotapi.Update
	if err := json.Unmarshal(raw, &tu); err != nil {
		return nil, fmt.Errorf("decode update: %w", err)
	}
	u = &Update{ID: tu.UpdateID}
	if stopped(u, raw) {
		return u, nil
	}
	switch {
	case tu.Message != nil:
		fillMessage(u, tu.Message, botUsername)
		if u.Kind == KindPayment {
			fillSubscription(u, raw)
		}
		fillThread(u, raw)
	case tu.CallbackQuery != nil:
		cq := tu.CallbackQuery
		u.Kind = KindCallback
		u.CallbackID = cq.ID
		u.CallbackData = cq.Data
		u.From = fromUser(cq.From)
		if cq.Message != nil && cq.Message.Chat != nil {
			u.ChatID = cq.Message.Chat.ID
			u.ChatType = cq.Message.Chat.Type
			u.MessageID = cq.Message.MessageID
			fillThread(u, raw)
		} else {
			// Button on an inline-mode message: answer in the user's private chat.
			u.ChatID = u.From.ID
			u.ChatType = ChatPrivate
		}
	case tu.PreCheckoutQuery != nil:
		pq := tu.PreCheckoutQuery
		u.Kind = KindPreCheckout
		u.From = fromUser(pq.From)
		u.ChatID = u.From.ID
		u.ChatType = ChatPrivate
		u.PreCheckoutID = pq.ID
		u.Payload = pq.InvoicePayload
		u.Currency = pq.Currency
		u.TotalAmount = pq.TotalAmount
	case tu.MyChatMember != nil || tu.ChatMember != nil || tu.ChatJoinRequest != nil:
		u.Kind = KindIgnored
		if m := tu.MyChatMember; m != nil {
			u.ChatID, u.ChatType, u.From = m.Chat.ID, m.Chat.Type, fromUser(&m.From)
		}
	default:
		u.Kind = KindUnsupported
		if m := firstMessage(&tu); m != nil {
			if m.Chat != nil {
				u.ChatID, u.ChatType = m.Chat.ID, m.Chat.Type
			}
			u.From = fromUser(m.From)
			u.MessageID = m.MessageID
		}
	}
	return u, nil
}

// firstMessage finds the message carried by update kinds we do not handle, so
// that the user can still be told we cannot handle it.
func firstMessage(tu *tgbotapi.Update) *tgbotapi.Message {
	switch {
	case tu.EditedMessage != nil:
		return tu.EditedMessage
	case tu.ChannelPost != nil:
		return tu.ChannelPost
	case tu.EditedChannelPost != nil:
		return tu.EditedChannelPost
	}
	return nil
}

func fillMessage(u *Update, m *tgbotapi.Message, botUsername string) {
	u.MessageID = m.MessageID
	if m.Date > 0 {
		u.Date = time.Unix(int64(m.Date), 0).UTC()
	}
	if m.Chat != nil {
		u.ChatID, u.ChatType = m.Chat.ID, m.Chat.Type
	}
	u.From = fromUser(m.From)
	u.Text = m.Text
	if u.Text == "" {
		u.Text = m.Caption
	}
	if r := m.ReplyToMessage; r != nil {
		u.ReplyTo = r.MessageID
		u.ReplyText = r.Text
		if u.ReplyText == "" {
			u.ReplyText = r.Caption
		}
		u.ReplyToBot = r.From != nil && r.From.IsBot && strings.EqualFold(r.From.UserName, botUsername)
	}
	u.Mentioned = u.ReplyToBot || (botUsername != "" && strings.Contains(strings.ToLower(u.Text), "@"+strings.ToLower(botUsername)))

	switch {
	case m.SuccessfulPayment != nil:
		sp := m.SuccessfulPayment
		u.Kind = KindPayment
		u.Payload, u.Currency, u.TotalAmount = sp.InvoicePayload, sp.Currency, sp.TotalAmount
		u.ChargeID, u.ProviderCharge = sp.TelegramPaymentChargeID, sp.ProviderPaymentChargeID
	case m.IsCommand() && strings.HasPrefix(m.Text, "/"):
		// Parsed from the text rather than with the SDK's CommandWithAt,
		// which slices by the entity's length and panics when it is longer
		// than the text (found by FuzzParseUpdate).
		word, args, _ := strings.Cut(m.Text[1:], " ")
		if i := strings.IndexAny(word, "\n\t"); i >= 0 {
			word, args = word[:i], word[i+1:]+" "+args
		}
		cmd, target, _ := strings.Cut(word, "@")
		if cmd == "" {
			u.Kind = KindText // a lone "/" is just text
			return
		}
		if target != "" && !strings.EqualFold(target, botUsername) {
			// /command@otherbot in a group is not for us.
			u.Kind = KindIgnored
			return
		}
		u.Kind = KindCommand
		u.Command = strings.ToLower(cmd)
		u.Args = strings.TrimSpace(args)
		u.Mentioned = true
	case len(m.Photo) > 0:
		u.Kind = KindPhoto
		best := m.Photo[len(m.Photo)-1] // Telegram lists sizes smallest first
		u.Photo = &File{ID: best.FileID, Size: int64(best.FileSize), MIME: "image/jpeg"}
	case m.Voice != nil:
		u.Kind = KindVoice
		u.Voice = &File{ID: m.Voice.FileID, Size: int64(m.Voice.FileSize), MIME: m.Voice.MimeType, Duration: m.Voice.Duration, Name: "voice.ogg"}
	case m.Audio != nil:
		u.Kind = KindVoice
		u.Voice = &File{ID: m.Audio.FileID, Size: int64(m.Audio.FileSize), MIME: m.Audio.MimeType, Duration: m.Audio.Duration, Name: m.Audio.FileName}
	case m.Document != nil:
		u.Kind = KindDocument
		u.Document = &File{ID: m.Document.FileID, Size: int64(m.Document.FileSize), MIME: m.Document.MimeType, Name: m.Document.FileName}
	case m.Contact != nil:
		u.Kind = KindContact
		u.Phone = m.Contact.PhoneNumber
		u.ContactUserID = m.Contact.UserID
	case m.Text != "":
		u.Kind = KindText
	case len(m.NewChatMembers) > 0 || m.LeftChatMember != nil || m.NewChatTitle != "" || m.GroupChatCreated || m.SuperGroupChatCreated || m.MigrateToChatID != 0 || m.MigrateFromChatID != 0 || m.PinnedMessage != nil:
		u.Kind = KindIgnored
	default:
		u.Kind = KindUnsupported // stickers, video, location, polls ...
	}
}

func fromUser(tu *tgbotapi.User) From {
	if tu == nil {
		return From{}
	}
	return From{ID: tu.ID, Username: tu.UserName, FirstName: tu.FirstName, LastName: tu.LastName, LanguageCode: tu.LanguageCode}
}

// fillThread reads the topic of a message or of the message under a pressed
// button. message_thread_id alone is not enough: outside topics a reply
// thread in a supergroup has one too, and sending into it is refused.
func fillThread(u *Update, raw []byte) {
	// Most updates have no topic: a byte scan spares them a second decode.
	if !bytes.Contains(raw, threadKey) && !bytes.Contains(raw, topicServiceKey) {
		return
	}
	type topic struct {
		ThreadID int  `json:"message_thread_id"`
		IsTopic  bool `json:"is_topic_message"`
		// Service messages about topics need no answer.
		Created  json.RawMessage `json:"forum_topic_created"`
		Edited   json.RawMessage `json:"forum_topic_edited"`
		Closed   json.RawMessage `json:"forum_topic_closed"`
		Reopened json.RawMessage `json:"forum_topic_reopened"`
	}
	var w struct {
		Message       *topic `json:"message"`
		CallbackQuery *struct {
			Message *topic `json:"message"`
		} `json:"callback_query"`
	}
	if json.Unmarshal(raw, &w) != nil {
		return
	}
	m := w.Message
	if w.CallbackQuery != nil {
		m = w.CallbackQuery.Message
	}
	if m == nil {
		return
	}
	if m.IsTopic && m.ThreadID > 0 {
		u.ThreadID = m.ThreadID
	}
	if u.Kind == KindUnsupported && (m.Created != nil || m.Edited != nil || m.Closed != nil || m.Reopened != nil) {
		u.Kind = KindIgnored
	}
}

// fillSubscription reads a successful payment's subscription fields, which
// the SDK's types predate.
func fillSubscription(u *Update, raw []byte) {
	var w struct {
		Message struct {
			SuccessfulPayment struct {
				Expiration int64 `json:"subscription_expiration_date"`
				Recurring  bool  `json:"is_recurring"`
			} `json:"successful_payment"`
		} `json:"message"`
	}
	if json.Unmarshal(raw, &w) != nil {
		return
	}
	sp := w.Message.SuccessfulPayment
	if sp.Expiration > 0 {
		u.SubscriptionUntil = time.Unix(sp.Expiration, 0).UTC()
	}
	u.Recurring = sp.Recurring
}

var stoppedKey = []byte(`"stopped_message_generation"`)

var (
	threadKey       = []byte(`"message_thread_id"`)
	topicServiceKey = []byte(`"forum_topic_`)
)

// stopped reads a stopped_message_generation update (a tap on a draft's
// stop button), which the SDK's types predate, and reports whether raw was
// one. Telegram names the chat and the draft; in a private chat, the only
// kind with drafts, the chat's id is its user's. A "from", should Telegram
// add one, is taken as is.
func stopped(u *Update, raw []byte) bool {
	var w struct {
		Stopped *struct {
			Chat struct {
				ID        int64  `json:"id"`
				Type      string `json:"type"`
				Username  string `json:"username"`
				FirstName string `json:"first_name"`
				LastName  string `json:"last_name"`
			} `json:"chat"`
			From     *tgbotapi.User `json:"from"`
			DraftID  int64          `json:"draft_id"`
			ThreadID int            `json:"message_thread_id"`
		} `json:"stopped_message_generation"`
	}
	if !bytes.Contains(raw, stoppedKey) { // the common case: no second decode
		return false
	}
	if json.Unmarshal(raw, &w) != nil || w.Stopped == nil {
		return false
	}
	s := w.Stopped
	u.Kind = KindStop
	u.ChatID, u.ChatType = s.Chat.ID, s.Chat.Type
	u.DraftID, u.ThreadID = s.DraftID, s.ThreadID
	if s.From != nil {
		u.From = fromUser(s.From)
	} else if s.Chat.Type == ChatPrivate {
		u.From = From{ID: s.Chat.ID, Username: s.Chat.Username, FirstName: s.Chat.FirstName, LastName: s.Chat.LastName}
	}
	return true
}
