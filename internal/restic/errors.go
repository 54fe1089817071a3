package restic

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinels for restic's documented exit codes. A failed run returns an
// [*Error] that wraps the sentinel of its exit code, so errors.Is works.
var (
	// ErrFatal is exit code 1: restic failed for a reason it did not
	// classify (network, S3 permissions, a missing snapshot, a damaged
	// repository…). [ErrRepositoryDamaged] and friends refine it.
	ErrFatal = errors.New("restic failed (exit 1)")
	// ErrIncomplete is exit code 3: backup could not read some source data
	// (the snapshot is incomplete), or some snapshots could not be removed.
	ErrIncomplete = errors.New("restic could not read some data (exit 3)")
	// ErrRepositoryNotFound is exit code 10: there is no repository at the URL.
	ErrRepositoryNotFound = errors.New("restic repository does not exist (exit 10)")
	// ErrLocked is exit code 11: the repository is locked by another process.
	ErrLocked = errors.New("restic repository is already locked (exit 11)")
	// ErrWrongPassword is exit code 12: no key matches the password.
	ErrWrongPassword = errors.New("restic wrong password or no key found (exit 12)")
	// ErrInterrupted is exit code 130, or the context ending while restic ran.
	ErrInterrupted = errors.New("restic was interrupted")
	// ErrFailed is any other exit code, a death by signal, or output that
	// could not be understood.
	ErrFailed = errors.New("restic failed")
)

// Refinements of exit code 1 recognised from restic's output.
var (
	// ErrRepositoryDamaged: check found errors in the repository. The
	// [CheckResult] returned with it names the broken packs.
	ErrRepositoryDamaged = errors.New("restic check found errors in the repository")
	// ErrRestoreErrors: restore (or its --verify pass) reported errors for
	// some files. The [RestoreResult] returned with it lists them.
	ErrRestoreErrors = errors.New("restic restore reported errors")
	// ErrSnapshotNotFound: no snapshot matches the requested ID.
	ErrSnapshotNotFound = errors.New("restic snapshot not found")
	// ErrAccessDenied: the S3 server refused the credentials or the bucket.
	ErrAccessDenied = errors.New("restic was denied access to the repository storage")
	// ErrStorageUnavailable: a storage request kept failing (server errors such
	// as 503 or Garage's "Could not reach quorum", resets, cut bodies) for longer
	// than [Config.StorageFaultLimit], and restic was stopped. The storage is
	// degraded; nothing was learnt about the repository.
	ErrStorageUnavailable = errors.New("the repository storage kept failing")
)

// ErrUnsupportedVersion is returned by [New] when the binary is not restic
// [SupportedSeries].x.
var ErrUnsupportedVersion = errors.New("unsupported restic version")

// Error is a failed restic run. It wraps the sentinel of its exit code and,
// where the output allowed, a more specific sentinel.
type Error struct {
	// Command is the restic command, e.g. "check" or "key add".
	Command string
	// ExitCode is restic's exit status, or -1 if it did not exit normally
	// (killed by a signal, or could not start).
	ExitCode int
	// Message is restic's own exit message (the exit_error event), if any.
	Message string
	// Tail is the last ≈1 KiB of stderr and non-JSON stdout, secrets scrubbed.
	Tail string
	// Err is the most specific sentinel or cause.
	Err error
}

// Error reports the command, exit code, restic's message and the output tail.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restic %s: exit code %d: %v", e.Command, e.ExitCode, e.Err)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", oneLine(e.Message))
	}
	if e.Tail != "" {
		fmt.Fprintf(&b, " (output: %s)", oneLine(e.Tail))
	}
	return b.String()
}

// Unwrap returns the specific cause and the exit code's sentinel.
func (e *Error) Unwrap() []error {
	errs := []error{e.Err}
	if s := exitSentinel(e.ExitCode); s != nil && s != e.Err {
		errs = append(errs, s)
	}
	return errs
}

