package main

// The control socket: commands that must work while the bot runs (it holds
// bbolt's file locks) go through the running instance. `valex run` listens
// on {data_dir}/valex.sock (mode 0600: only the bot's own user) and answers
// one JSON request per connection; the CLI tries the socket first and opens
// the files itself when no instance answers.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const controlFile = "valex.sock"

type controlRequest struct {
	Cmd  string `json:"cmd"`
	File string `json:"file,omitempty"`
}

type controlResponse struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

// openControl listens on the control socket; a stale socket left by a
// crash (nobody answers on it) is replaced.
func (m *Main) openControl() error {
	path := filepath.Join(m.Config.DataDir, controlFile)
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("another valex answers on %s: stop it first (one instance per data directory)", path)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	m.control = l
	pid := strconv.Itoa(os.Getpid())
	_ = os.WriteFile(filepath.Join(m.Config.DataDir, "valex.pid"), []byte(pid+"\n"), 0o600)
	go m.serveControl(l)
	return nil
}

func (m *Main) serveControl(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Minute))
			var req controlRequest
			resp := controlResponse{}
			if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
				resp.Error = "bad request"
			} else if msg, err := m.control1(req); err != nil {
				resp.Error, resp.Message = err.Error(), msg // a report may come with its failure
			} else {
				resp.OK, resp.Message = true, msg
			}
			_ = json.NewEncoder(c).Encode(resp)
		}()
	}
}

// control1 runs one request inside the running instance.
func (m *Main) control1(req controlRequest) (string, error) {
	switch req.Cmd {
	case "backup":
		if !filepath.IsAbs(req.File) {
			return "", errors.New("backup: the file must be an absolute path")
		}
		if _, err := os.Stat(req.File); err == nil {
			return "", fmt.Errorf("%s exists: choose a new file name", req.File)
		}
		n, err := m.DB.Backup(req.File)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("backed up to %s (%d bytes) by the running bot", req.File, n), nil
	case "export-user":
		id, err := parseUserID(req.File)
		if err != nil {
			return "", err
		}
		if _, err := m.DB.User(id); err != nil {
			return "", nil // no such user: nothing to print
		}
		doc, _, err := m.Desk.AccessExport(id, 0, m.Clock.Now())
		if err != nil {
			return "", err
		}
		return string(doc) + "\n", nil
	case "audit-verify":
		var out strings.Builder
		if req.File == "" {
			err := auditReport(m.DB, &out)
			return out.String(), err
		}
		err := verifyAudit(req.File, m.Keys.AuditKey(), &out)
		return out.String(), err
	case "whois-log":
		id, err := parseUserID(req.File)
		if err != nil {
			return "", err
		}
		return m.IDs.User(id) + "\n", nil
	case "ping":
		return "pong", nil
	}
	return "", fmt.Errorf("unknown control command %q", req.Cmd)
}

// viaRunning sends a request to the running instance; ok is false when no
// instance answers (the caller then opens the files itself).
func viaRunning(dataDir string, req controlRequest) (msg string, ok bool, err error) {
	c, err := net.DialTimeout("unix", filepath.Join(dataDir, controlFile), time.Second)
	if err != nil {
		return "", false, nil
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return "", true, err
	}
	var resp controlResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return "", true, fmt.Errorf("the running valex did not answer: %w", err)
	}
	if !resp.OK {
		return resp.Message, true, errors.New(resp.Error)
	}
	return resp.Message, true, nil
}

// lockHint explains a store that would not open because another process
// holds it.
func lockHint(dataDir string, err error) error {
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		return err
	}
	pid, _ := os.ReadFile(filepath.Join(dataDir, "valex.pid"))
	who := "another valex"
	if p := strings.TrimSpace(string(pid)); p != "" {
		who += " (pid " + p + ")"
	}
	return fmt.Errorf("%w\n%s holds %s: stop it first, or use a command that works while it runs (valex backup FILE goes through it)", err, who, dataDir)
}
