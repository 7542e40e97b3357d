package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The systemd unit passes systemd-analyze verify (when systemd's tools are
// installed: .ci/run installs them), against a real valex binary in place of
// /usr/local/bin/valex, and keeps its hardening.
func TestSystemdUnitVerifies(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/valex.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "StateDirectory=valex", "ProtectSystem=strict", "NoNewPrivileges=yes",
		"PrivateTmp=yes", "Restart=on-failure", "EnvironmentFile=", "ExecStart=/usr/local/bin/valex run"} {
		if !bytes.Contains(unit, []byte(want)) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "valex")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	env := filepath.Join(dir, "valex.env")
	os.WriteFile(env, []byte("VALEX_TELEGRAM_TOKEN=x\n"), 0o600)
	patched := strings.ReplaceAll(string(unit), "/usr/local/bin/valex", bin)
	patched = strings.ReplaceAll(patched, "/etc/valex/valex.env", env)
	path := filepath.Join(dir, "valex.service")
	if err := os.WriteFile(path, []byte(patched), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The Dockerfile builds a static binary, runs as non-root with the data on
// a volume, and checks /healthz with valex healthcheck, which answers for
// a running bot and fails without one.
func TestDockerfileAndHealthcheck(t *testing.T) {
	df, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "VOLUME [\"/data\"]", "HEALTHCHECK", "valex\", \"healthcheck\""} {
		if !bytes.Contains(df, []byte(want)) {
			t.Errorf("the Dockerfile lacks %s", want)
		}
	}
	a := startApp(t, nil)
	var out bytes.Buffer
	env := envFrom(map[string]string{"VALEX_HTTP_ADDR": a.m.HTTP.Addr().String()})
	if err := run(context.Background(), []string{"healthcheck"}, nil, &out, &out, env); err != nil || !strings.Contains(out.String(), "healthy") {
		t.Fatalf("healthcheck of a running bot: %v %q", err, out.String())
	}
	a.stop()
	if err := run(context.Background(), []string{"healthcheck"}, nil, &out, &out, env); err == nil {
		t.Fatal("healthcheck passed with the bot stopped")
	}
}
