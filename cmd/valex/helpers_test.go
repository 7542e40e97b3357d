package main

import (
	"path/filepath"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
)

func openStoreAt(cfg Config) (*store.DB, error) {
	return store.Open(filepath.Join(cfg.DataDir, "valex.db"), store.Options{})
}

func userNamed(id int64, nick string) valex.User {
	return valex.User{ID: id, Nickname: nick, Language: "en"}
}
