package aitest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// images answers POST /v1/images/generations. The format follows
// response_format; when it is absent, gpt-image-* models answer b64_json
// and the others a URL, as OpenAI does. URLs point back at this server.
func (s *Server) images(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Auth: bearer(r)}
	if !rec.Auth {
		s.record(rec)
		openAIError(w, http.StatusUnauthorized, "You didn't provide an API key.")
		return
	}
	var req struct {
		Model          string `json:"model"`
		Prompt         string `json:"prompt"`
		N              int    `json:"n"`
		ResponseFormat string `json:"response_format"`
	}
	if !decodeJSON(w, r, &req) {
		s.record(rec)
		return
	}
	rec.Model, rec.Prompt, rec.Format = req.Model, req.Prompt, req.ResponseFormat
	st := s.record(rec)
	if req.Prompt == "" {
		openAIError(w, http.StatusBadRequest, "prompt is required")
		return
	}
	if !s.wait(r, st) || stepError(w, st) {
		return
	}
	format := req.ResponseFormat
	if format == "" {
		format = "url"
		if strings.HasPrefix(req.Model, "gpt-image") {
			format = "b64_json"
		}
	}
	if format != "url" && format != "b64_json" {
		openAIError(w, http.StatusBadRequest, "response_format must be url or b64_json")
		return
	}
	var data []any
	for i := range max(req.N, 1) {
		img := PNG(fmt.Sprintf("%s#%d", req.Prompt, i))
		if format == "b64_json" {
			data = append(data, map[string]any{"b64_json": base64.StdEncoding.EncodeToString(img)})
			continue
		}
		name := fmt.Sprintf("img-%d.png", s.nextID())
		s.mu.Lock()
		s.files[name] = img
		s.mu.Unlock()
		data = append(data, map[string]any{"url": s.url + "/files/" + name})
	}
	writeJSON(w, http.StatusOK, map[string]any{"created": time.Now().Unix(), "data": data})
}

// file serves a generated image, without auth like a CDN link.
func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	s.record(Request{Method: r.Method, Path: r.URL.Path, Auth: bearer(r)})
	s.mu.Lock()
	img, ok := s.files[r.PathValue("name")]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(img)
}

// PNG is the emulator's image for prompt: a real 8×8 PNG whose colour
// depends on the prompt. Image i of a request is PNG(prompt+"#"+i).
func PNG(prompt string) []byte {
	h := fnv.New32a()
	_, _ = h.Write([]byte(prompt))
	sum := h.Sum32()
	c := color.RGBA{R: uint8(sum), G: uint8(sum >> 8), B: uint8(sum >> 16), A: 255}
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img) // cannot fail on a bytes.Buffer
	return buf.Bytes()
}

// transcriptions answers POST /v1/audio/transcriptions (multipart: file,
// model, response_format). The default transcript is
// "transcript of <filename> (<n> bytes)".
func (s *Server) transcriptions(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Auth: bearer(r)}
	if !rec.Auth {
		s.record(rec)
		openAIError(w, http.StatusUnauthorized, "You didn't provide an API key.")
		return
	}
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		s.record(rec)
		openAIError(w, http.StatusBadRequest, "expected multipart/form-data")
		return
	}
	rec.Model = r.FormValue("model")
	rec.Format = r.FormValue("response_format")
	f, hdr, err := r.FormFile("file")
	var audio []byte
	if err == nil {
		audio, err = io.ReadAll(f)
		_ = f.Close()
		rec.Filename, rec.FileSize = hdr.Filename, len(audio)
	}
	st := s.record(rec)
	if err != nil || rec.Model == "" {
		openAIError(w, http.StatusBadRequest, "file and model are required")
		return
	}
	if !s.wait(r, st) || stepError(w, st) {
		return
	}
	text := st.Text
	if text == "" {
		text = fmt.Sprintf("transcript of %s (%d bytes)", rec.Filename, len(audio))
	}
	switch rec.Format {
	case "", "json":
		writeJSON(w, http.StatusOK, map[string]any{"text": text})
	case "verbose_json":
		writeJSON(w, http.StatusOK, map[string]any{
			"task": "transcribe", "language": "english", "duration": 0, "text": text, "segments": []any{},
		})
	case "text", "srt", "vtt":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, text+"\n")
	default:
		openAIError(w, http.StatusBadRequest, "unsupported response_format")
	}
}

