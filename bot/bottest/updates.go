package bottest

import (
	"bytes"
	"encoding/json"
	"image"
	_ "image/gif" // photo dimensions
	_ "image/jpeg"
	_ "image/png"
	"path"
	"slices"
	"strconv"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// pendingUpdate is an update not yet confirmed by the bot. fields is the
// update object's body without update_id (`"message":{...}`), encoded once
// when the update is created.
type pendingUpdate struct {
	id     int
	kind   string
	fields []byte
}

// enqueueLocked queues an update of kind with payload and wakes pollers.
func (s *Server) enqueueLocked(kind string, payload any) int {
	b, err := json.Marshal(payload)
	if err != nil {
		panic("bottest: encode " + kind + ": " + err.Error()) // own wire types always encode
	}
	fields := make([]byte, 0, len(kind)+len(b)+3)
	fields = append(fields, '"')
	fields = append(fields, kind...)
	fields = append(fields, '"', ':')
	fields = append(fields, b...)
	return s.enqueueFieldsLocked(kind, fields)
}

func (s *Server) enqueueFieldsLocked(kind string, fields []byte) int {
	s.lastUpdateID++
	s.queue = append(s.queue, pendingUpdate{id: s.lastUpdateID, kind: kind, fields: fields})
	s.wakePollersLocked()
	return s.lastUpdateID
}

func (s *Server) wakePollersLocked() {
	if s.pollWake != nil {
		close(s.pollWake)
		s.pollWake = nil
	}
}

// userMessage stores a message from a user and queues it as an update.
// fill sets the content. It returns 0 when replyTo names no live message.
func (s *Server) userMessage(chat Chat, from User, replyTo int, fill func(m *wireMessage, sm *storedMsg)) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.userChatLocked(chat, from)
	now := s.clock()
	uw := userWire(from)
	m := wireMessage{MessageID: cs.nextID(), From: &uw, Date: now.Unix(), Chat: cs.wire}
	if chat.Thread != 0 {
		// A user writing in a topic: it exists (made before the test, or
		// by CreateTopic).
		cs.addTopic(chat.Thread)
		m.MessageThreadID, m.IsTopicMessage = chat.Thread, true
	}
	if replyTo != 0 {
		r := cs.get(replyTo)
		if r == nil || r.deleted {
			return 0
		}
		m.ReplyToMessage = r.replyCopy()
	}
	sm := &storedMsg{kind: "text", date: now}
	fill(&m, sm)
	sm.wire = m
	cs.add(sm)
	return s.enqueueLocked("message", &m)
}

// SendText is a user sending text. A /command gets a bot_command entity as
// on Telegram. It returns the update_id.
func (s *Server) SendText(chat Chat, from User, text string) int {
	return s.SendReply(chat, from, text, 0)
}

// SendReply is a user replying to message replyTo (the bot's or a user's)
// with text. It returns the update_id, or 0 if there is no such message.
func (s *Server) SendReply(chat Chat, from User, text string, replyTo int) int {
	return s.userMessage(chat, from, replyTo, func(m *wireMessage, sm *storedMsg) {
		m.Text = text
		m.Entities = commandEntities(text)
		sm.raw = text
	})
}

// CreateTopic is a user creating a topic named name in chat (a private chat
// with the bot, or a forum supergroup): the forum_topic_created service
// message arrives as an update, and its message_id is the topic's
// message_thread_id. It returns the chat to act in within the topic.
func (s *Server) CreateTopic(chat Chat, from User, name string) Chat {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.userChatLocked(chat, from)
	uw := userWire(from)
	id := cs.nextID()
	m := wireMessage{MessageID: id, MessageThreadID: id, IsTopicMessage: true, From: &uw, Date: s.clock().Unix(), Chat: cs.wire,
		ForumTopicCreated: &wireForumTopicCreated{Name: name, IconColor: 7322096}}
	cs.add(&storedMsg{kind: "service", wire: m, date: s.clock()})
	cs.addTopic(id)
	s.enqueueLocked("message", &m)
	chat.Thread = id
	return chat
}

