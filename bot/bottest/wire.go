package bottest

import (
	"encoding/json"
	"net/http"
	"strconv"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// Wire types for what the emulator answers. Own structs (not tgbotapi's) for
// users, chats and messages because tgbotapi's lack omitempty on some fields
// and would put "null"s on the wire that Telegram never sends. Media and
// payment objects reuse tgbotapi's types: their tags match the Bot API.

type wireUser struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	Username     string `json:"username,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

// wireMe is getMe's answer: the bot user with its capability flags.
type wireMe struct {
	wireUser
	CanJoinGroups           bool `json:"can_join_groups"`
	CanReadAllGroupMessages bool `json:"can_read_all_group_messages"`
	SupportsInlineQueries   bool `json:"supports_inline_queries"`
	// Topics in private chats (Options.Topics).
	HasTopicsEnabled          bool `json:"has_topics_enabled,omitempty"`
	AllowsUsersToCreateTopics bool `json:"allows_users_to_create_topics,omitempty"`
}

type wireChat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
}

type wireMessage struct {
	MessageID         int                         `json:"message_id"`
	MessageThreadID   int                         `json:"message_thread_id,omitempty"`
	From              *wireUser                   `json:"from,omitempty"`
	Date              int64                       `json:"date"`
	Chat              wireChat                    `json:"chat"`
	EditDate          int64                       `json:"edit_date,omitempty"`
	ReplyToMessage    *wireMessage                `json:"reply_to_message,omitempty"`
	Text              string                      `json:"text,omitempty"`
	Entities          []entity                    `json:"entities,omitempty"`
	Photo             []tgbotapi.PhotoSize        `json:"photo,omitempty"`
	Document          *tgbotapi.Document          `json:"document,omitempty"`
	Audio             *tgbotapi.Audio             `json:"audio,omitempty"`
	Voice             *tgbotapi.Voice             `json:"voice,omitempty"`
	Caption           string                      `json:"caption,omitempty"`
	CaptionEntities   []entity                    `json:"caption_entities,omitempty"`
	Contact           *tgbotapi.Contact           `json:"contact,omitempty"`
	Invoice           *tgbotapi.Invoice           `json:"invoice,omitempty"`
	SuccessfulPayment *tgbotapi.SuccessfulPayment `json:"successful_payment,omitempty"`
	ReplyMarkup       json.RawMessage             `json:"reply_markup,omitempty"` // inline keyboards only
	IsTopicMessage    bool                        `json:"is_topic_message,omitempty"`
	ForumTopicCreated *wireForumTopicCreated      `json:"forum_topic_created,omitempty"`
}

// wireForumTopicCreated is the service message that opens a topic; its
// message_id is the topic's message_thread_id.
type wireForumTopicCreated struct {
	Name      string `json:"name"`
	IconColor int    `json:"icon_color"`
}

type wireCallbackQuery struct {
	ID           string       `json:"id"`
	From         wireUser     `json:"from"`
	Message      *wireMessage `json:"message,omitempty"`
	ChatInstance string       `json:"chat_instance"`
	Data         string       `json:"data,omitempty"`
}

type wirePreCheckoutQuery struct {
	ID             string   `json:"id"`
	From           wireUser `json:"from"`
	Currency       string   `json:"currency"`
	TotalAmount    int      `json:"total_amount"`
	InvoicePayload string   `json:"invoice_payload"`
}

type wireFile struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	FileSize     int64  `json:"file_size,omitempty"`
	FilePath     string `json:"file_path,omitempty"`
}

type wireWebhookInfo struct {
	URL                  string `json:"url"`
	HasCustomCertificate bool   `json:"has_custom_certificate"`
	PendingUpdateCount   int    `json:"pending_update_count"`
}

type wireError struct {
	OK          bool            `json:"ok"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *wireParameters `json:"parameters,omitempty"`
}

type wireParameters struct {
	RetryAfter int `json:"retry_after,omitempty"`
}

// apiError is a Bot API failure answer.
type apiError struct {
	code       int
	desc       string
	retryAfter int
}

func badRequest(desc string) *apiError { return &apiError{code: 400, desc: "Bad Request: " + desc} }

func errTooManyRequests(retryAfter int) *apiError {
	return &apiError{code: 429, desc: "Too Many Requests: retry after " + strconv.Itoa(retryAfter), retryAfter: retryAfter}
}

var (
	errUnauthorized = &apiError{code: 401, desc: "Unauthorized"}
	errNotFound     = &apiError{code: 404, desc: "Not Found"}
	errConflictPoll = &apiError{code: 409, desc: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
	errConflictHook = &apiError{code: 409, desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
	errBlocked      = &apiError{code: 403, desc: "Forbidden: bot was blocked by the user"}
)

// injectedError is the answer FailNext configures for a status code.
func injectedError(code, retryAfter int) *apiError {
	switch code {
	case 429:
		return errTooManyRequests(retryAfter)
	case 400:
		return badRequest("injected failure")
	case 401:
		return errUnauthorized
	case 403:
		return errBlocked
	case 404:
		return errNotFound
	case 409:
		return errConflictPoll
	}
	desc := http.StatusText(code)
	if desc == "" {
		desc = "Error " + strconv.Itoa(code)
	}
	return &apiError{code: code, desc: desc, retryAfter: retryAfter}
}

// writeResult writes {"ok":true,"result":...} around already encoded JSON.
func writeResult(w http.ResponseWriter, result []byte) {
	buf := make([]byte, 0, len(result)+22)
	buf = append(buf, `{"ok":true,"result":`...)
	buf = append(buf, result...)
	buf = append(buf, '}')
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(buf))}
	w.Write(buf)
}

var jsonContentType = []string{"application/json"}

// writeError answers ok=false with the HTTP status equal to error_code, as
// Telegram does.
func writeError(w http.ResponseWriter, e *apiError) {
	body := wireError{ErrorCode: e.code, Description: e.desc}
	if e.retryAfter > 0 {
		body.Parameters = &wireParameters{RetryAfter: e.retryAfter}
	}
	b, _ := json.Marshal(body)
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(e.code)
	w.Write(b)
}
