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

func TestOIDCSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret-of-the-client\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"ARCHIPELAGO_OIDC_ISSUER": "https://sso.example.org/realms/chatons",
		"ARCHIPELAGO_OIDC_CLIENT_ID": "archipelago", "ARCHIPELAGO_OIDC_CLIENT_SECRET_FILE": secret,
		"ARCHIPELAGO_OIDC_SCOPES": "openid, email groups", "ARCHIPELAGO_OIDC_ROLE_MAP": "a=federation-admin"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.OIDCEnabled() || c.OIDCClientSecret != "s3cret-of-the-client" || strings.Join(c.OIDCScopes, " ") != "openid email groups" ||
		c.OIDCGroupsClaim != "groups" || c.OIDCName != "SSO" {
		t.Errorf("OIDC settings read as %+v", c)
	}
	for _, kv := range c.Redacted() {
		if strings.Contains(kv[1], "s3cret") {
			t.Errorf("%s shows the client secret", kv[0])
		}
	}
	// Off unless the issuer is set; when set, the client and https are required.
	if c, err := Load(env(nil)); err != nil || c.OIDCEnabled() {
		t.Errorf("OIDC enabled without an issuer (%v)", err)
	}
	for _, c := range []struct {
		vars map[string]string
		name string
	}{
		{map[string]string{"ARCHIPELAGO_OIDC_ISSUER": "http://sso.example.org", "ARCHIPELAGO_OIDC_CLIENT_ID": "a", "ARCHIPELAGO_OIDC_CLIENT_SECRET": "s"}, "ARCHIPELAGO_OIDC_ISSUER"},
		{map[string]string{"ARCHIPELAGO_OIDC_ISSUER": "https://sso.example.org", "ARCHIPELAGO_OIDC_CLIENT_SECRET": "s"}, "ARCHIPELAGO_OIDC_CLIENT_ID"},
		{map[string]string{"ARCHIPELAGO_OIDC_ISSUER": "https://sso.example.org", "ARCHIPELAGO_OIDC_CLIENT_ID": "a"}, "ARCHIPELAGO_OIDC_CLIENT_SECRET"},
	} {
		if _, err := Load(env(c.vars)); err == nil || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%v: error %v does not name %s", c.vars, err, c.name)
		}
	}
	if _, err := Load(env(map[string]string{"ARCHIPELAGO_OIDC_ISSUER": "http://127.0.0.1:5556", "ARCHIPELAGO_OIDC_CLIENT_ID": "a",
		"ARCHIPELAGO_OIDC_CLIENT_SECRET": "s"})); err != nil {
		t.Errorf("a loopback http issuer (tests) is refused: %v", err)
	}
}