// PressButton is a user pressing the inline button with callback data in
// the bot's message messageID. It returns the update_id, or 0 if that
// message does not exist (or was deleted) or carries no such button now:
// a Telegram client can only press buttons it shows.
func (s *Server) PressButton(chat Chat, from User, messageID int, data string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.chats[chat.ID]
	if !ok {
		return 0
	}
	m := cs.get(messageID)
	if m == nil || m.deleted || !m.fromBot || !m.hasCallback(data) {
		return 0
	}
	id := s.nextQueryIDLocked()
	s.callbacks[id] = false
	return s.enqueueLocked("callback_query", &wireCallbackQuery{
		ID:           id,
		From:         userWire(from),
		Message:      m.replyCopy(),
		ChatInstance: strconv.FormatInt(chat.ID*7919+13, 10), // stable per chat, like Telegram's
		Data:         data,
	})
}

// PressForged sends a callback query with any data for any message, as a
// modified client can: the bot must not trust callback data.
func (s *Server) PressForged(chat Chat, from User, messageID int, data string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextQueryIDLocked()
	s.callbacks[id] = false
	msg := &wireMessage{MessageID: messageID, Chat: wireChat{ID: chat.ID, Type: chat.Type, Title: chat.Title}, Date: s.clock().Unix()}
	if cs, ok := s.chats[chat.ID]; ok {
		if m := cs.get(messageID); m != nil {
			msg = m.replyCopy()
		}
	}
	return s.enqueueLocked("callback_query", &wireCallbackQuery{
		ID: id, From: userWire(from), Message: msg,
		ChatInstance: strconv.FormatInt(chat.ID*7919+13, 10), Data: data,
	})
}

func (s *Server) nextQueryIDLocked() string {
	s.querySeq++
	return strconv.FormatInt(s.querySeq, 10)
}

// SendPhoto is a user sending a photo. Like Telegram it arrives as an array
// of sizes, smallest first; both sizes serve the original bytes.
func (s *Server) SendPhoto(chat Chat, from User, caption string, jpeg []byte) int {
	w, h := imageSize(jpeg)
	return s.userMessage(chat, from, 0, func(m *wireMessage, sm *storedMsg) {
		m.Photo = s.photoSizesLocked(jpeg, w, h)
		m.Caption = caption
		sm.kind, sm.raw = "photo", caption
	})
}

// photoSizesLocked registers a thumbnail (longest side 90) and the full size.
func (s *Server) photoSizesLocked(data []byte, w, h int) []tgbotapi.PhotoSize {
	tw, th := 90, 90
	if w >= h && w > 0 {
		th = max(h*90/w, 1)
	} else if h > 0 {
		tw = max(w*90/h, 1)
	}
	sizes := make([]tgbotapi.PhotoSize, 0, 2)
	for _, d := range [][2]int{{tw, th}, {w, h}} {
		f := s.newFileLocked("photos", ".jpg", data, int64(len(data)))
		f.width, f.height, f.mime = d[0], d[1], "image/jpeg"
		sizes = append(sizes, tgbotapi.PhotoSize{FileID: f.id, FileUniqueID: f.uniqueID, Width: d[0], Height: d[1], FileSize: len(data)})
	}
	return sizes
}

// imageSize decodes JPEG/PNG/GIF dimensions; unknown data gets 800x600
// rather than an error so tests may send any bytes as a photo.
func imageSize(data []byte) (int, int) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil || cfg.Width == 0 || cfg.Height == 0 {
		return 800, 600
	}
	return cfg.Width, cfg.Height
}

// SendVoice is a user sending a voice note of the given length.
func (s *Server) SendVoice(chat Chat, from User, ogg []byte, seconds int) int {
	return s.userMessage(chat, from, 0, func(m *wireMessage, sm *storedMsg) {
		f := s.newFileLocked("voice", ".oga", ogg, int64(len(ogg)))
		f.mime = "audio/ogg"
		m.Voice = &tgbotapi.Voice{FileID: f.id, FileUniqueID: f.uniqueID, Duration: seconds, MimeType: f.mime, FileSize: len(ogg)}
		sm.kind = "voice"
	})
}

// SendAudio is a user sending an audio file.
func (s *Server) SendAudio(chat Chat, from User, data []byte, name, mime string) int {
	return s.userMessage(chat, from, 0, func(m *wireMessage, sm *storedMsg) {
		f := s.newFileLocked("music", path.Ext(name), data, int64(len(data)))
		f.name, f.mime = name, mime
		m.Audio = &tgbotapi.Audio{FileID: f.id, FileUniqueID: f.uniqueID, FileName: name, MimeType: mime, FileSize: len(data)}
		sm.kind, sm.fileName = "audio", name
	})
}

// SendDocument is a user sending a file.
func (s *Server) SendDocument(chat Chat, from User, data []byte, name, mime string) int {
	return s.SendDocumentCaption(chat, from, data, name, mime, "")
}

