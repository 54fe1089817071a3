package restic

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatons/archipelago/internal/testenv"
)

func TestProgressThrottle(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		every time.Duration
		at    []time.Duration // arrival times after t0
		want  []bool
	}{
		{"first passes", time.Second, []time.Duration{0}, []bool{true}},
		{"burst is cut", time.Second, []time.Duration{0, 100 * time.Millisecond, 900 * time.Millisecond}, []bool{true, false, false}},
		{"one per interval", time.Second, []time.Duration{0, time.Second, 1500 * time.Millisecond, 2 * time.Second}, []bool{true, true, false, true}},
		{"interval counts from the last delivered", time.Second, []time.Duration{0, 999 * time.Millisecond, 1999 * time.Millisecond}, []bool{true, false, true}},
		{"zero interval passes all", 0, []time.Duration{0, 0, time.Millisecond}, []bool{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := progressThrottle{every: tt.every}
			for i, at := range tt.at {
				if got := p.allow(t0.Add(at)); got != tt.want[i] {
					t.Errorf("event %d at %v: allow = %v, want %v", i, at, got, tt.want[i])
				}
			}
		})
	}
}

func TestSplitLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	input := "a\r\n" + long + "\nb\n" + long + long + "\nc"
	sc := bufio.NewScanner(strings.NewReader(input))
	sc.Buffer(make([]byte, 0, 16), 64)
	sc.Split(splitLines(64))
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scanner stopped: %v", err)
	}
	want := []string{"a", long[:64], "b", long[:64], "c"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	tb := &tailBuffer{max: 1024}
	for i := range 500 {
		tb.add(fmt.Appendf(nil, "line %03d", i))
	}
	s := tb.String()
	if len(s) > 1024 || !strings.HasSuffix(s, "line 499") || !strings.HasPrefix(s, "line ") {
		t.Errorf("tail = %q", s)
	}
}

