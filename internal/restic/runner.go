package restic

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SupportedSeries is the restic minor version Archipelago is written
// against; [New] refuses any binary whose version is not SupportedSeries.x,
// because the JSON output and exit codes change between minor versions.
const SupportedSeries = "0.19"

// PinnedVersion is the exact version `make tools` builds (tools/go.mod).
const PinnedVersion = "0.19.1"

const (
	defaultKillGrace        = 15 * time.Second
	defaultProgressInterval = time.Second
	defaultMaxLineSize      = 64 << 20
	tailSize                = 1024
	maxCollect              = 1 << 20
)

// Config configures a [Runner]. Zero values get sensible defaults.
type Config struct {
	// Binary is the restic executable. Empty means [Find].
	Binary string
	// Logger receives one line per run (command, repository, exit code,
	// duration), never restic's output nor secrets. Nil discards.
	Logger *slog.Logger
	// CacheDir is the cache directory used for repositories whose
	// Repo.CacheDir is empty. When both are empty restic runs with --no-cache.
	CacheDir string
	// TempDir is restic's TMPDIR (backup stages pack files there). Empty
	// passes on the parent's TMPDIR.
	TempDir string
	// KillGrace is how long restic gets, after SIGINT, to remove its locks
	// and exit before it is killed. Default 15s.
	KillGrace time.Duration
	// ProgressInterval is the minimum time between two progress callbacks.
	// Default 1s.
	ProgressInterval time.Duration
	// MaxLineSize caps one line of restic output (the JSON arrays of
	// "snapshots" are one line). Longer lines are truncated. Default 64 MiB.
	MaxLineSize int
	// StorageFaultLimit bounds how long restic may keep retrying one failing
	// storage request (restic itself retries for 15 minutes): once a request
	// has been failing this long without a success, restic is stopped and the
	// run returns an error wrapping [ErrStorageUnavailable]. Default
	// [DefaultStorageFaultLimit]; negative disables the limit.
	StorageFaultLimit time.Duration
}

// DefaultStorageFaultLimit is [Config.StorageFaultLimit]'s default: a storage
// server that keeps failing one request for this long is down, not blinking.
const DefaultStorageFaultLimit = 2 * time.Minute

// Runner runs restic commands. It is safe for concurrent use; the With*
// methods return a copy that differs only in where one run's output goes.
type Runner struct {
	binary           string
	version          string
	logger           *slog.Logger
	cacheDir         string
	tempDir          string
	killGrace        time.Duration
	progressInterval time.Duration
	maxLineSize      int
	// storageFaultLimit: see Config.StorageFaultLimit (0: no limit).
	storageFaultLimit time.Duration

	output   io.Writer
	progress func(Progress)

	// execHook, when set (by tests), sees the argv and environment of every
	// child just after it started.
	execHook func(args, env []string)
}

// New finds the binary (unless cfg.Binary is set), runs `restic version` and
// returns a Runner, or an error wrapping [ErrBinaryNotFound] or
// [ErrUnsupportedVersion] that says how to fix it.
func New(ctx context.Context, cfg Config) (*Runner, error) {
	r := &Runner{
		binary:            cfg.Binary,
		logger:            cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		cacheDir:          cfg.CacheDir,
		tempDir:           cfg.TempDir,
		killGrace:         cmp.Or(cfg.KillGrace, defaultKillGrace),
		progressInterval:  cmp.Or(cfg.ProgressInterval, defaultProgressInterval),
		maxLineSize:       cmp.Or(cfg.MaxLineSize, defaultMaxLineSize),
		storageFaultLimit: max(cmp.Or(cfg.StorageFaultLimit, DefaultStorageFaultLimit), 0),
	}
	if r.killGrace < 0 || r.progressInterval < 0 || r.maxLineSize < 4096 {
		return nil, errors.New("restic: KillGrace and ProgressInterval must not be negative, MaxLineSize must be at least 4096")
	}
	if r.binary == "" {
		p, err := Find(ctx)
		if err != nil {
			return nil, err
		}
		r.binary = p
	} else if err := checkExecutable(r.binary); err != nil {
		return nil, fmt.Errorf("%w: %v; run `make tools` to build restic %s into .tools/bin", ErrBinaryNotFound, err, PinnedVersion)
	}

	v, err := r.readVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("restic: read version of %s: %w", r.binary, err)
	}
	if !versionSupported(v) {
		return nil, fmt.Errorf("%w: %s is restic %s, Archipelago needs restic %s.x; run `make tools` to build restic %s into .tools/bin, or point $%s at one",
			ErrUnsupportedVersion, r.binary, v, SupportedSeries, PinnedVersion, EnvBinary)
	}
	r.version = v
	return r, nil
}

