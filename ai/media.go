package ai

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"
)

// Image generates one image from prompt. The bytes are what the provider
// made (PNG for OpenAI's models); a URL answer is downloaded within the same
// timeout, without the API key.
func (r *Router) Image(ctx context.Context, model, prompt string) ([]byte, Usage, error) {
	var img []byte
	var usage Usage
	_, err := r.run(ctx, model, CapImage, func(ctx context.Context, m Model, p *provider) (bool, error) {
		ctx, cancel := r.withTimeout(ctx, m)
		defer cancel()
		// No response_format: gpt-image-* refuse it and always answer
		// base64, DALL·E answers a URL by default. We take either.
		resp, err := p.openai.CreateImage(ctx, openai.ImageRequest{Model: m.Name, Prompt: prompt, N: 1})
		if err != nil {
			return false, err
		}
		if len(resp.Data) == 0 {
			return false, errors.New("no image")
		}
		d := resp.Data[0]
		switch {
		case d.B64JSON != "":
			img, err = base64.StdEncoding.DecodeString(d.B64JSON)
		case d.URL != "":
			img, err = download(ctx, p.http, d.URL)
		default:
			err = errors.New("empty image")
		}
		if err != nil {
			return false, err
		}
		usage = Usage{
			Model: m.ID, Capability: CapImage, Images: 1,
			InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens,
			At: r.clock.Now(),
		}
		usage.Cost = r.Cost(m, usage)
		return false, nil
	})
	if err != nil {
		return nil, Usage{}, err
	}
	return img, usage, nil
}

// download fetches a generated image. The URL comes from the provider; only
// http(s) is followed.
func download(ctx context.Context, hc *http.Client, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("bad image url")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{status: resp.StatusCode}
	}
	return readLimited(resp.Body)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, errors.New("response too large")
	}
	return b, nil
}

// Transcribe turns speech into text. filename tells the provider the format
// ("voice.ogg"); it defaults to "audio.ogg", Telegram's voice format.
// Usage.AudioSeconds is read from the audio itself when it is Ogg (Telegram
// voice messages); other formats are billed as zero seconds.
func (r *Router) Transcribe(ctx context.Context, model string, audio []byte, filename string) (string, Usage, error) {
	if filename == "" {
		filename = "audio.ogg"
	}
	var text string
	var usage Usage
	_, err := r.run(ctx, model, CapTranscribe, func(ctx context.Context, m Model, p *provider) (bool, error) {
		ctx, cancel := r.withTimeout(ctx, m)
		defer cancel()
		resp, err := p.openai.CreateTranscription(ctx, openai.AudioRequest{
			Model:    m.Name,
			FilePath: filename,
			Reader:   bytes.NewReader(audio),
			Format:   openai.AudioResponseFormatJSON,
		})
		if err != nil {
			return false, err
		}
		text = resp.Text
		usage = Usage{Model: m.ID, Capability: CapTranscribe, AudioSeconds: resp.Duration, At: r.clock.Now()}
		if usage.AudioSeconds == 0 {
			usage.AudioSeconds = oggDuration(audio)
		}
		usage.Cost = r.Cost(m, usage)
		return false, nil
	})
	if err != nil {
		return "", Usage{}, err
	}
	return text, usage, nil
}

// Speech synthesizes text as MP3 and returns the audio with its MIME type.
// OpenAI-compatible providers use /audio/speech with the model's voice
// ("alloy" when unset); ElevenLabs uses the model's voice id.
func (r *Router) Speech(ctx context.Context, model, text string) ([]byte, string, Usage, error) {
	var audio []byte
	var mime string
	var usage Usage
	_, err := r.run(ctx, model, CapSpeech, func(ctx context.Context, m Model, p *provider) (bool, error) {
		ctx, cancel := r.withTimeout(ctx, m)
		defer cancel()
		var err error
		if p.cfg.Kind == KindElevenLabs {
			audio, mime, err = r.elevenLabsSpeech(ctx, p, m, text)
		} else {
			audio, mime, err = openAISpeech(ctx, p, m, text)
		}
		if err != nil {
			return false, err
		}
		usage = Usage{Model: m.ID, Capability: CapSpeech, Chars: utf8.RuneCountInString(text), At: r.clock.Now()}
		usage.Cost = r.Cost(m, usage)
		return false, nil
	})
	if err != nil {
		return nil, "", Usage{}, err
	}
	return audio, mime, usage, nil
}

func openAISpeech(ctx context.Context, p *provider, m Model, text string) ([]byte, string, error) {
	voice := m.Voice
	if voice == "" {
		voice = string(openai.VoiceAlloy)
	}
	resp, err := p.openai.CreateSpeech(ctx, openai.CreateSpeechRequest{
		Model:          openai.SpeechModel(m.Name),
		Input:          text,
		Voice:          openai.SpeechVoice(voice),
		ResponseFormat: openai.SpeechResponseFormatMp3,
	})
	if err != nil {
		return nil, "", err
	}
	defer resp.Close()
	audio, err := readLimited(resp)
	if err != nil {
		return nil, "", err
	}
	return audio, audioMIME(resp.Header().Get("Content-Type")), nil
}

// elevenLabsSpeech calls POST {base}/v1/text-to-speech/{voice_id}.
func (r *Router) elevenLabsSpeech(ctx context.Context, p *provider, m Model, text string) ([]byte, string, error) {
	body, err := json.Marshal(struct {
		Text    string `json:"text"`
		ModelID string `json:"model_id"`
	}{text, m.Name})
	if err != nil {
		return nil, "", err
	}
	endpoint := p.cfg.BaseURL + "/v1/text-to-speech/" + url.PathEscape(m.Voice)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, "", fmt.Errorf("elevenlabs request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "audio/mpeg")
	if p.cfg.APIKey != "" {
		req.Header.Set("xi-api-key", p.cfg.APIKey)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The body may quote our text: it is not kept.
		return nil, "", &statusError{status: resp.StatusCode}
	}
	audio, err := readLimited(resp.Body)
	if err != nil {
		return nil, "", err
	}
	return audio, audioMIME(resp.Header.Get("Content-Type")), nil
}

// audioMIME keeps the provider's audio type, defaulting to MP3 (what we ask for).
func audioMIME(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	if !strings.HasPrefix(mt, "audio/") {
		return "audio/mpeg"
	}
	return mt
}
