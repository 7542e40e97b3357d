package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/bot"
	"github.com/valex-ai/valex/bot/tghtml"
)

// maxPhoto caps a photo sent to a vision model; Telegram's largest photo
// size is far below it.
const maxPhoto = 10 << 20

// pendingImageTTL is how long an image price offer may be accepted.
const pendingImageTTL = 15 * time.Minute

// pendingImage is an /image request waiting for the user to accept its
// price. It lives in memory only: after a restart the user asks again.
type pendingImage struct {
	id     string
	model  string
	prompt string
	at     time.Time
}

// shortKey names a catalogue entry in callback data (64 bytes, no ':' or
// '.'), whatever its id.
func shortKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}

// Photo is a photo with a caption: a chat turn for a vision model.
func (a *AI) Photo(ctx context.Context, r *bot.Request) error {
	if r.Photo == nil {
		return valex.Errorf("error.unsupported_update", nil)
	}
	caption := r.Text
	if !r.Private() {
		caption = stripMention(caption, a.opt.BotUsername)
	}
	ad, err := a.ready(ctx, r)
	if !ad.ok || err != nil {
		return err
	}
	fileID := r.Photo.ID
	a.submit(r, ad.ticket, r.Defer(), func(ctx context.Context) {
		err := a.photoTurn(ctx, r, fileID, caption)
		if err != nil && ctx.Err() == nil {
			a.report(ctx, r, err)
		}
	})
	return nil
}

func (a *AI) photoTurn(ctx context.Context, r *bot.Request, fileID, caption string) error {
	img, err := a.files.Download(ctx, fileID, maxPhoto)
	if errors.Is(err, bot.ErrFileTooBig) {
		return valex.Errorf("ai.file.too_big", map[string]any{"MB": maxPhoto >> 20})
	}
	if err != nil {
		return err
	}
	text := caption
	if text == "" {
		text = a.h.t(r, "ai.photo.default_question", nil)
	}
	return a.turn(ctx, r, turnInput{text: text, stored: "[photo] " + caption, image: img})
}

// VoiceIn is a voice note or an audio file: transcribed, shown, and
// answered as a chat turn.
func (a *AI) VoiceIn(ctx context.Context, r *bot.Request) error {
	if r.Voice == nil {
		return valex.Errorf("error.unsupported_update", nil)
	}
	if r.Voice.Size > bot.MaxDownloadSize {
		return valex.Errorf("ai.file.too_big", map[string]any{"MB": bot.MaxDownloadSize >> 20})
	}
	ad, err := a.ready(ctx, r)
	if !ad.ok || err != nil {
		return err
	}
	f := *r.Voice
	a.submit(r, ad.ticket, r.Defer(), func(ctx context.Context) {
		if err := a.voiceTurn(ctx, r, f); err != nil && ctx.Err() == nil {
			a.report(ctx, r, err)
		}
	})
	return nil
}

func (a *AI) voiceTurn(ctx context.Context, r *bot.Request, f bot.File) error {
	if ok, err := a.consent.CanUseAI(r.From.ID); err != nil || !ok {
		return err
	}
	m, ok := a.modelFor("", ai.CapTranscribe, a.opt.Plan(r.From.ID))
	if !ok {
		return valex.Errorf("ai.error.no_model", nil)
	}
	audio, err := a.files.Download(ctx, f.ID, bot.MaxDownloadSize)
	if errors.Is(err, bot.ErrFileTooBig) {
		return valex.Errorf("ai.file.too_big", map[string]any{"MB": bot.MaxDownloadSize >> 20})
	}
	if err != nil {
		return err
	}
	_ = a.out.Typing(a.tg, r.ChatID, r.ThreadID, "typing")
	name := f.Name
	if name == "" {
		name = "voice.ogg"
	}
	if ok, err := a.allowed(ctx, r.From.ID); err != nil || !ok {
		return err // stopped or withdrawn during the download
	}
	charge, ok, err := a.reserve(ctx, r, m, ai.Usage{Capability: ai.CapTranscribe, AudioSeconds: float64(max(f.Duration, 60))})
	if err != nil || !ok {
		settleRefused(ctx, err)
		return err
	}
	defer a.release(charge)
	text, usage, err := a.models.Transcribe(ctx, m.ID, audio, name)
	if err != nil {
		return a.callFailed(ctx, r, err)
	}
	if err := a.charge(ctx, r, usage, charge); err != nil {
		return err
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return valex.Errorf("ai.voice_in.empty", nil)
	}
	shown := a.h.t(r, "ai.voice_in.transcript", map[string]any{"Text": tghtml.Escape(text)})
	if _, err := a.out.Send(a.tg, bot.Message{ChatID: r.ChatID, ThreadID: r.ThreadID, Text: shown, ReplyTo: r.MessageID}); err != nil {
		return err
	}
	return a.turn(ctx, r, turnInput{text: text, stored: text})
}

