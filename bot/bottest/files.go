package bottest

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// maxDownload is the Bot API's limit for getFile: bigger files exist but
// cannot be downloaded by bots.
const maxDownload = 20 << 20

// storedFile is a file Telegram holds. data is immutable once stored, so it
// is served without holding the lock.
type storedFile struct {
	id, uniqueID string
	path         string // file_path for getFile and downloads
	name, mime   string
	data         []byte // nil for AddFileSized files
	size         int64
	width        int // photos
	height       int
}

// newFileLocked registers a file under dir with a fresh file_id.
func (s *Server) newFileLocked(dir, ext string, data []byte, size int64) *storedFile {
	s.fileSeq++
	n := s.fileSeq
	f := &storedFile{
		// Opaque, long and unique like Telegram's ids, but deterministic.
		id:       fmt.Sprintf("BQACAgIAAxkBAAI%08dAAE", n),
		uniqueID: fmt.Sprintf("AgAD%06d", n),
		path:     dir + "/file_" + strconv.Itoa(n) + strings.ToLower(ext),
		data:     data,
		size:     size,
	}
	s.files[f.id] = f
	s.filesByPath[f.path] = f
	return f
}

// AddFile stores data as a file Telegram already holds (e.g. for sending
// by file_id) and returns its file_id. path is its file_path; empty picks
// one.
func (s *Server) AddFile(data []byte, path string) (fileID string) {
	return s.addFile(data, int64(len(data)), path)
}

// AddFileSized stores a file that only reports size, without holding bytes:
// for testing files over the 20 MB download limit.
func (s *Server) AddFileSized(size int64, path string) (fileID string) {
	return s.addFile(nil, size, path)
}

func (s *Server) addFile(data []byte, size int64, p string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.newFileLocked("documents", path.Ext(p), data, size)
	if _, taken := s.filesByPath[p]; p != "" && !taken {
		delete(s.filesByPath, f.path)
		f.path = p
		s.filesByPath[p] = f
	}
	f.name = path.Base(f.path)
	return f.id
}

func getFile(s *Server, req *request, ev *Event) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[req.params.Get("file_id")]
	if !ok {
		return nil, badRequest("invalid file_id")
	}
	if f.size > maxDownload {
		return nil, badRequest("file is too big")
	}
	ev.FileName = f.path
	s.emitLocked(*ev)
	return wireFile{FileID: f.id, FileUniqueID: f.uniqueID, FileSize: f.size, FilePath: f.path}, nil
}

// serveFile answers GET {URL}/file/bot{token}/{file_path}. Downloads are
// recorded as events with Method "file".
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/file/bot")
	token, filePath, _ := strings.Cut(rest, "/")
	if token != s.token {
		writeError(w, errUnauthorized)
		return
	}
	s.mu.Lock()
	f, ok := s.filesByPath[filePath]
	if ok && f.size <= maxDownload {
		s.emitLocked(Event{Method: "file", FileName: filePath, Params: url.Values{"file_path": {filePath}}})
	}
	s.mu.Unlock()
	if !ok || f.size > maxDownload {
		writeError(w, errNotFound)
		return
	}
	mime := f.mime
	if mime == "" {
		mime = "application/octet-stream"
	}
	w.Header().Set("Content-Type", mime)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	w.Write(f.data)
}
