package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex/store"
)

// File names in the data directory.
const (
	dbFile        = "valex.db"
	keysFile      = "keys.db"
	masterKeyFile = "master.key"
)

// openStores opens the key store and then the database sealed with it.
// The key store is a file of its own (keys.db), never inside valex.db or
// its backups: deleting a user's key there is what erases their data from
// every copy. A database that belongs to a key store is never opened
// without it, nor with a wrong master key: both are refused before
// anything is written.
func openStores(cfg Config, log zerolog.Logger, now func() time.Time) (*store.Keys, *store.DB, error) {
	keys, err := openKeys(cfg, log, false)
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, dbFile), store.Options{
		Codec: keys, AuditKey: keys.AuditKey(), Now: now,
		// An upgrade migrates at start-up, after a compacted copy of the old file.
		BackupBeforeMigrate: filepath.Join(cfg.DataDir, "backups"),
	})
	if err != nil {
		keys.Close()
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	if n := db.Swept(); n > 0 {
		log.Warn().Int("accounts", n).Msg("removed the records of erased accounts (their keys are gone): a restored backup or an interrupted erasure")
	}
	return keys, db, nil
}

// openKeys opens keys.db in the data directory with the master key. A new
// key store is created only when valex.db does not belong to one yet.
func openKeys(cfg Config, log zerolog.Logger, readOnly bool) (*store.Keys, error) {
	dbPath := filepath.Join(cfg.DataDir, dbFile)
	keysPath := filepath.Join(cfg.DataDir, keysFile)
	bound, err := store.KeysID(dbPath, time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w (is another valex running on %s?)", err, cfg.DataDir)
	}
	_, statErr := os.Stat(keysPath)
	keysExist := statErr == nil
	if bound != "" && !keysExist {
		return nil, fmt.Errorf("%s is encrypted but its key store %s is missing: restore keys.db (and the master key) from where you keep them; without them the personal data cannot be read", dbPath, keysPath)
	}
	master, err := masterKey(cfg, log, keysExist || bound != "" || readOnly)
	if err != nil {
		return nil, err
	}
	keys, err := store.OpenKeys(keysPath, master, store.KeysOptions{Create: bound == "", ReadOnly: readOnly, Timeout: time.Second})
	if errors.Is(err, store.ErrWrongMasterKey) {
		return nil, fmt.Errorf("%s: %w (check VALEX_MASTER_KEY or %s)", keysPath, err, filepath.Join(cfg.DataDir, masterKeyFile))
	}
	if err != nil {
		return nil, err
	}
	if bound != "" && bound != keys.ID() {
		keys.Close()
		return nil, fmt.Errorf("%s belongs to another key store than %s", dbPath, keysPath)
	}
	return keys, nil
}

// masterKey returns VALEX_MASTER_KEY (base64 of 32 bytes) or the key in
// master.key in the data directory. With neither, and nothing yet
// encrypted, it generates one into master.key (mode 0600) and warns where
// it is: losing it loses the personal data.
func masterKey(cfg Config, log zerolog.Logger, mustExist bool) ([]byte, error) {
	if cfg.MasterKey != "" {
		return decodeMasterKey(cfg.MasterKey, "VALEX_MASTER_KEY")
	}
	path := filepath.Join(cfg.DataDir, masterKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return decodeMasterKey(string(b), path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if mustExist {
		return nil, fmt.Errorf("no master key: set VALEX_MASTER_KEY or put %s back; the key store cannot be opened without it", path)
	}
	key := make([]byte, store.MasterKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	text := base64.StdEncoding.EncodeToString(key) + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("write master key: %w", err)
	}
	log.Warn().Str("path", path).Msg("generated a new master key: keep a copy apart from the data and its backups (or move it into VALEX_MASTER_KEY); losing it loses every user's personal data")
	return key, nil
}

func decodeMasterKey(text, from string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != store.MasterKeyLen {
		return nil, fmt.Errorf("%s: the master key must be base64 of %d bytes (openssl rand -base64 32)", from, store.MasterKeyLen)
	}
	return key, nil
}