// speech answers POST /v1/audio/speech with silent audio whose length grows
// with the input: mp3 (default), opus (Ogg), wav or pcm.
func (s *Server) speech(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Auth: bearer(r)}
	if !rec.Auth {
		s.record(rec)
		openAIError(w, http.StatusUnauthorized, "You didn't provide an API key.")
		return
	}
	var req struct {
		Model          string `json:"model"`
		Input          string `json:"input"`
		Voice          string `json:"voice"`
		ResponseFormat string `json:"response_format"`
	}
	if !decodeJSON(w, r, &req) {
		s.record(rec)
		return
	}
	rec.Model, rec.Input, rec.Voice, rec.Format = req.Model, req.Input, req.Voice, req.ResponseFormat
	st := s.record(rec)
	if req.Model == "" || req.Input == "" || req.Voice == "" {
		openAIError(w, http.StatusBadRequest, "model, input and voice are required")
		return
	}
	if !s.wait(r, st) || stepError(w, st) {
		return
	}
	d := speechDuration(req.Input)
	var audio []byte
	var mime string
	switch req.ResponseFormat {
	case "", "mp3":
		audio, mime = SilentMP3(d), "audio/mpeg"
	case "opus":
		audio, mime = SilentOggOpus(d), "audio/ogg"
	case "wav":
		audio, mime = silentWAV(d), "audio/wav"
	case "pcm":
		audio, mime = make([]byte, pcmBytes(d)), "audio/pcm"
	default:
		openAIError(w, http.StatusBadRequest, "the emulator supports mp3, opus, wav and pcm")
		return
	}
	w.Header().Set("Content-Type", mime)
	_, _ = w.Write(audio)
}

// speechDuration is about 60 ms per character, at least half a second.
func speechDuration(text string) time.Duration {
	return max(time.Duration(utf8.RuneCountInString(text))*60*time.Millisecond, 500*time.Millisecond)
}

// elevenLabs answers POST /v1/text-to-speech/{voice_id} with MP3, checking
// the xi-api-key header. Errors use ElevenLabs' {"detail":{...}} shape.
func (s *Server) elevenLabs(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Voice: r.PathValue("voice_id"), Auth: r.Header.Get("xi-api-key") != ""}
	if !rec.Auth {
		s.record(rec)
		elevenLabsError(w, http.StatusUnauthorized, "invalid_api_key", "Invalid API key")
		return
	}
	var req struct {
		Text    string `json:"text"`
		ModelID string `json:"model_id"`
	}
	if !decodeJSON(w, r, &req) {
		s.record(rec)
		return
	}
	rec.Model, rec.Input = req.ModelID, req.Text
	st := s.record(rec)
	if req.Text == "" {
		elevenLabsError(w, http.StatusUnprocessableEntity, "invalid_request", "text is required")
		return
	}
	if !s.wait(r, st) {
		return
	}
	if st.Status != 0 && (st.Status < 200 || st.Status >= 300) {
		if st.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		elevenLabsError(w, st.Status, "emulated", fmt.Sprintf("emulated status %d", st.Status))
		return
	}
	w.Header().Set("Content-Type", "audio/mpeg")
	_, _ = w.Write(SilentMP3(speechDuration(req.Text)))
}

func elevenLabsError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"detail": map[string]any{"status": code, "message": message}})
}

// models answers GET /v1/models with every model scripted or asked for.
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, Auth: bearer(r)}
	s.mu.Lock()
	seen := make(map[string]bool)
	for m := range s.scripts {
		seen[m] = true
	}
	for _, q := range s.reqs {
		if q.Model != "" {
			seen[q.Model] = true
		}
	}
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()
	if !rec.Auth {
		openAIError(w, http.StatusUnauthorized, "You didn't provide an API key.")
		return
	}
	ids := make([]string, 0, len(seen))
	for m := range seen {
		ids = append(ids, m)
	}
	sort.Strings(ids)
	data := make([]any, 0, len(ids))
	for _, id := range ids {
		data = append(data, map[string]any{"id": id, "object": "model", "created": 0, "owned_by": "aitest"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}