// Binary returns the path of the restic executable.
func (r *Runner) Binary() string { return r.binary }

// Version returns the version reported by the binary, e.g. "0.19.1".
func (r *Runner) Version() string { return r.version }

// WithOutput returns a copy of r that also writes the full output of each run
// (stdout and stderr lines as they arrive, framed by the command line and the
// exit code) to w, with the repository's secrets replaced by [REDACTED]. Use
// it to keep the raw output of one verification run. w is written from one
// goroutine at a time; a write error stops the copy, not restic.
func (r *Runner) WithOutput(w io.Writer) *Runner {
	c := *r
	c.output = w
	return &c
}

// WithStorageFaultLimit returns a copy of r whose runs stop after a storage
// request has kept failing for d (see [Config.StorageFaultLimit]; d <= 0
// disables the limit).
func (r *Runner) WithStorageFaultLimit(d time.Duration) *Runner {
	c := *r
	c.storageFaultLimit = max(d, 0)
	return &c
}

// WithProgress returns a copy of r that calls fn with the status events of
// backup and restore, at most once per Config.ProgressInterval. fn runs on
// the goroutine reading restic's output: it must be quick. restic 0.19's
// check prints no status events in JSON mode, so fn is not called for it.
func (r *Runner) WithProgress(fn func(Progress)) *Runner {
	c := *r
	c.progress = fn
	return &c
}

var textVersion = regexp.MustCompile(`^restic (\S+)`)

func (r *Runner) readVersion(ctx context.Context) (string, error) {
	var v string
	_, err := r.run(ctx, call{
		command: "version",
		onEvent: func(ev Event) error {
			switch ev := ev.(type) {
			case *VersionInfo:
				v = ev.Version
			case *Text: // restic < 0.15 ignores --json here
				if m := textVersion.FindStringSubmatch(ev.Line); m != nil && v == "" {
					v = m[1]
				}
			}
			return nil
		},
	})
	if err != nil {
		return "", err
	}
	if v == "" {
		return "", fmt.Errorf("%w: `restic version` printed no version", ErrFailed)
	}
	return v, nil
}

func versionSupported(v string) bool {
	return v == SupportedSeries || strings.HasPrefix(v, SupportedSeries+".")
}

// call is one restic invocation.
type call struct {
	// command is the restic command, words separated by spaces ("key add").
	command string
	// args follow the command words.
	args []string
	// repo is the repository to open, nil for commands that need none.
	repo *Repo
	// extraFiles become the child's fd 3, 4, …
	extraFiles []*os.File
	// secrets are scrubbed from the output in addition to the repository's.
	secrets []string
	// env is added to the child's environment ("NAME=value"): for a command restic runs
	// itself (backup --stdin-from-command), which inherits restic's environment. Values
	// that are secrets must also be in secrets.
	env []string
	// stdout, when set, receives the raw stdout lines (for commands that
	// print indented JSON), up to maxCollect bytes.
	stdout *bytes.Buffer
	// onEvent sees every line of output, in order. An error stops
	// delivering events and interrupts restic (SIGINT, never a closed
	// pipe); run then returns that error.
	onEvent func(Event) error
}

// outcome is what a finished run reports besides its error.
type outcome struct {
	exitCode int
	exitMsg  string
	tail     string
	duration time.Duration
}

type line struct {
	stderr bool
	data   []byte
}