func TestRepoRedaction(t *testing.T) {
	t.Parallel()
	repo := Repo{
		URL:         "rest:https://user:hunter2pass@backup.example/repo",
		Password:    "repo-password-123",
		S3AccessKey: "GKACCESSKEY",
		S3SecretKey: "s3-secret-456",
		S3Region:    "garage",
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "repo", repo)
	outputs := map[string]string{
		"String":   repo.String(),
		"%v":       fmt.Sprintf("%v", repo),
		"%+v":      fmt.Sprintf("%+v", repo),
		"%#v":      fmt.Sprintf("%#v", repo),
		"%s":       fmt.Sprintf("%s", repo),
		"slog":     logs.String(),
		"error %v": fmt.Errorf("open %v", repo).Error(),
	}
	for name, out := range outputs {
		for _, secret := range []string{"hunter2pass", repo.Password, repo.S3AccessKey, repo.S3SecretKey} {
			if strings.Contains(out, secret) {
				t.Errorf("%s leaks %q: %s", name, secret, out)
			}
		}
		if !strings.Contains(out, "backup.example/repo") {
			t.Errorf("%s lost the URL: %s", name, out)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	exit := func(code int, err error) error {
		return fmt.Errorf("verify: %w", &Error{Command: "check", ExitCode: code, Err: err})
	}
	tests := []struct {
		err  error
		want Fault
	}{
		{nil, FaultNone},
		{errors.New("something"), FaultOperational},
		{ErrBinaryNotFound, FaultOperational},
		{ErrUnsupportedVersion, FaultOperational},
		{exit(1, ErrFatal), FaultOperational},
		{exit(3, ErrIncomplete), FaultOperational},
		{exit(10, ErrRepositoryNotFound), FaultAccess},
		{exit(11, ErrLocked), FaultOperational},
		{exit(12, ErrWrongPassword), FaultAccess},
		{exit(130, ErrInterrupted), FaultOperational},
		{exit(2, ErrFailed), FaultOperational},
		{exit(1, ErrRepositoryDamaged), FaultRepository},
		{exit(1, ErrRestoreErrors), FaultRepository},
		{exit(1, ErrSnapshotNotFound), FaultAccess},
		{exit(1, ErrAccessDenied), FaultAccess},
		{context.Canceled, FaultOperational},
		{exit(1, fmt.Errorf("%w: %w", ErrRepositoryDamaged, context.Canceled)), FaultOperational},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	// The exit code's sentinel is always reachable.
	err := exit(1, ErrRepositoryDamaged)
	if !errors.Is(err, ErrFatal) || !errors.Is(err, ErrRepositoryDamaged) {
		t.Errorf("%v does not wrap both ErrFatal and ErrRepositoryDamaged", err)
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	e := &Error{Command: "snapshots", ExitCode: 12, Message: "Fatal: wrong password or no key found", Tail: "line1\nline2", Err: ErrWrongPassword}
	want := "restic snapshots: exit code 12: restic wrong password or no key found (exit 12): Fatal: wrong password or no key found (output: line1 | line2)"
	if e.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", e.Error(), want)
	}
}

func TestCheckDamageNeedsMoreThanTransportErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		res  CheckResult
		want bool
	}{
		{CheckResult{CheckSummary: CheckSummary{BrokenPacks: []string{"ab"}}}, true},
		{CheckResult{Findings: []string{"pack ab: ciphertext verification failed"}}, true},
		{CheckResult{Findings: []string{`ReadFull(<data/ab>): Get "http://s3/x": dial tcp 127.0.0.1:9000: connect: connection refused`}}, false},
		// The island's own failures are not damage (issue 13): Garage without quorum, a
		// 503, a body cut short, a reset, a TLS or DNS failure.
		{CheckResult{Findings: []string{"Load(<data/503abc>, 0, 0) failed: Could not reach quorum of 2. 1 of 3 request succeeded"}}, false},
		{CheckResult{Findings: []string{"pack 503abc: download error: 503 Service Unavailable"}}, false},
		{CheckResult{Findings: []string{"ServiceUnavailable: Please reduce your request rate."}}, false},
		{CheckResult{Findings: []string{"pack 1234: download error: unexpected EOF"}}, false},
		{CheckResult{Findings: []string{"read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer"}}, false},
		{CheckResult{Findings: []string{`Get "https://s3.island/x": net/http: TLS handshake timeout`}}, false},
		{CheckResult{Findings: []string{"dial tcp: lookup s3.island on 10.0.0.1:53: server misbehaving"}}, false},
		{CheckResult{Findings: []string{"circuit breaker open for file <data/ab>"}}, false},
		// A pack ID that happens to contain "503" is still damage.
		{CheckResult{Findings: []string{"pack 5035035035: ciphertext verification failed"}}, true},
		{CheckResult{}, false},
	}
	for _, tt := range tests {
		if got := checkFoundDamage(&tt.res); got != tt.want {
			t.Errorf("checkFoundDamage(%+v) = %v, want %v", tt.res, got, tt.want)
		}
	}
}

// TestStorageWatchStopsARequestThatKeepsFailing: restic's retry reports of one request
// start a streak; a success or restic giving up ends it; a streak longer than the limit
// is an ErrStorageUnavailable naming the request and its error.
func TestStorageWatchStopsARequestThatKeepsFailing(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := storageWatch{limit: 10 * time.Second}
	w.see("Load(<data/ab12>, 0, 0) returned error, retrying after 1.1s: 503 Service Unavailable", t0)
	w.see("Load(<data/cd34>, 0, 0) returned error, retrying after 1s: unexpected EOF", t0.Add(time.Second))
	if err := w.overdue(t0.Add(9 * time.Second)); err != nil {
		t.Fatalf("within the limit: %v", err)
	}
	w.see("Load(<data/ab12>, 0, 0) operation successful after 3 retries", t0.Add(9*time.Second))
	if err := w.overdue(t0.Add(10500 * time.Millisecond)); err != nil {
		t.Fatalf("the first request succeeded, the second is within the limit: %v", err)
	}
	err := w.overdue(t0.Add(12 * time.Second))
	if !errors.Is(err, ErrStorageUnavailable) || !strings.Contains(err.Error(), "Load(<data/cd34>, 0, 0)") ||
		!strings.Contains(err.Error(), "unexpected EOF") || Classify(err) != FaultOperational {
		t.Fatalf("overdue: %v", err)
	}
	w.see("Load(<data/cd34>, 0, 0) failed: unexpected EOF", t0.Add(13*time.Second))
	if err := w.overdue(t0.Add(time.Hour)); err != nil {
		t.Fatalf("restic gave up on the request: its own error decides: %v", err)
	}
	off := storageWatch{}
	off.see("Load(<data/ab12>, 0, 0) returned error, retrying after 1s: x", t0)
	if err := off.overdue(t0.Add(time.Hour)); err != nil {
		t.Fatalf("no limit: %v", err)
	}
}

func TestChildEnv(t *testing.T) {
	t.Parallel()
	parent := []string{
		"PATH=/usr/bin", "HOME=/root", "TMPDIR=/var/tmp", "LANG=C.UTF-8",
		"RESTIC_PASSWORD=parent-password", "RESTIC_REPOSITORY=/parent/repo", "RESTIC_PASSWORD_COMMAND=cat /etc/shadow",
		"AWS_ACCESS_KEY_ID=parent-key", "AWS_SECRET_ACCESS_KEY=parent-secret", "AWS_PROFILE=prod",
		"ARCHIPELAGO_DATABASE_URL=postgres://secret",
	}
	repo := &Repo{URL: "s3:http://127.0.0.1:9000/b/p", Password: "pw", S3AccessKey: "ak", S3SecretKey: "sk", S3Region: "garage"}
	env := childEnv(parent, "", time.Second, "/cache", repo)
	want := []string{
		"PATH=/usr/bin", "LANG=C.UTF-8", "TMPDIR=/var/tmp", "TZ=UTC", "RESTIC_PROGRESS_FPS=1",
		"RESTIC_REPOSITORY=s3:http://127.0.0.1:9000/b/p", "RESTIC_PASSWORD=pw",
		"AWS_ACCESS_KEY_ID=ak", "AWS_SECRET_ACCESS_KEY=sk", "AWS_DEFAULT_REGION=garage", "RESTIC_CACHE_DIR=/cache",
	}
	if !slices.Equal(env, want) {
		t.Errorf("env =\n%q\nwant\n%q", env, want)
	}
	// The key to try first, when known.
	hinted := *repo
	hinted.KeyHint = "0123abcd"
	if env := childEnv(parent, "", time.Second, "/cache", &hinted); !slices.Equal(env, append(want, "RESTIC_KEY_HINT=0123abcd")) {
		t.Errorf("env with a key hint =\n%q", env)
	}
	// Without a repository nothing repository-related is set at all.
	env = childEnv(parent, "/tmp/x", 50*time.Millisecond, "", nil)
	for _, kv := range env {
		if strings.HasPrefix(kv, "RESTIC_") && kv != "RESTIC_PROGRESS_FPS=20" || strings.HasPrefix(kv, "AWS_") {
			t.Errorf("unexpected %q", kv)
		}
	}
	if !slices.Contains(env, "TMPDIR=/tmp/x") || !slices.Contains(env, "RESTIC_PROGRESS_FPS=20") {
		t.Errorf("env = %q", env)
	}
}

func TestRepoValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		repo Repo
		ok   bool
	}{
		{Repo{URL: "/r", Password: "p"}, true},
		{Repo{URL: "", Password: "p"}, false},
		{Repo{URL: "/r"}, false},
		{Repo{URL: "s3:http://h/b", Password: "p"}, false},
		{Repo{URL: "s3:http://h/b", Password: "p", S3AccessKey: "a", S3SecretKey: "s"}, true},
	}
	for _, tt := range tests {
		if err := tt.repo.validate(); (err == nil) != tt.ok {
			t.Errorf("validate(%v) = %v, want ok=%v", tt.repo, err, tt.ok)
		}
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	bin := filepath.Join(root, ".tools", "bin", "restic")
	deep := filepath.Join(root, "internal", "restic")
	for _, d := range []string{filepath.Dir(bin), deep} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noPath := func(string) (string, error) { return "", errors.New("not in PATH") }
	inPath := func(string) (string, error) { return "/usr/bin/restic", nil }

	if p, err := find("", []string{"/nonexistent", deep}, noPath); err != nil || p != bin {
		t.Errorf("walk up: %q, %v; want %q", p, err, bin)
	}
	if p, err := find(bin, nil, noPath); err != nil || p != bin {
		t.Errorf("env: %q, %v", p, err)
	}
	if p, err := find("", []string{t.TempDir()}, inPath); err != nil || p != "/usr/bin/restic" {
		t.Errorf("PATH: %q, %v", p, err)
	}
	// An explicit but wrong $ARCHIPELAGO_RESTIC is an error, not a fallback.
	if _, err := find(filepath.Join(root, "nope"), []string{deep}, inPath); !errors.Is(err, ErrBinaryNotFound) || !strings.Contains(err.Error(), EnvBinary) {
		t.Errorf("wrong env: %v", err)
	}
	_, err := find("", []string{t.TempDir()}, noPath)
	if !errors.Is(err, ErrBinaryNotFound) || !strings.Contains(err.Error(), "make tools") || !strings.Contains(err.Error(), "ARCHIPELAGO_RESTIC") {
		t.Errorf("nothing found: %v", err)
	}
}