// Image generates an image from /image's prompt, asking first when it costs
// more than the configured threshold.
func (a *AI) Image(ctx context.Context, r *bot.Request) error {
	prompt := strings.TrimSpace(r.Args)
	if prompt == "" {
		if _, err := a.h.registered(r); err != nil {
			return err
		}
		return a.h.reply(ctx, r, a.h.t(r, "ai.image.usage", nil), nil)
	}
	ad, err := a.ready(ctx, r)
	if !ad.ok || err != nil {
		return err
	}
	m, ok := a.modelFor("", ai.CapImage, a.opt.Plan(r.From.ID))
	if !ok {
		return valex.Errorf("ai.error.no_model", nil)
	}
	price := a.models.Cost(m, ai.Usage{Images: 1})
	if price <= a.opt.ImageConfirmAbove {
		a.submitImage(r, ad.ticket, m.ID, prompt)
		return nil
	}
	now := a.h.Clock.Now()
	a.mu.Lock()
	if a.stoppedAt[r.From.ID] > ad.ticket {
		a.mu.Unlock()
		return nil // stopped while this was checked: no offer
	}
	a.seq++
	p := pendingImage{id: strconv.FormatUint(a.seq, 36), model: m.ID, prompt: prompt, at: now}
	a.pending[r.From.ID] = p
	for uid, x := range a.pending { // forget offers nobody took
		if now.Sub(x.at) > pendingImageTTL {
			delete(a.pending, uid)
		}
	}
	a.mu.Unlock()
	kb := [][]bot.Button{{
		{Text: a.h.t(r, "ai.image.generate", map[string]any{"Cost": credits(r.Lang, price)}), Data: cbImage.Data(a.h.CB, "go", p.id)},
		{Text: a.h.t(r, "ai.image.cancel", nil), Data: cbImage.Data(a.h.CB, "no", p.id)},
	}}
	return a.h.reply(ctx, r, a.h.t(r, "ai.image.confirm", map[string]any{"Cost": credits(r.Lang, price), "Model": tghtml.Escape(m.ID)}), kb)
}

// ImageButton handles the price offer's buttons.
func (a *AI) ImageButton(ctx context.Context, r *bot.Request) error {
	args := r.CallbackArgs
	if len(args) != 2 || (args[0] != "go" && args[0] != "no") {
		return valex.Errorf("error.bad_callback", nil)
	}
	a.mu.Lock()
	p, ok := a.pending[r.From.ID]
	if ok && p.id == args[1] {
		delete(a.pending, r.From.ID)
	}
	a.mu.Unlock()
	if !ok || p.id != args[1] || a.h.Clock.Now().Sub(p.at) > pendingImageTTL {
		return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.image.expired", nil), nil)
	}
	if args[0] == "no" {
		return a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.image.cancelled", nil), nil)
	}
	ad, err := a.ready(ctx, r)
	if !ad.ok || err != nil {
		return err
	}
	if err := a.out.Edit(ctx, r.ChatID, r.MessageID, a.h.t(r, "ai.image.generating", nil), nil); err != nil {
		return err
	}
	a.submitImage(r, ad.ticket, p.model, p.prompt)
	return nil
}

func (a *AI) submitImage(r *bot.Request, ticket uint64, model, prompt string) {
	a.submit(r, ticket, r.Defer(), func(ctx context.Context) {
		if err := a.image(ctx, r, model, prompt); err != nil && ctx.Err() == nil {
			a.report(ctx, r, err)
		}
	})
}