// run executes c and reads its output to the end. It returns an [*Error]
// for a non-zero exit, and the consumer's error if onEvent failed.
func (r *Runner) run(ctx context.Context, c call) (outcome, error) {
	var out outcome
	if c.repo != nil {
		if err := c.repo.validate(); err != nil {
			return out, fmt.Errorf("restic %s: %w", c.command, err)
		}
	}
	args := r.args(c)
	env := append(r.env(c.repo), c.env...)
	scrub := newScrubber(c.repo, c.secrets)

	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	cmd := exec.CommandContext(runCtx, r.binary, args...)
	cmd.Env = env
	cmd.Stdin = nil // /dev/null: restic must never wait for a prompt
	cmd.ExtraFiles = c.extraFiles
	cmd.WaitDelay = r.killGrace
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return interruptGroup(cmd.Process) }

	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return out, r.startError(c, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return out, r.startError(c, err)
	}

	log := r.logger.With(slog.String("command", c.command))
	if c.repo != nil {
		log = log.With(slog.Any("repo", *c.repo))
	}
	output := outputWriter{w: r.output, logger: log}
	if c.repo != nil {
		output.write(fmt.Appendf(nil, "# repository %s\n", c.repo.redactedURL()))
	}
	output.write(fmt.Appendf(nil, "$ restic %s\n", strings.Join(args, " ")))

	start := time.Now()
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return out, &Error{Command: c.command, ExitCode: -1, Err: fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))}
		}
		return out, r.startError(c, err)
	}
	if r.execHook != nil {
		r.execHook(cmd.Args, cmd.Env)
	}
	log.DebugContext(ctx, "restic started", slog.Int("pid", cmd.Process.Pid))

	lines := make(chan line, 256)
	var readers sync.WaitGroup
	readers.Go(func() { r.scan(stdout, false, lines) })
	readers.Go(func() { r.scan(stderr, true, lines) })
	go func() { readers.Wait(); close(lines) }()

	tail := &tailBuffer{max: tailSize}
	var consumerErr, faultErr error
	throttle := progressThrottle{every: r.progressInterval}
	watch := storageWatch{limit: r.storageFaultLimit}
	var tick <-chan time.Time
	if watch.limit > 0 {
		t := time.NewTicker(min(max(watch.limit/4, 10*time.Millisecond), time.Second))
		defer t.Stop()
		tick = t.C
	}
	handle := func(ln line) {
		data := scrub.apply(ln.data)
		output.write(append(data, '\n'))
		if c.stdout != nil && !ln.stderr && c.stdout.Len()+len(data) < maxCollect {
			c.stdout.Write(data)
			c.stdout.WriteByte('\n')
		}
		ev := ParseLine(c.command, data)
		switch ev := ev.(type) {
		case *ExitError:
			out.exitMsg = ev.Message
		case *Text:
			tail.add(data)
		case *ErrorEvent:
			if ev.Item != "" {
				tail.add([]byte(ev.Item + ": " + strings.TrimSpace(ev.Message)))
			} else {
				tail.add([]byte(strings.TrimSpace(ev.Message)))
			}
		case *Progress:
			if r.progress != nil && throttle.allow(time.Now()) {
				r.progress(*ev)
			}
		default:
			if ln.stderr {
				tail.add(data)
			}
		}
		switch ev := ev.(type) {
		case *Text:
			watch.see(ev.Line, time.Now())
		case *ErrorEvent:
			watch.see(ev.Message, time.Now())
		}
		if consumerErr == nil && c.onEvent != nil {
			if err := c.onEvent(ev); err != nil {
				consumerErr = err
				stop(err) // SIGINT to restic; keep draining its output
			}
		}
	}
	checkWatch := func(now time.Time) {
		if faultErr == nil && consumerErr == nil {
			if err := watch.overdue(now); err != nil {
				faultErr = err
				stop(err) // SIGINT to restic; keep draining its output
			}
		}
	}