func exitSentinel(code int) error {
	switch code {
	case 0:
		return nil
	case 1:
		return ErrFatal
	case 3:
		return ErrIncomplete
	case 10:
		return ErrRepositoryNotFound
	case 11:
		return ErrLocked
	case 12:
		return ErrWrongPassword
	case 130:
		return ErrInterrupted
	default:
		return ErrFailed
	}
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}

// Fault says whose problem a failed run is.
type Fault int

const (
	// FaultNone: no error.
	FaultNone Fault = iota
	// FaultOperational: we could not do the work — binary missing or wrong
	// version, network or S3 unreachable, repository locked, context
	// cancelled, restic crashed, or anything not positively recognised.
	// It says nothing about the member's backup.
	FaultOperational
	// FaultAccess: restic reached the storage but could not open the
	// repository with what it was given — wrong password, no repository at
	// the URL, S3 access denied, snapshot not found. The member's
	// configuration is wrong or has changed; the data was not judged.
	FaultAccess
	// FaultRepository: restic read the repository and found it damaged —
	// check errors, broken packs, files that could not be restored or did not
	// verify. Only this fault says the member's backup is bad.
	FaultRepository
)

// String names the fault.
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultOperational:
		return "operational"
	case FaultAccess:
		return "access"
	case FaultRepository:
		return "repository"
	default:
		return fmt.Sprintf("Fault(%d)", int(f))
	}
}

// Classify says whose problem err is. It returns [FaultRepository] only when
// restic itself reported damaged data, so that a failure on our side is never
// reported as a bad backup. Unknown errors are [FaultOperational].
func Classify(err error) Fault {
	switch {
	case err == nil:
		return FaultNone
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrInterrupted), errors.Is(err, ErrStorageUnavailable):
		// Checked first: an interrupted check may also have partial findings.
		return FaultOperational
	case errors.Is(err, ErrRepositoryDamaged), errors.Is(err, ErrRestoreErrors):
		return FaultRepository
	case errors.Is(err, ErrWrongPassword), errors.Is(err, ErrRepositoryNotFound),
		errors.Is(err, ErrAccessDenied), errors.Is(err, ErrSnapshotNotFound):
		return FaultAccess
	default:
		return FaultOperational
	}
}

// IsRepositoryFault reports whether err says the repository itself is
// damaged; see [Classify].
func IsRepositoryFault(err error) bool { return Classify(err) == FaultRepository }

// transportHints are substrings of errors that come from the network, the storage
// server (the island) or our local disk, not from the repository's content. Server-side
// failures are here on purpose: a degraded island (Garage without quorum, a proxy answering
// 503, a connection cut mid-body) must never make a member's backup look damaged.
var transportHints = []string{
	// network and TLS
	"connection refused", "connection reset", "no such host", "i/o timeout",
	"network is unreachable", "tls: ", "x509: ", "TLS handshake timeout", "server misbehaving",
	"timeout awaiting", "broken pipe", "unexpected EOF", "EOF (", ": EOF", "use of closed network connection",
	"http2: ", "stream error", "context canceled", "context deadline exceeded", "Client.Timeout",
	// the storage server's own failures (S3 codes and HTTP status texts)
	"Service Unavailable", "ServiceUnavailable", "Internal Server Error", "InternalError",
	"Bad Gateway", "Gateway Timeout", "SlowDown", "RequestTimeout", "Too Many Requests",
	"Could not reach quorum", "circuit breaker open",
	"kept failing", // ErrStorageUnavailable
	// our local disk
	"no space left on device", "read-only file system", "too many open files",
	"permission denied", "disk quota exceeded",
}

// looksOperational reports whether a restic error message looks like a
// transport or local failure rather than damaged repository data.
func looksOperational(msg string) bool {
	for _, h := range transportHints {
		if strings.Contains(msg, h) {
			return true
		}
	}
	return false
}

// accessHints are S3 error codes that mean the credentials or bucket are refused.
var accessHints = []string{
	"Access Denied", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
	"NoSuchBucket", "The specified bucket does not exist",
}

func looksAccessDenied(msg string) bool {
	for _, h := range accessHints {
		if strings.Contains(msg, h) {
			return true
		}
	}
	return false
}