func (a *AI) image(ctx context.Context, r *bot.Request, model, prompt string) error {
	if ok, err := a.consent.CanUseAI(r.From.ID); err != nil || !ok {
		return err
	}
	_ = a.out.Typing(a.tg, r.ChatID, r.ThreadID, "upload_photo")
	if ok, err := a.allowed(ctx, r.From.ID); err != nil || !ok {
		return err
	}
	var charge valex.Charge
	if m, found := a.models.Model(model); found {
		var ok bool
		var err error
		if charge, ok, err = a.reserve(ctx, r, m, ai.Usage{Capability: ai.CapImage, Images: 1}); err != nil || !ok {
			settleRefused(ctx, err)
			return err
		}
		defer a.release(charge)
	}
	img, usage, err := a.models.Image(ctx, model, prompt)
	if err != nil {
		return a.callFailed(ctx, r, err)
	}
	if err := a.charge(ctx, r, usage, charge); err != nil {
		return err
	}
	caption := tghtml.Escape(truncate(prompt, 200))
	if _, err := a.out.SendFile(a.tg, bot.FileMessage{ChatID: r.ChatID, ThreadID: r.ThreadID, Kind: bot.FilePhoto, Name: "image.png", Data: img, Caption: caption}); err != nil {
		return err
	}
	settle(ctx)
	return nil
}

// TTS reads a text out as a voice message: /tts text, or /tts in reply to
// a message.
func (a *AI) TTS(ctx context.Context, r *bot.Request) error {
	text := strings.TrimSpace(r.Args)
	if text == "" {
		text = strings.TrimSpace(r.ReplyText)
	}
	if text == "" {
		if _, err := a.h.registered(r); err != nil {
			return err
		}
		return a.h.reply(ctx, r, a.h.t(r, "ai.tts.usage", nil), nil)
	}
	if n := utf8.RuneCountInString(text); n > a.opt.MaxSpeechChars {
		return valex.Errorf("ai.tts.too_long", map[string]any{"Max": a.opt.MaxSpeechChars})
	}
	ad, err := a.ready(ctx, r)
	if !ad.ok || err != nil {
		return err
	}
	a.submit(r, ad.ticket, r.Defer(), func(ctx context.Context) {
		if err := a.speak(ctx, r, text, false); err != nil && ctx.Err() == nil {
			a.report(ctx, r, err)
		}
	})
	return nil
}

// speak sends text as a voice message from the plan's first speech model.
// An answer read out (answer) is cut to the speech limit rather than refused.
func (a *AI) speak(ctx context.Context, r *bot.Request, text string, answer bool) error {
	if ok, err := a.consent.CanUseAI(r.From.ID); err != nil || !ok {
		return err
	}
	if answer {
		text = truncate(text, a.opt.MaxSpeechChars)
	}
	m, ok := a.modelFor("", ai.CapSpeech, a.opt.Plan(r.From.ID))
	if !ok {
		return valex.Errorf("ai.error.no_model", nil)
	}
	_ = a.out.Typing(a.tg, r.ChatID, r.ThreadID, "record_voice")
	if ok, err := a.allowed(ctx, r.From.ID); err != nil || !ok {
		return err
	}
	charge, ok, err := a.reserve(ctx, r, m, ai.Usage{Capability: ai.CapSpeech, Chars: utf8.RuneCountInString(text)})
	if err != nil || !ok {
		settleRefused(ctx, err)
		return err
	}
	defer a.release(charge)
	audio, mime, usage, err := a.models.Speech(ctx, m.ID, text)
	if err != nil {
		return a.callFailed(ctx, r, err)
	}
	if err := a.charge(ctx, r, usage, charge); err != nil {
		return err
	}
	name := "speech.mp3"
	switch mime {
	case "audio/ogg", "audio/opus":
		name = "speech.ogg"
	case "audio/wav", "audio/x-wav":
		name = "speech.wav"
	}
	if _, err := a.out.SendFile(a.tg, bot.FileMessage{ChatID: r.ChatID, ThreadID: r.ThreadID, Kind: bot.FileVoice, Name: name, Data: audio}); err != nil {
		return err
	}
	settle(ctx)
	return nil
}

// truncate cuts s to at most n characters, ending with "…" when cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// callFailed turns a failed provider call into the user's error (nothing
// is charged); a call stopped by /cancel ends quietly, the user has been
// answered already.
func (a *AI) callFailed(ctx context.Context, r *bot.Request, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return a.providerError(r, err)
}

// charge records a successful call outside a chat turn in the usage
// ledger, unless StopUser stopped the job: then the call is neither
// recorded nor its result delivered.
func (a *AI) charge(ctx context.Context, r *bot.Request, u ai.Usage, c valex.Charge) error {
	return a.write(ctx, r.From.ID, func() error {
		_, err := a.saveCharged(r.From.ID, 0, nil, []valex.AIUsage{usageOf(r.From.ID, u)}, c)
		return err
	})
}