// fakeRestic writes a shell script standing in for restic.
func fakeRestic(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "restic")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewChecksVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, script string
		wantErr      error
	}{
		{"json 0.19.1", `echo '{"message_type":"version","version":"0.19.1","go_version":"go1.26","go_os":"linux","go_arch":"amd64"}'`, nil},
		{"json 0.19.7", `echo '{"message_type":"version","version":"0.19.7"}'`, nil},
		{"json 0.18.0", `echo '{"message_type":"version","version":"0.18.0"}'`, ErrUnsupportedVersion},
		{"json 0.190.0", `echo '{"message_type":"version","version":"0.190.0"}'`, ErrUnsupportedVersion},
		{"text 0.14 (Debian)", `echo 'restic 0.14.0 compiled with go1.19.8 on linux/amd64'`, ErrUnsupportedVersion},
		{"no version", `echo hello`, ErrFailed},
		{"crash", `echo boom >&2; exit 2`, ErrFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bin := fakeRestic(t, tt.script)
			r, err := New(t.Context(), Config{Binary: bin})
			if tt.wantErr == nil {
				if err != nil || !strings.HasPrefix(r.Version(), "0.19.") || r.Binary() != bin {
					t.Fatalf("New = %v, %v", r, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("New err = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrUnsupportedVersion) && !strings.Contains(err.Error(), "make tools") {
				t.Errorf("error does not say how to fix it: %v", err)
			}
		})
	}
	if _, err := New(t.Context(), Config{Binary: filepath.Join(t.TempDir(), "missing")}); !errors.Is(err, ErrBinaryNotFound) {
		t.Errorf("missing binary: %v", err)
	}
}

// versionPreamble makes a fake restic answer `restic --json version`.
const versionPreamble = `if [ "$2" = version ]; then echo '{"message_type":"version","version":"0.19.1"}'; exit 0; fi
`

func TestCancelSendsSIGINTThenKills(t *testing.T) {
	t.Parallel()
	repo := Repo{URL: "/nowhere", Password: "pw"}
	t.Run("restic obeys SIGINT", func(t *testing.T) {
		t.Parallel()
		bin := fakeRestic(t, versionPreamble+`trap 'echo "{\"message_type\":\"exit_error\",\"code\":130,\"message\":\"interrupted\"}" >&2; exit 130' INT
echo started
while :; do sleep 0.05; done
`)
		r, err := New(t.Context(), Config{Binary: bin, KillGrace: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = r.Snapshots(ctx, repo)
		var e *Error
		if !errors.As(err, &e) || e.ExitCode != 130 || !errors.Is(err, ErrInterrupted) || e.Message != "interrupted" {
			t.Fatalf("err = %v", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("took %v", took)
		}
	})
	t.Run("restic ignores SIGINT", func(t *testing.T) {
		t.Parallel()
		bin := fakeRestic(t, versionPreamble+`trap '' INT
while :; do sleep 0.05; done
`)
		r, err := New(t.Context(), Config{Binary: bin, KillGrace: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = r.Snapshots(ctx, repo)
		var e *Error
		if !errors.As(err, &e) || e.ExitCode != -1 || !errors.Is(err, ErrInterrupted) || Classify(err) != FaultOperational {
			t.Fatalf("err = %v", err)
		}
		if took := time.Since(start); took < 450*time.Millisecond || took > 5*time.Second {
			t.Errorf("took %v, want about 200ms + 300ms grace", took)
		}
	})
}

func TestUnknownExitCodeAndTail(t *testing.T) {
	t.Parallel()
	bin := fakeRestic(t, versionPreamble+`echo not json on stdout
echo '{"message_type":"status","percent_done":0.5}'
i=0; while [ $i -lt 200 ]; do echo "stderr noise line $i" >&2; i=$((i+1)); done
echo "the password is pw-secret-value" >&2
exit 42
`)
	r, err := New(t.Context(), Config{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	var out testenv.Logs
	_, err = r.WithOutput(&out).Snapshots(t.Context(), Repo{URL: "/x", Password: "pw-secret-value"})
	var e *Error
	if !errors.As(err, &e) || e.ExitCode != 42 || !errors.Is(err, ErrFailed) || Classify(err) != FaultOperational {
		t.Fatalf("err = %v", err)
	}
	if len(e.Tail) > 1024 || !strings.Contains(e.Tail, "stderr noise line 199") || strings.Contains(e.Tail, "percent_done") {
		t.Errorf("tail (%d bytes) = %q", len(e.Tail), e.Tail)
	}
	if strings.Contains(e.Error(), "pw-secret-value") || strings.Contains(out.String(), "pw-secret-value") {
		t.Errorf("secret leaked from restic's own output")
	}
	if !strings.Contains(out.String(), "not json on stdout") || !strings.Contains(out.String(), "# exit code 42") {
		t.Errorf("output = %s", out.String())
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	r, err := New(t.Context(), Config{Binary: fakeRestic(t, versionPreamble+"echo ran >&2\n")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = r.Snapshots(ctx, Repo{URL: "/x", Password: "pw"})
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) || Classify(err) != FaultOperational {
		t.Fatalf("err = %v", err)
	}
}