// SendDocumentCaption is a user sending a file with a caption. Like
// Telegram, the message carries document {file_id, file_unique_id,
// file_name, mime_type, file_size} and the caption beside it.
func (s *Server) SendDocumentCaption(chat Chat, from User, data []byte, name, mime, caption string) int {
	return s.sendDocument(chat, from, data, int64(len(data)), name, mime, caption)
}

// SendDocumentSized is a user sending a file that only reports its size,
// without bytes: past 20 MB, getFile answers "Bad Request: file is too
// big" as Telegram does.
func (s *Server) SendDocumentSized(chat Chat, from User, size int64, name, mime, caption string) int {
	return s.sendDocument(chat, from, nil, size, name, mime, caption)
}

func (s *Server) sendDocument(chat Chat, from User, data []byte, size int64, name, mime, caption string) int {
	return s.userMessage(chat, from, 0, func(m *wireMessage, sm *storedMsg) {
		f := s.newFileLocked("documents", path.Ext(name), data, size)
		f.name, f.mime = name, mime
		m.Document = &tgbotapi.Document{FileID: f.id, FileUniqueID: f.uniqueID, FileName: name, MimeType: mime, FileSize: int(size)}
		m.Caption = caption
		sm.kind, sm.fileName, sm.raw = "document", name, caption
	})
}

// SendContact is a user sharing a phone number (its own when contactUserID
// is the sender's id, as with a request_contact button).
func (s *Server) SendContact(chat Chat, from User, phone string, contactUserID int64) int {
	return s.userMessage(chat, from, 0, func(m *wireMessage, sm *storedMsg) {
		m.Contact = &tgbotapi.Contact{PhoneNumber: phone, FirstName: userWire(from).FirstName, UserID: contactUserID}
		sm.kind = "contact"
	})
}

// SendPreCheckout is Telegram asking the bot to confirm a checkout; the bot
// must answer with answerPreCheckoutQuery.
func (s *Server) SendPreCheckout(from User, payload, currency string, total int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextQueryIDLocked()
	s.preCheckouts[id] = false
	return s.enqueueLocked("pre_checkout_query", &wirePreCheckoutQuery{
		ID: id, From: userWire(from), Currency: currency, TotalAmount: total, InvoicePayload: payload,
	})
}

// SendSuccessfulPayment is the service message Telegram sends after a paid
// checkout.
func (s *Server) SendSuccessfulPayment(chat Chat, from User, payload, currency string, total int, providerChargeID string) int {
	return s.userMessage(chat, from, 0, func(m *wireMessage, sm *storedMsg) {
		m.SuccessfulPayment = &tgbotapi.SuccessfulPayment{
			Currency: currency, TotalAmount: total, InvoicePayload: payload,
			TelegramPaymentChargeID: "tg-charge-" + strconv.Itoa(m.MessageID) + "-" + strconv.FormatInt(chat.ID, 10),
			ProviderPaymentChargeID: providerChargeID,
		}
		if currency == "XTR" { // called with s.mu held
			s.starCharges[m.SuccessfulPayment.TelegramPaymentChargeID] = starCharge{user: from.ID, amount: total}
		}
		sm.kind = "payment"
	})
}

