package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) Getenv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.PublicURL != "http://"+DefaultListen || c.SecureCookies() {
		t.Fatalf("%+v", c)
	}
}

func TestFileVariantsForSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := filepath.Join(dir, "db")
	os.WriteFile(f, []byte("postgres://a:b@h/d\n"), 0o600)
	c, err := Load(env(map[string]string{"ARCHIPELAGO_DATABASE_URL_FILE": f}))
	if err != nil || c.DatabaseURL != "postgres://a:b@h/d" {
		t.Fatalf("%v %q", err, c.DatabaseURL)
	}
	_, err = Load(env(map[string]string{"ARCHIPELAGO_DATABASE_URL_FILE": filepath.Join(dir, "missing")}))
	if err == nil || !strings.Contains(err.Error(), "ARCHIPELAGO_DATABASE_URL_FILE") {
		t.Fatalf("err = %v", err)
	}
	_, err = Load(env(map[string]string{"ARCHIPELAGO_JWT_KEY": "x", "ARCHIPELAGO_JWT_KEY_FILE": f}))
	if err == nil || !strings.Contains(err.Error(), "keep one") {
		t.Fatalf("both set: err = %v", err)
	}
}

func TestEveryProblemNamesItsVariable(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"ARCHIPELAGO_LISTEN":             "8080",
		"ARCHIPELAGO_PUBLIC_URL":         "ftp://x",
		"ARCHIPELAGO_LOG_FORMAT":         "xml",
		"ARCHIPELAGO_AUTO_MIGRATE":       "maybe",
		"ARCHIPELAGO_MAX_BODY_BYTES":     "12",
		"ARCHIPELAGO_DB_CONNECT_TIMEOUT": "soon",
		"ARCHIPELAGO_DATABASE_URL":       "mysql://x",
		"ARCHIPELAGO_JWT_KEY":            "short",
		"ARCHIPELAGO_TRUSTED_PROXIES":    "10.0.0.1, proxy.example",
	}
	_, err := Load(env(bad))
	if err == nil {
		t.Fatal("accepted")
	}
	for k := range bad {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s: %v", k, err)
		}
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"ARCHIPELAGO_DATABASE_URL": "postgres://u:pw-secret@h/d", "ARCHIPELAGO_MASTER_KEY": "k-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range c.Redacted() {
		if strings.Contains(kv[1], "secret") {
			t.Errorf("%s shows a secret: %s", kv[0], kv[1])
		}
	}
	if len(c.Redacted()) != len(Vars) {
		t.Error("Redacted does not list every variable")
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"ARCHIPELAGO_TRUSTED_PROXIES": " 127.0.0.1, 10.1.2.3/8 ,::1,"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := prefixes(c.TrustedProxies); got != "127.0.0.1/32,10.0.0.0/8,::1/128" {
		t.Errorf("trusted proxies %s", got)
	}
}
