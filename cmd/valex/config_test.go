package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestCheckReportsEveryProblemAtOnce(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "valex.toml")
	notADir := filepath.Join(dir, "plain-file")
	os.WriteFile(notADir, []byte("x"), 0o600)
	os.WriteFile(file, []byte(`
data_dir = "`+notADir+`/data"
admins = [1]
colour = "blue"
[telegram]
token = "not-a-token"
poll_timeout = "90s"
[log]
format = "xml"
[jobs]
backup = "every night"
`), 0o600)
	var out bytes.Buffer
	err := run(context.Background(), []string{"check"}, nil, &out, &out, envFrom(map[string]string{"VALEX_CONFIG": file, "VALEX_SUPPORT": "12,abc"}))
	if err == nil {
		t.Fatal("check passed a broken configuration")
	}
	for _, want := range []string{`unknown key "colour"`, "BotFather's format", "poll_timeout", `log format "xml"`, "VALEX_SUPPORT", `"abc"`, "jobs backup"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "not-a-token") {
		t.Error("check printed the token value")
	}
}

func TestCheckNamesUnwritableDataDirAndMissingToken(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "plain-file")
	os.WriteFile(notADir, []byte("x"), 0o600)
	var out bytes.Buffer
	err := run(context.Background(), []string{"check"}, nil, &out, &out, envFrom(map[string]string{"VALEX_DATA_DIR": notADir + "/data"}))
	if err == nil || !strings.Contains(out.String(), "VALEX_TELEGRAM_TOKEN") || !strings.Contains(out.String(), "data dir") {
		t.Fatalf("err=%v output:\n%s", err, out.String())
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "valex.toml")
	os.WriteFile(file, []byte("data_dir = \"/from/file\"\nadmins = [5]\n[log]\nlevel = \"debug\"\n"), 0o600)
	cfg, err := LoadConfig(envFrom(map[string]string{
		"VALEX_CONFIG": file, "VALEX_DATA_DIR": dir, "VALEX_ADMINS": "7, 8",
		"VALEX_TELEGRAM_TOKEN": testToken,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != dir || len(cfg.Admins) != 2 || cfg.Admins[1] != 8 || cfg.Log.Level != "debug" || cfg.Telegram.Token != testToken {
		t.Fatalf("config = %+v", cfg)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check"}, nil, &out, &out, envFrom(map[string]string{"VALEX_CONFIG": file, "VALEX_DATA_DIR": dir, "VALEX_TELEGRAM_TOKEN": testToken})); err != nil {
		t.Fatalf("valid configuration refused: %v\n%s", err, out.String())
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	_, err := LoadConfig(envFrom(map[string]string{"VALEX_CONFIG": "../../valex.example.toml"}))
	if err != nil {
		t.Fatalf("valex.example.toml: %v", err)
	}
}

func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	env := envFrom(map[string]string{"VALEX_DATA_DIR": dir})
	cfg, _ := LoadConfig(env)
	db, err := openStoreAt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db.PutUser(userNamed(1, "before"))
	db.Close()
	backupFile := filepath.Join(t.TempDir(), "copy.db")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", backupFile}, nil, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	db, _ = openStoreAt(cfg)
	db.PutUser(userNamed(1, "after"))
	db.Close()
	if err := run(context.Background(), []string{"restore", backupFile}, nil, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	db, _ = openStoreAt(cfg)
	if u, err := db.User(1); err != nil || u.Nickname != "before" {
		t.Fatalf("after restore: %+v %v", u, err)
	}
	db.Close()
	if err := run(context.Background(), []string{"restore", filepath.Join(dir, "nope.db")}, nil, &out, &out, env); err == nil {
		t.Fatal("restoring a missing file succeeded")
	}
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600)
	if err := run(context.Background(), []string{"restore", garbage}, nil, &out, &out, env); err == nil {
		t.Fatal("restoring a file that is not a database succeeded")
	}
	db, _ = openStoreAt(cfg)
	defer db.Close()
	if u, err := db.User(1); err != nil || u.Nickname != "before" {
		t.Fatalf("after a refused restore: %+v %v", u, err)
	}
}

// valex.example.toml is the annotated defaults: every value in it equals
// what the binary uses when the key is absent.
func TestExampleEqualsTheDefaults(t *testing.T) {
	ex, err := LoadConfig(envFrom(map[string]string{"VALEX_CONFIG": "../../valex.example.toml"}))
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	ex.path = ""
	ex.AI, d.AI = ex.AI.withDefaults(), d.AI.withDefaults()
	if len(ex.Admins) == 0 && len(d.Admins) == 0 {
		ex.Admins, d.Admins = nil, nil
	}
	if len(ex.Support) == 0 && len(d.Support) == 0 {
		ex.Support, d.Support = nil, nil
	}
	ev, dv := reflect.ValueOf(ex), reflect.ValueOf(d)
	for i := 0; i < ev.NumField(); i++ {
		f := ev.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if !reflect.DeepEqual(ev.Field(i).Interface(), dv.Field(i).Interface()) {
			t.Errorf("valex.example.toml [%s] differs from the defaults:\n example  %+v\n defaults %+v", f.Name, ev.Field(i).Interface(), dv.Field(i).Interface())
		}
	}
}
