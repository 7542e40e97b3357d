package main

import (
	"time"

	"github.com/rs/zerolog"

	"github.com/valex-ai/valex"
	"github.com/valex-ai/valex/store"
)

// testStore is the database with its key store; Close closes both.
type testStore struct {
	*store.DB
	keys *store.Keys
}

func (s testStore) Close() error {
	err := s.DB.Close()
	if kerr := s.keys.Close(); err == nil {
		err = kerr
	}
	return err
}

// openStoreAt opens the data directory's database with its key store, as
// the bot does.
func openStoreAt(cfg Config) (testStore, error) {
	keys, db, err := openStores(cfg, zerolog.Nop(), time.Now)
	return testStore{db, keys}, err
}

func userNamed(id int64, nick string) valex.User {
	return valex.User{ID: id, Nickname: nick, Language: "en"}
}
