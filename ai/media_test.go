package ai_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valex-ai/valex/ai"
	"github.com/valex-ai/valex/ai/aitest"
)

func TestImage(t *testing.T) {
	for _, name := range []string{"dall-e-3", "gpt-image-1"} { // URL answer, base64 answer
		t.Run(name, func(t *testing.T) {
			m := ai.Model{ID: "img", Provider: "emu", Name: name, Caps: []ai.Capability{ai.CapImage}, Price: ai.Price{PerImage: 40_000}}
			r, srv := newRouter(t, m)
			img, usage, err := r.Image(context.Background(), "img", "a red fox")
			if err != nil {
				t.Fatalf("Image: %v", err)
			}
			if !bytes.Equal(img, aitest.PNG("a red fox#0")) {
				t.Errorf("got %d bytes, not the emulator's image", len(img))
			}
			if _, err := png.Decode(bytes.NewReader(img)); err != nil {
				t.Errorf("not a PNG: %v", err)
			}
			want := ai.Usage{Model: "img", Capability: ai.CapImage, Images: 1, Cost: 40_000, At: testNow}
			if usage != want {
				t.Errorf("Usage = %+v, want %+v", usage, want)
			}
			reqs := srv.Requests()
			if reqs[0].Path != "/v1/images/generations" || reqs[0].Prompt != "a red fox" || reqs[0].Model != name {
				t.Errorf("request = %+v", reqs[0])
			}
			if name == "dall-e-3" {
				if len(reqs) != 2 || !strings.HasPrefix(reqs[1].Path, "/files/") || reqs[1].Auth {
					t.Errorf("download = %+v: want a GET of the URL without the API key", reqs[1:])
				}
			}
		})
	}
}

func TestImageFallback(t *testing.T) {
	a := ai.Model{ID: "a", Provider: "emu", Name: "a-name", Caps: []ai.Capability{ai.CapImage}, Fallback: []string{"b"}}
	b := ai.Model{ID: "b", Provider: "emu", Name: "gpt-image-1", Caps: []ai.Capability{ai.CapImage}, Price: ai.Price{PerImage: 5}}
	r, srv := newRouter(t, a, b)
	srv.Script("a-name", aitest.Step{Status: 500})
	_, usage, err := r.Image(context.Background(), "a", "cat")
	if err != nil || usage.Model != "b" || usage.Cost != 5 {
		t.Fatalf("Usage = %+v, err = %v", usage, err)
	}
}

func TestTranscribe(t *testing.T) {
	m := ai.Model{ID: "stt", Provider: "emu", Name: "whisper-1", Caps: []ai.Capability{ai.CapTranscribe}, Price: ai.Price{PerAudioMinute: 6000}}
	r, srv := newRouter(t, m)
	voice := aitest.SilentOggOpus(3 * time.Second) // what Telegram sends: Ogg Opus

	text, usage, err := r.Transcribe(context.Background(), "stt", voice, "voice.ogg")
	if err != nil {
		t.Fatalf("Transcribe: %v", err)
	}
	if want := "transcript of voice.ogg (" + strconv.Itoa(len(voice)) + " bytes)"; text != want {
		t.Errorf("text = %q, want %q", text, want)
	}
	if math.Abs(usage.AudioSeconds-3) > 0.001 || usage.Cost != 300 || usage.Model != "stt" || usage.Capability != ai.CapTranscribe {
		t.Errorf("Usage = %+v, want 3 s costing 300", usage)
	}
	q := srv.Requests()[0]
	if q.Path != "/v1/audio/transcriptions" || q.Model != "whisper-1" || q.Filename != "voice.ogg" || q.FileSize != len(voice) || !q.Auth {
		t.Errorf("request = %+v", q)
	}

	srv.Script("whisper-1", aitest.Step{Text: "привет мир"})
	if text, _, err := r.Transcribe(context.Background(), "stt", []byte("not ogg"), ""); err != nil || text != "привет мир" {
		t.Errorf("scripted: text = %q, err = %v", text, err)
	}
	if q := srv.Requests()[1]; q.Filename != "audio.ogg" {
		t.Errorf("default filename = %q", q.Filename)
	}
}

func TestSpeechOpenAI(t *testing.T) {
	m := ai.Model{ID: "tts", Provider: "emu", Name: "tts-1", Voice: "nova", Caps: []ai.Capability{ai.CapSpeech}, Price: ai.Price{Per1KChars: 15_000}}
	r, srv := newRouter(t, m)
	const text = "Привет, мир" // 11 runes, 20 bytes
	audio, mime, usage, err := r.Speech(context.Background(), "tts", text)
	if err != nil {
		t.Fatalf("Speech: %v", err)
	}
	if mime != "audio/mpeg" || !bytes.HasPrefix(audio, []byte{0xFF, 0xFB}) {
		t.Errorf("mime %q, audio starts % x", mime, audio[:min(4, len(audio))])
	}
	if usage.Chars != 11 || usage.Cost != 165 { // 11 × 15000 / 1000
		t.Errorf("Usage = %+v", usage)
	}
	q := srv.Requests()[0]
	if q.Path != "/v1/audio/speech" || q.Model != "tts-1" || q.Voice != "nova" || q.Input != text || q.Format != "mp3" || !q.Auth {
		t.Errorf("request = %+v", q)
	}
}