// SendRaw queues any update shape, e.g. {"edited_message":{...}} or
// {"my_chat_member":{...}}; an update_id in it is replaced by the server's.
// It returns the update_id, or 0 if update is not a JSON object with a
// payload.
func (s *Server) SendRaw(update json.RawMessage) int {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(update, &obj); err != nil {
		return 0
	}
	delete(obj, "update_id")
	if len(obj) == 0 {
		return 0
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var fields []byte
	for i, k := range keys {
		if i > 0 {
			fields = append(fields, ',')
		}
		kb, _ := json.Marshal(k)
		fields = append(fields, kb...)
		fields = append(fields, ':')
		var buf bytes.Buffer
		if err := json.Compact(&buf, obj[k]); err != nil {
			return 0
		}
		fields = append(fields, buf.Bytes()...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enqueueFieldsLocked(keys[0], fields)
}

// Confirmed is the highest update_id the bot has confirmed by calling
// getUpdates with offset = update_id+1.
func (s *Server) Confirmed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed
}

// Pending is the number of updates not yet confirmed.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Polling reports whether a getUpdates call is blocked in a long poll now.
func (s *Server) Polling() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling > 0
}

// allowedLocked applies allowed_updates. Telegram's default (no list, or an
// empty one) is every type except chat_member and the reaction updates.
func (s *Server) allowedLocked(kind string) bool {
	if s.allowed == nil {
		switch kind {
		case "chat_member", "message_reaction", "message_reaction_count":
			return false
		}
		return true
	}
	return s.allowed[kind]
}

// confirmLocked applies getUpdates' offset: updates below it are confirmed
// and forgotten; a negative offset keeps only the last -offset updates.
func (s *Server) confirmLocked(offset int) {
	drop := 0
	if offset < 0 {
		drop = max(len(s.queue)+offset, 0)
	} else {
		for drop < len(s.queue) && s.queue[drop].id < offset {
			drop++
		}
		s.confirmed = max(s.confirmed, offset-1)
	}
	if drop > 0 {
		s.confirmed = max(s.confirmed, s.queue[drop-1].id)
		clear(s.queue[:drop]) // let the encoded updates be collected
		s.queue = s.queue[drop:]
	}
}

// collectLocked returns up to limit deliverable updates. Updates of types
// not allowed are dropped: Telegram never queues them for the bot.
func (s *Server) collectLocked(limit int) []pendingUpdate {
	var batch []pendingUpdate
	n, i := 0, 0
	for ; i < len(s.queue) && len(batch) < limit; i++ {
		u := s.queue[i]
		if !s.allowedLocked(u.kind) {
			continue
		}
		s.queue[n] = u
		n++
		batch = append(batch, u)
	}
	if n < i { // close the gap left by dropped updates
		m := copy(s.queue[n:], s.queue[i:])
		clear(s.queue[n+m:])
		s.queue = s.queue[:n+m]
	}
	return batch
}

func getUpdates(s *Server, req *request, ev *Event) (any, *apiError) {
	p := req.params
	offset, hasOffset, aerr := intParam(p, "offset")
	if aerr != nil {
		return nil, aerr
	}
	limit, _, aerr := intParam(p, "limit")
	if aerr != nil {
		return nil, aerr
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout, _, aerr := intParam(p, "timeout")
	if aerr != nil {
		return nil, aerr
	}
	// tgbotapi always sends allowed_updates, "null" when unset: keep the
	// previous list then, as Telegram does when the parameter is absent.
	var allowed map[string]bool
	rawAllowed := p.Get("allowed_updates")
	setAllowed := rawAllowed != "" && rawAllowed != "null"
	if setAllowed {
		var list []string
		if err := json.Unmarshal([]byte(rawAllowed), &list); err != nil {
			return nil, badRequest("can't parse allowed updates JSON array")
		}
		if len(list) > 0 { // an empty list restores the default
			allowed = make(map[string]bool, len(list))
			for _, k := range list {
				allowed[k] = true
			}
		}
	}

	s.mu.Lock()
	if s.webhook != "" {
		s.mu.Unlock()
		return nil, errConflictHook
	}
	if setAllowed {
		s.allowed = allowed
	}
	if hasOffset {
		s.confirmLocked(offset)
	}
	// A newer getUpdates terminates an older one still waiting, which is
	// what Telegram's 409 "terminated by other getUpdates request" means.
	s.pollGen++
	gen := s.pollGen
	s.wakePollersLocked()

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		expired = t.C
	}
	var batch []pendingUpdate
	for {
		batch = s.collectLocked(limit)
		if len(batch) > 0 || expired == nil {
			break
		}
		if s.pollWake == nil {
			s.pollWake = make(chan struct{})
		}
		wake := s.pollWake
		s.polling++
		s.mu.Unlock()
		last := false
		select {
		case <-wake:
		case <-expired:
			last = true
		case <-req.ctx.Done():
			last = true
		case <-s.done:
			last = true
		}
		s.mu.Lock()
		s.polling--
		if s.pollGen != gen {
			s.mu.Unlock()
			return nil, errConflictPoll
		}
		if last {
			expired = nil // one last look, then answer
		}
	}
	s.emitLocked(*ev)
	s.mu.Unlock()

	// Encode outside the lock: pending updates are immutable.
	size := 2
	for _, u := range batch {
		size += len(u.fields) + 24
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for i, u := range batch {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"update_id":`...)
		out = strconv.AppendInt(out, int64(u.id), 10)
		out = append(out, ',')
		out = append(out, u.fields...)
		out = append(out, '}')
	}
	out = append(out, ']')
	return json.RawMessage(out), nil
}
