package bottest

import (
	"strconv"
)

// Drafts (sendMessageDraft, Bot API 9.5) stream a message being generated
// into a private chat; with can_stop (10.3) the user sees a stop button,
// whose tap reaches the bot as a stopped_message_generation update
// (StopDraft).

// Draft is the last draft a chat showed under one draft id.
type Draft struct {
	ID       int64
	Text     string // as the user sees it
	Raw      string // as sent
	CanStop  bool
	ThreadID int
	Updates  int // how many times it was sent
}

func sendMessageDraft(s *Server, req *request, ev *Event) (any, *apiError) {
	if s.noDrafts {
		return nil, errNotFound
	}
	p := req.params
	chatID, aerr := chatIDParam(p)
	if aerr != nil {
		return nil, aerr
	}
	ev.ChatID = chatID
	raw := p.Get("draft_id")
	if raw == "" {
		return nil, badRequest("parameter \"draft_id\" is required")
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil, badRequest("parameter \"draft_id\" must be an integer")
	}
	if id == 0 {
		return nil, badRequest("TEXTDRAFT_ID_INVALID: draft_id must be non-zero")
	}
	ev.DraftID = id
	if ev.ThreadID, _, aerr = intParam(p, "message_thread_id"); aerr != nil {
		return nil, aerr
	}
	switch p.Get("can_stop") {
	case "", "false":
	case "true":
		ev.CanStop = true
	default:
		return nil, badRequest("can't parse can_stop: a Boolean is expected")
	}
	text, mode := p.Get("text"), p.Get("parse_mode")
	ev.Raw, ev.Text, ev.ParseMode = text, text, mode
	// Unlike a message, a draft may be empty: Telegram shows "Thinking…".
	f, aerr := parseText(text, mode)
	if aerr != nil {
		return nil, aerr
	}
	if utf16Count(f.text) > maxTextLen {
		return nil, badRequest("message is too long")
	}
	ev.Text = f.text

	s.mu.Lock()
	defer s.mu.Unlock()
	cs, aerr := s.botChatLocked(chatID)
	if aerr != nil {
		return nil, aerr
	}
	if cs.wire.Type != "private" {
		return nil, badRequest("TEXTDRAFT_PEER_INVALID: drafts can be sent only to private chats")
	}
	if cs.drafts == nil {
		cs.drafts = make(map[int64]Draft)
	}
	d := cs.drafts[id]
	d.ID, d.Text, d.Raw, d.CanStop, d.ThreadID = id, f.text, text, ev.CanStop, ev.ThreadID
	d.Updates++
	cs.drafts[id] = d
	s.emitLocked(*ev)
	return true, nil
}

// Drafts are the drafts a chat was shown, by draft id.
func (s *Server) Drafts(chatID int64) map[int64]Draft {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chats[chatID]
	if cs == nil {
		return nil
	}
	out := make(map[int64]Draft, len(cs.drafts))
	for id, d := range cs.drafts {
		out[id] = d
	}
	return out
}

// wireStopped is a MessageGenerationStopped object.
type wireStopped struct {
	Chat     wireChat `json:"chat"`
	ThreadID int      `json:"message_thread_id,omitempty"`
	DraftID  int64    `json:"draft_id"`
}

// StopDraft is user from tapping the stop button of draft draftID in
// their private chat: a stopped_message_generation update, shaped as
// Telegram sends it (chat, draft_id, message_thread_id; no "from": a
// private chat's id is its user's). It returns the update_id, or 0 when
// the chat was never shown that draft with a stop button (a client can
// only tap a button it shows). A draft stays stoppable after the bot moved
// on: the tap may cross the answer's end.
func (s *Server) StopDraft(from User, draftID int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.userChatLocked(PrivateChat(from), from)
	d, ok := cs.drafts[draftID]
	if !ok || !d.CanStop {
		return 0
	}
	return s.enqueueLocked("stopped_message_generation", wireStopped{Chat: cs.wire, ThreadID: d.ThreadID, DraftID: draftID})
}