read:
	for {
		select {
		case ln, ok := <-lines:
			if !ok {
				break read
			}
			handle(ln)
			checkWatch(time.Now())
		case now := <-tick:
			checkWatch(now)
		}
	}
	waitErr := cmd.Wait()
	out.duration = time.Since(start)
	out.tail = tail.String()
	out.exitCode = exitCode(cmd, waitErr)
	if runCtx.Err() != nil {
		killGroup(cmd.Process) // anything restic left behind in its group
	}
	output.write(fmt.Appendf(nil, "# exit code %d after %s\n", out.exitCode, out.duration.Round(time.Millisecond)))
	// A routine run is DEBUG (serve and the workers run restic for every test); one that
	// failed, or was stopped, stays INFO (the callers judge it and log what they decide).
	level := slog.LevelInfo
	if out.exitCode == 0 && waitErr == nil && consumerErr == nil && faultErr == nil && ctx.Err() == nil {
		level = slog.LevelDebug
	}
	log.Log(ctx, level, "restic finished", slog.Int("exit_code", out.exitCode), slog.Duration("duration", out.duration))

	switch {
	case consumerErr != nil:
		return out, fmt.Errorf("restic %s: %w", c.command, consumerErr)
	case faultErr != nil && ctx.Err() == nil:
		return out, &Error{Command: c.command, ExitCode: out.exitCode, Message: out.exitMsg, Tail: out.tail, Err: faultErr}
	case ctx.Err() != nil:
		return out, &Error{Command: c.command, ExitCode: out.exitCode, Message: out.exitMsg, Tail: out.tail,
			Err: fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))}
	case out.exitCode == 0 && waitErr == nil:
		return out, nil
	}
	e := &Error{Command: c.command, ExitCode: out.exitCode, Message: out.exitMsg, Tail: out.tail,
		Err: exitSentinel(out.exitCode)}
	if e.Err == nil { // exit 0 but Wait failed
		e.Err = fmt.Errorf("%w: %v", ErrFailed, waitErr)
	}
	if out.exitCode == 1 {
		all := out.exitMsg + "\n" + out.tail
		switch {
		case strings.Contains(all, "failed to find snapshot") || strings.Contains(all, "no matching ID found"):
			e.Err = ErrSnapshotNotFound
		case looksAccessDenied(all):
			e.Err = ErrAccessDenied
		}
	}
	if out.exitCode == -1 && e.Err == ErrFailed && waitErr != nil {
		e.Err = fmt.Errorf("%w: %v", ErrFailed, waitErr)
	}
	return out, e
}

func (r *Runner) startError(c call, err error) error {
	return &Error{Command: c.command, ExitCode: -1, Err: fmt.Errorf("%w: start %s: %v", ErrFailed, r.binary, err)}
}

// outputWriter copies one run's output to the WithOutput writer; after a
// failed write it gives up on the writer for the rest of the run (restic
// keeps running and its output keeps being read).
type outputWriter struct {
	w      io.Writer
	logger *slog.Logger
}

func (o *outputWriter) write(b []byte) {
	if o.w == nil {
		return
	}
	if _, err := o.w.Write(b); err != nil {
		o.logger.Warn("restic: copy of output failed, dropping the rest", slog.Any("error", err))
		o.w = nil
	}
}

func exitCode(cmd *exec.Cmd, waitErr error) int {
	if cmd.ProcessState != nil {
		return cmd.ProcessState.ExitCode() // -1 when killed by a signal
	}
	if waitErr != nil {
		return -1
	}
	return 0
}

// args builds argv: global flags first, then the command words and their
// arguments. The repository and all secrets travel in the environment.
func (r *Runner) args(c call) []string {
	args := []string{"--json"}
	if c.repo != nil && cmp.Or(c.repo.CacheDir, r.cacheDir) == "" {
		args = append(args, "--no-cache")
	}
	args = append(args, strings.Fields(c.command)...)
	return append(args, c.args...)
}

// passedEnv are the parent's variables restic may see: none of RESTIC_* or
// AWS_*, and not HOME, so that no credentials file of the operator is read.
var passedEnv = []string{
	"PATH", "LANG", "LC_ALL", "LC_CTYPE", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
}

// env builds the child's whole environment.
func (r *Runner) env(repo *Repo) []string {
	return childEnv(os.Environ(), r.tempDir, r.progressInterval, r.cacheDir, repo)
}

