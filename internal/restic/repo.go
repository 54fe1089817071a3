package restic

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Repo says how to reach one restic repository. Its secrets (Password and the
// S3 keys) are only ever put in the restic child's environment: never in argv,
// never in logs. String, GoString and LogValue redact them, and they are not
// marshalled to JSON.
type Repo struct {
	// URL is the repository location as restic understands it, for example
	// "s3:http://127.0.0.1:9000/bucket/prefix" or a local directory.
	URL string
	// Password is the repository password (RESTIC_PASSWORD).
	Password string `json:"-"`
	// S3AccessKey and S3SecretKey are the S3 credentials
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); required for s3: URLs.
	S3AccessKey string `json:"-"`
	S3SecretKey string `json:"-"`
	// S3Region is passed as AWS_DEFAULT_REGION. Garage expects its
	// configured s3_region (often "garage"); leave empty for MinIO.
	S3Region string
	// CacheDir is restic's cache directory (RESTIC_CACHE_DIR). When empty,
	// Config.CacheDir is used, and when that is empty too restic runs with
	// --no-cache.
	CacheDir string
	// KeyHint is the id (or a unique prefix) of the repository key Password
	// opens (RESTIC_KEY_HINT), when known: restic tries it first. Without it
	// restic tries the keys in listing order, each costing a key derivation
	// (scrypt, calibrated to about half a second of CPU) until one opens. A
	// hint that names no key, or a key of another password, only costs that
	// try: restic then tries the keys as without it. Not a secret.
	KeyHint string
}

const redacted = "[REDACTED]"

// validate reports a Repo that restic would refuse or prompt for.
func (r Repo) validate() error {
	if r.URL == "" {
		return errors.New("repository URL is empty")
	}
	if r.Password == "" {
		return errors.New("repository password is empty")
	}
	if r.isS3() && (r.S3AccessKey == "" || r.S3SecretKey == "") {
		return errors.New("s3 repository needs both S3AccessKey and S3SecretKey")
	}
	return nil
}

func (r Repo) isS3() bool { return strings.HasPrefix(r.URL, "s3:") }

// secrets returns the non-empty secret values, for scrubbing captured output.
func (r Repo) secrets() []string {
	var out []string
	for _, s := range []string{r.Password, r.S3AccessKey, r.S3SecretKey} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// redactedURL hides a password embedded in the URL (rest:https://u:p@host/).
func (r Repo) redactedURL() string {
	scheme, rest, ok := strings.Cut(r.URL, ":")
	if !ok || !strings.Contains(rest, "@") {
		return r.URL
	}
	u, err := url.Parse(rest)
	if err != nil || u.User == nil {
		// Cannot tell where the user info ends: hide everything after the scheme.
		return scheme + ":" + redacted
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	return scheme + ":" + u.String()
}

// String describes the repository without its secrets.
func (r Repo) String() string {
	return fmt.Sprintf("restic repository %s (password %s, s3 keys %s)",
		r.redactedURL(), setOrNot(r.Password), setOrNot(r.S3AccessKey+r.S3SecretKey))
}

// GoString keeps %#v from printing the secrets.
func (r Repo) GoString() string {
	return fmt.Sprintf("restic.Repo{URL: %q, Password: %q, S3AccessKey: %q, S3SecretKey: %q, S3Region: %q, CacheDir: %q, KeyHint: %q}",
		r.redactedURL(), mask(r.Password), mask(r.S3AccessKey), mask(r.S3SecretKey), r.S3Region, r.CacheDir, r.KeyHint)
}

// LogValue implements slog.LogValuer: the URL, region and cache directory,
// and only whether each secret is set.
func (r Repo) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("url", r.redactedURL()),
		slog.String("password", mask(r.Password)),
		slog.String("s3_access_key", mask(r.S3AccessKey)),
		slog.String("s3_secret_key", mask(r.S3SecretKey)),
		slog.String("s3_region", r.S3Region),
		slog.String("cache_dir", r.CacheDir),
		slog.String("key_hint", r.KeyHint),
	)
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

func setOrNot(s string) string {
	if s == "" {
		return "not set"
	}
	return "set"
}