func TestSpeechElevenLabs(t *testing.T) {
	m := ai.Model{ID: "eleven", Provider: "el", Name: "eleven_multilingual_v2", Voice: "voice123", Caps: []ai.Capability{ai.CapSpeech}, Price: ai.Price{Per1KChars: 1000}}
	r, srv := newRouter(t, m)
	audio, mime, usage, err := r.Speech(context.Background(), "eleven", "hello")
	if err != nil {
		t.Fatalf("Speech: %v", err)
	}
	if mime != "audio/mpeg" || len(audio) == 0 || usage.Chars != 5 || usage.Cost != 5 || usage.Model != "eleven" {
		t.Errorf("mime %q, %d bytes, usage %+v", mime, len(audio), usage)
	}
	q := srv.Requests()[0]
	if q.Path != "/v1/text-to-speech/voice123" || q.Model != "eleven_multilingual_v2" || q.Input != "hello" || !q.Auth {
		t.Errorf("request = %+v", q)
	}
}

func TestSpeechElevenLabsNeedsKey(t *testing.T) {
	srv := aitest.New()
	defer srv.Close()
	m := ai.Model{ID: "eleven", Provider: "el", Voice: "v", Caps: []ai.Capability{ai.CapSpeech}, Fallback: []string{"tts"}}
	tts := ai.Model{ID: "tts", Provider: "emu", Caps: []ai.Capability{ai.CapSpeech}}
	r, err := ai.New(ai.Config{
		Providers: []ai.ProviderConfig{
			{Name: "el", Kind: ai.KindElevenLabs, BaseURL: srv.URL()}, // no key
			{Name: "emu", Kind: ai.KindOpenAI, BaseURL: srv.URL() + "/v1", APIKey: openAIKey},
		},
		Models: []ai.Model{m, tts},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, _, err = r.Speech(context.Background(), "eleven", "hello")
	var me *ai.ModelError
	if !errors.As(err, &me) || me.Status != 401 || errors.Is(err, ai.ErrAllFailed) {
		t.Fatalf("err = %v, want a 401 without fallback", err)
	}
	if srv.Count() != 1 || srv.Requests()[0].Auth {
		t.Errorf("requests = %+v", srv.Requests())
	}
}

func TestSpeechFallsBackAcrossProviders(t *testing.T) {
	el := ai.Model{ID: "eleven", Provider: "el", Name: "eleven_v2", Voice: "v", Caps: []ai.Capability{ai.CapSpeech}, Fallback: []string{"tts"}}
	tts := ai.Model{ID: "tts", Provider: "emu", Name: "tts-1", Caps: []ai.Capability{ai.CapSpeech}}
	r, srv := newRouter(t, el, tts)
	srv.Script("eleven_v2", aitest.Step{Status: 503})
	_, _, usage, err := r.Speech(context.Background(), "eleven", "hi")
	if err != nil || usage.Model != "tts" {
		t.Fatalf("Usage = %+v, err = %v", usage, err)
	}
	var paths []string
	for _, q := range srv.Requests() {
		paths = append(paths, q.Path)
	}
	if !slices.Equal(paths, []string{"/v1/text-to-speech/v", "/v1/audio/speech"}) {
		t.Errorf("paths = %v", paths)
	}
	if srv.Requests()[1].Voice != "alloy" {
		t.Errorf("default voice = %q", srv.Requests()[1].Voice)
	}
}

func TestWrongCapability(t *testing.T) {
	r, srv := newRouter(t, chatModel("chat"))
	ctx := context.Background()
	if _, _, err := r.Image(ctx, "chat", "x"); !errors.Is(err, ai.ErrNoModel) {
		t.Errorf("Image: %v", err)
	}
	if _, _, err := r.Transcribe(ctx, "chat", nil, "a.ogg"); !errors.Is(err, ai.ErrNoModel) {
		t.Errorf("Transcribe: %v", err)
	}
	if _, _, _, err := r.Speech(ctx, "chat", "x"); !errors.Is(err, ai.ErrNoModel) {
		t.Errorf("Speech: %v", err)
	}
	if srv.Count() != 0 {
		t.Errorf("%d requests reached the provider", srv.Count())
	}
}