// childEnv builds the child's environment from the parent's (as
// os.Environ returns it): only the passedEnv variables survive.
func childEnv(parent []string, tempDir string, progressInterval time.Duration, cacheDir string, repo *Repo) []string {
	var env []string
	parentTmp := ""
	for _, kv := range parent {
		k, v, _ := strings.Cut(kv, "=")
		if k == "TMPDIR" {
			parentTmp = v
		}
		if slices.Contains(passedEnv, k) {
			env = append(env, kv)
		}
	}
	if tmp := cmp.Or(tempDir, parentTmp); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	env = append(env,
		"TZ=UTC", // key list prints local times without a zone
		"RESTIC_PROGRESS_FPS="+progressFPS(progressInterval),
	)
	if repo == nil {
		return env
	}
	env = append(env,
		"RESTIC_REPOSITORY="+repo.URL,
		"RESTIC_PASSWORD="+repo.Password,
	)
	if repo.S3AccessKey != "" {
		env = append(env, "AWS_ACCESS_KEY_ID="+repo.S3AccessKey)
	}
	if repo.S3SecretKey != "" {
		env = append(env, "AWS_SECRET_ACCESS_KEY="+repo.S3SecretKey)
	}
	if repo.S3Region != "" {
		env = append(env, "AWS_DEFAULT_REGION="+repo.S3Region)
	}
	if dir := cmp.Or(repo.CacheDir, cacheDir); dir != "" {
		env = append(env, "RESTIC_CACHE_DIR="+dir)
	}
	if repo.KeyHint != "" {
		env = append(env, "RESTIC_KEY_HINT="+repo.KeyHint)
	}
	return env
}

// progressFPS asks restic for status lines as often as we deliver them
// (restic's default in JSON mode is ten a second).
func progressFPS(interval time.Duration) string {
	fps := float64(time.Second) / float64(interval)
	return strconv.FormatFloat(min(max(fps, 0.01), 60), 'f', -1, 64)
}

// scan reads one stream of the child to its end. Lines longer than the
// maximum are cut, and the scanner never stops before EOF: restic must never
// see a closed pipe.
func (r *Runner) scan(rd io.Reader, stderr bool, lines chan<- line) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 64<<10), r.maxLineSize)
	sc.Split(splitLines(r.maxLineSize))
	for sc.Scan() {
		lines <- line{stderr: stderr, data: bytes.Clone(sc.Bytes())}
	}
	if err := sc.Err(); err != nil {
		lines <- line{stderr: true, data: fmt.Appendf(nil, "archipelago: reading restic output: %v", err)}
		_, _ = io.Copy(io.Discard, rd)
	}
}

// splitLines is bufio.ScanLines that, instead of failing on a line longer
// than max, returns its first max bytes and skips the rest of it.
func splitLines(max int) bufio.SplitFunc {
	skipping := false
	return func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			if skipping {
				skipping = false
				return i + 1, nil, nil
			}
			return i + 1, bytes.TrimSuffix(data[:i], []byte("\r")), nil
		}
		switch {
		case skipping:
			return len(data), nil, nil
		case atEOF && len(data) > 0:
			return len(data), bytes.TrimSuffix(data, []byte("\r")), nil
		case len(data) >= max:
			skipping = true
			return len(data), data, nil
		}
		return 0, nil, nil
	}
}

// tailBuffer keeps the last max bytes of the lines added to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) add(l []byte) {
	t.buf = append(t.buf, l...)
	t.buf = append(t.buf, '\n')
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
		// Start at a line boundary unless that loses most of the tail.
		if i := bytes.IndexByte(t.buf, '\n'); i >= 0 && i < t.max/4 {
			t.buf = t.buf[i+1:]
		}
	}
}

func (t *tailBuffer) String() string {
	return strings.TrimSpace(strings.ToValidUTF8(string(t.buf), ""))
}

// progressThrottle lets one event through per interval.
type progressThrottle struct {
	every time.Duration
	last  time.Time
}

// allow reports whether an event arriving at now may be delivered.
func (p *progressThrottle) allow(now time.Time) bool {
	if !p.last.IsZero() && now.Sub(p.last) < p.every {
		return false
	}
	p.last = now
	return true
}

// scrubber replaces secrets in restic's output before anyone sees it.
type scrubber struct{ secrets [][]byte }

func newScrubber(repo *Repo, extra []string) scrubber {
	var s scrubber
	all := extra
	if repo != nil {
		all = append(repo.secrets(), extra...)
	}
	for _, sec := range all {
		if len(sec) >= 4 { // shorter ones would mangle ordinary output
			s.secrets = append(s.secrets, []byte(sec))
		}
	}
	return s
}

func (s scrubber) apply(b []byte) []byte {
	for _, sec := range s.secrets {
		if bytes.Contains(b, sec) {
			b = bytes.ReplaceAll(b, sec, []byte(redacted))
		}
	}
	return b
}
