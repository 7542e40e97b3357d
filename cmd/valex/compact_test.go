package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

func TestCompactCommand(t *testing.T) {
	dir := t.TempDir()
	env := envFrom(map[string]string{"VALEX_DATA_DIR": dir})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"compact"}, nil, &out, &out, env); err == nil || !strings.Contains(err.Error(), "nothing to compact") {
		t.Fatalf("compact without a database: %v", err)
	}

	cfg, _ := LoadConfig(env)
	db, err := openStoreAt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("d", 4000)
	for id := int64(1); id <= 60; id++ {
		u := userNamed(id, fmt.Sprint("nick", id))
		u.Description = long
		if err := db.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	for id := int64(1); id <= 50; id++ {
		if err := db.DeleteUser(id); err != nil {
			t.Fatal(err)
		}
	}

	// The bot is running (it holds the files): refused, with the hint.
	out.Reset()
	err = run(context.Background(), []string{"compact"}, nil, &out, &out, env)
	if err == nil || !strings.Contains(err.Error(), "is another valex running?") {
		t.Fatalf("compact beside a running bot: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := run(context.Background(), []string{"compact"}, nil, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	var before, after int64
	if _, err := fmt.Sscanf(out.String()[strings.Index(out.String(), ": ")+2:], "%d → %d bytes", &before, &after); err != nil || after >= before {
		t.Fatalf("output %q: sizes %d → %d, %v", out.String(), before, after, err)
	}
	db, err = openStoreAt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.CountUsers(); err != nil || n != 10 {
		t.Fatalf("%d users after compaction, %v; want 10", n, err)
	}
	if u, err := db.User(60); err != nil || u.Nickname != "nick60" {
		t.Fatalf("user 60 = %+v, %v", u, err)
	}
}
