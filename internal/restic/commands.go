package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Init creates a repository at repo.URL and returns its ID.
func (r *Runner) Init(ctx context.Context, repo Repo) (string, error) {
	var id string
	_, err := r.run(ctx, call{
		command: "init",
		repo:    &repo,
		onEvent: func(ev Event) error {
			if ev, ok := ev.(*Initialized); ok {
				id = ev.ID
			}
			return nil
		},
	})
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", fmt.Errorf("restic init: %w: no \"initialized\" event", ErrFailed)
	}
	return id, nil
}

// BackupOptions says what to back up.
type BackupOptions struct {
	// Paths are the files and directories to back up (at least one).
	// Absolute paths are stored as they are; relative ones relative to the
	// working directory.
	Paths []string
	// Tags are added to the snapshot.
	Tags []string
	// Host overrides the hostname recorded in the snapshot.
	Host string
	// Time, when set, is recorded as the snapshot's time instead of now
	// (restic's --time); the demo seeder uses it to make a stale backup.
	Time time.Time
}

// Backup makes a snapshot. It is used by tests and the demo seeder;
// verification never writes to a member's repository. With exit code 3 (some
// files unreadable) it returns the summary and an error wrapping
// [ErrIncomplete]: the snapshot exists but lacks those files.
func (r *Runner) Backup(ctx context.Context, repo Repo, opts BackupOptions) (*BackupSummary, error) {
	if len(opts.Paths) == 0 {
		return nil, errors.New("restic backup: no paths given")
	}
	args := []string{}
	if opts.Host != "" {
		args = append(args, "--host="+opts.Host)
	}
	for _, t := range opts.Tags {
		args = append(args, "--tag="+t)
	}
	if !opts.Time.IsZero() {
		// restic reads --time in the child's time zone, which env sets to UTC.
		args = append(args, "--time="+opts.Time.UTC().Format(time.DateTime))
	}
	args = append(args, "--")
	args = append(args, opts.Paths...)

	var sum *BackupSummary
	_, err := r.run(ctx, call{
		command: "backup",
		args:    args,
		repo:    &repo,
		onEvent: func(ev Event) error {
			if ev, ok := ev.(*BackupSummary); ok {
				sum = ev
			}
			return nil
		},
	})
	if err != nil {
		return sum, err
	}
	if sum == nil || sum.SnapshotID == "" {
		return nil, fmt.Errorf("restic backup: %w: no summary with a snapshot ID", ErrFailed)
	}
	return sum, nil
}

// Snapshots lists the repository's snapshots, oldest first, without locking.
func (r *Runner) Snapshots(ctx context.Context, repo Repo) ([]Snapshot, error) {
	var snaps []Snapshot
	var decodeErr error
	seen := false
	_, err := r.run(ctx, call{
		command: "snapshots",
		args:    []string{"--no-lock"},
		repo:    &repo,
		onEvent: func(ev Event) error {
			if ev, ok := ev.(*RawJSON); ok && !seen {
				seen = true
				decodeErr = json.Unmarshal(ev.Data, &snaps)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if !seen || decodeErr != nil {
		return nil, fmt.Errorf("restic snapshots: %w: cannot decode the list: %v", ErrFailed, decodeErr)
	}
	return snaps, nil
}

// Ls lists the files of a snapshot without locking, calling fn for each node
// as restic prints it, so that large snapshots are never held in memory. It
// returns the snapshot's description. If fn returns an error, restic is
// interrupted and Ls returns that error.
func (r *Runner) Ls(ctx context.Context, repo Repo, snapshotID string, fn func(Node) error) (*Snapshot, error) {
	if err := checkSnapshotID(snapshotID); err != nil {
		return nil, fmt.Errorf("restic ls: %w", err)
	}
	var snap *Snapshot
	_, err := r.run(ctx, call{
		command: "ls",
		args:    []string{"--no-lock", "--", snapshotID},
		repo:    &repo,
		onEvent: func(ev Event) error {
			switch ev := ev.(type) {
			case *Snapshot:
				snap = ev
			case *Node:
				if fn != nil {
					return fn(*ev)
				}
			}
			return nil
		},
	})
	if err != nil {
		return snap, err
	}
	if snap == nil {
		return nil, fmt.Errorf("restic ls: %w: no snapshot event", ErrFailed)
	}
	return snap, nil
}

// CheckOptions tunes check.
type CheckOptions struct {
	// ReadDataSubset, when set, also reads and verifies that part of the data
	// packs: "n/t" (part n of t), "x%" or a size such as "500M". Without it
	// check only verifies the structure and does not notice damaged data.
	ReadDataSubset string
	// ReadData reads all data packs. Exclusive with ReadDataSubset.
	ReadData bool
}

// CheckResult is what check reported.
type CheckResult struct {
	CheckSummary
	// Findings are restic's error messages, without its advice paragraphs.
	Findings []string
	// Retries are restic's reports of storage requests it retried; they
	// are not findings about the repository.
	Retries []string
	// Duration is how long restic ran.
	Duration time.Duration
}

// OK reports whether check found nothing wrong.
func (c *CheckResult) OK() bool {
	return c.NumErrors == 0 && len(c.BrokenPacks) == 0 && len(c.Findings) == 0
}

// Check verifies the repository without locking it. When restic found
// errors it returns the result and an error wrapping [ErrRepositoryDamaged]
// (so [Classify] says [FaultRepository]). When restic could not do the check
// (wrong password, network, cancelled…) it returns only an error: restic's
// summary then counts its own failure as an error and is no verdict.
func (r *Runner) Check(ctx context.Context, repo Repo, opts CheckOptions) (*CheckResult, error) {
	if opts.ReadData && opts.ReadDataSubset != "" {
		return nil, errors.New("restic check: ReadData and ReadDataSubset are exclusive")
	}
	args := []string{"--no-lock"}
	if opts.ReadData {
		args = append(args, "--read-data")
	}
	if opts.ReadDataSubset != "" {
		args = append(args, "--read-data-subset="+opts.ReadDataSubset)
	}
	var res CheckResult
	var sawSummary bool
	out, err := r.run(ctx, call{
		command: "check",
		args:    args,
		repo:    &repo,
		onEvent: func(ev Event) error {
			switch ev := ev.(type) {
			case *CheckSummary:
				res.CheckSummary = *ev
				sawSummary = true
			case *ErrorEvent:
				switch msg := strings.TrimSpace(ev.Message); {
				case isRetry(msg):
					res.Retries = append(res.Retries, msg)
				case msg != "" && !isCheckAdvice(msg):
					res.Findings = append(res.Findings, msg)
				}
			}
			return nil
		},
	})
	res.Duration = out.duration
	if err == nil {
		if !sawSummary {
			return nil, fmt.Errorf("restic check: %w: no summary", ErrFailed)
		}
		return &res, nil
	}
	var e *Error
	if errors.As(err, &e) && e.ExitCode == 1 && strings.Contains(e.Message, "repository contains errors") && checkFoundDamage(&res) {
		e.Err = ErrRepositoryDamaged
	}
	if Classify(err) != FaultRepository {
		return nil, err
	}
	return &res, err
}

// checkFoundDamage tells damaged data from a check that failed on our side
// (restic also says "repository contains errors" when reading packs failed
// for network reasons after its retries).
func checkFoundDamage(res *CheckResult) bool {
	if len(res.BrokenPacks) > 0 {
		return true
	}
	for _, f := range res.Findings {
		if !looksOperational(f) {
			return true
		}
	}
	return false
}

// isRetry recognises restic's report of a storage request it will retry
// ("Load(<data/…>, 0, 0) returned error, retrying after 1.2s: …").
func isRetry(msg string) bool {
	return strings.Contains(msg, "returned error, retrying after")
}

// isCheckAdvice recognises the paragraphs check prints after its findings.
func isCheckAdvice(msg string) bool {
	for _, p := range []string{
		"The repository contains damaged pack files",
		"The repository is damaged and must be repaired",
		"The repository index is damaged and must be repaired",
		"restic repair ",
		"Damaged pack files can be caused",
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// RestoreOptions says what to restore where.
type RestoreOptions struct {
	// SnapshotID is the snapshot to restore (an ID, a unique prefix, or "latest").
	SnapshotID string
	// Target is the directory to restore into; restic creates it.
	Target string
	// Include restricts the restore to these paths, as [Ls] prints them
	// (e.g. "/home/alice/notes.txt"). Empty restores everything.
	Include []string
	// Verify makes restic read back every restored file and compare it with
	// the snapshot.
	Verify bool
}

// RestoreResult is what restore reported.
type RestoreResult struct {
	RestoreSummary
	// Errors are the files restic could not restore or that did not verify.
	Errors []ErrorEvent
	// Duration is how long restic ran, measured here.
	Duration time.Duration
}

// Restore restores files from a snapshot without locking the repository.
// When restic reported errors for some files it returns the result and an
// error wrapping [ErrRestoreErrors] (so [Classify] says [FaultRepository]),
// unless every error looks like a local or network failure; for any other
// failure it returns only the error.
//
// restic 0.19 prints its summary before the --verify pass, and counts
// directories and links as files; with Include, files_restored may exceed
// total_files.
func (r *Runner) Restore(ctx context.Context, repo Repo, opts RestoreOptions) (*RestoreResult, error) {
	if err := checkSnapshotID(opts.SnapshotID); err != nil {
		return nil, fmt.Errorf("restic restore: %w", err)
	}
	if opts.Target == "" {
		return nil, errors.New("restic restore: no target directory")
	}
	args := []string{"--no-lock", "--target=" + opts.Target}
	for _, p := range opts.Include {
		args = append(args, "--include="+p)
	}
	if opts.Verify {
		args = append(args, "--verify")
	}
	args = append(args, "--", opts.SnapshotID)

	var res RestoreResult
	var sawSummary bool
	out, err := r.run(ctx, call{
		command: "restore",
		args:    args,
		repo:    &repo,
		onEvent: func(ev Event) error {
			switch ev := ev.(type) {
			case *RestoreSummary:
				res.RestoreSummary = *ev
				sawSummary = true
			case *ErrorEvent:
				if !isRetry(ev.Message) {
					res.Errors = append(res.Errors, *ev)
				}
			}
			return nil
		},
	})
	res.Duration = out.duration
	if err == nil {
		if !sawSummary {
			return nil, fmt.Errorf("restic restore: %w: no summary", ErrFailed)
		}
		return &res, nil
	}
	var e *Error
	if errors.As(err, &e) && e.ExitCode == 1 && strings.Contains(e.Message, "There were") && restoreFoundDamage(res.Errors) {
		e.Err = ErrRestoreErrors
	}
	if Classify(err) != FaultRepository {
		return nil, err
	}
	return &res, err
}

func restoreFoundDamage(errs []ErrorEvent) bool {
	for _, e := range errs {
		if !looksOperational(e.Message) {
			return true
		}
	}
	return false
}

// KeyAddOptions describes the new key.
type KeyAddOptions struct {
	// User and Host are recorded in the key; empty means restic's defaults.
	User string
	Host string
}

var savedKey = regexp.MustCompile(`saved new key with ID ([0-9a-f]{8,64})`)

// KeyAdd adds newPassword as a key of the repository (opened with
// repo.Password) and returns the new key's ID. The new password reaches
// restic through a pipe (--new-password-file /dev/fd/3): never argv, never a
// file on disk.
func (r *Runner) KeyAdd(ctx context.Context, repo Repo, newPassword string, opts KeyAddOptions) (string, error) {
	if newPassword == "" {
		return "", errors.New("restic key add: the new password is empty")
	}
	if len(newPassword) > 4096 {
		return "", errors.New("restic key add: the new password is longer than 4096 bytes")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("restic key add: pipe: %w", err)
	}
	defer pr.Close()
	// Fits in the pipe buffer: written and closed before restic starts.
	if _, err := pw.WriteString(newPassword + "\n"); err != nil {
		pw.Close()
		return "", fmt.Errorf("restic key add: write password to pipe: %w", err)
	}
	if err := pw.Close(); err != nil {
		return "", fmt.Errorf("restic key add: close pipe: %w", err)
	}

	args := []string{"--new-password-file=/dev/fd/3"}
	if opts.User != "" {
		args = append(args, "--user="+opts.User)
	}
	if opts.Host != "" {
		args = append(args, "--host="+opts.Host)
	}
	var id string
	_, err = r.run(ctx, call{
		command:    "key add",
		args:       args,
		repo:       &repo,
		extraFiles: []*os.File{pr},
		secrets:    []string{newPassword},
		onEvent: func(ev Event) error {
			if ev, ok := ev.(*Text); ok {
				if m := savedKey.FindStringSubmatch(ev.Line); m != nil {
					id = m[1]
				}
			}
			return nil
		},
	})
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", fmt.Errorf("restic key add: %w: no \"saved new key\" line", ErrFailed)
	}
	return id, nil
}

// Key is one key (password) of a repository.
type Key struct {
	ID       string
	Current  bool // the key that opened the repository for this listing
	UserName string
	HostName string
	Created  time.Time
}

// KeyList lists the repository's keys without locking.
func (r *Runner) KeyList(ctx context.Context, repo Repo) ([]Key, error) {
	type wire struct {
		Current  bool   `json:"current"`
		ID       string `json:"id"`
		UserName string `json:"userName"`
		HostName string `json:"hostName"`
		Created  string `json:"created"`
	}
	var ws []wire
	var decodeErr error
	seen := false
	_, err := r.run(ctx, call{
		command: "key list",
		args:    []string{"--no-lock"},
		repo:    &repo,
		onEvent: func(ev Event) error {
			if ev, ok := ev.(*RawJSON); ok && !seen {
				seen = true
				decodeErr = json.Unmarshal(ev.Data, &ws)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	if !seen || decodeErr != nil {
		return nil, fmt.Errorf("restic key list: %w: cannot decode the list: %v", ErrFailed, decodeErr)
	}
	keys := make([]Key, 0, len(ws))
	for _, w := range ws {
		// restic prints local time without a zone; the child runs with TZ=UTC.
		created, _ := time.ParseInLocation(time.DateTime, w.Created, time.UTC)
		keys = append(keys, Key{ID: w.ID, Current: w.Current, UserName: w.UserName, HostName: w.HostName, Created: created})
	}
	return keys, nil
}

// RepoConfig is the repository's config file: reading it needs the password,
// so a successful CatConfig proves the password works.
type RepoConfig struct {
	Version           int    `json:"version"`
	ID                string `json:"id"`
	ChunkerPolynomial string `json:"chunker_polynomial"`
}

// CatConfig reads the repository's config without locking.
func (r *Runner) CatConfig(ctx context.Context, repo Repo) (*RepoConfig, error) {
	var stdout bytes.Buffer
	if _, err := r.run(ctx, call{
		command: "cat",
		args:    []string{"--no-lock", "config"},
		repo:    &repo,
		stdout:  &stdout,
	}); err != nil {
		return nil, err
	}
	var cfg RepoConfig
	if err := json.Unmarshal(stdout.Bytes(), &cfg); err != nil || cfg.ID == "" {
		return nil, fmt.Errorf("restic cat config: %w: cannot decode the config: %v", ErrFailed, err)
	}
	return &cfg, nil
}

// Lock is a lock file in the repository.
type Lock struct {
	ID        string    `json:"-"`
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	Username  string    `json:"username"`
	PID       int       `json:"pid"`
	UID       uint32    `json:"uid"`
	GID       uint32    `json:"gid"`
}

var lockID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ListLocks lists the repository's locks without taking one (`list locks`,
// then `cat lock` for each, which is one restic run per lock). Locks that
// disappear in between are left out.
func (r *Runner) ListLocks(ctx context.Context, repo Repo) ([]Lock, error) {
	var ids []string
	if _, err := r.run(ctx, call{
		command: "list",
		args:    []string{"--no-lock", "locks"},
		repo:    &repo,
		onEvent: func(ev Event) error {
			if ev, ok := ev.(*Text); ok && lockID.MatchString(strings.TrimSpace(ev.Line)) {
				ids = append(ids, strings.TrimSpace(ev.Line))
			}
			return nil
		},
	}); err != nil {
		return nil, err
	}
	locks := make([]Lock, 0, len(ids))
	for _, id := range ids {
		var stdout bytes.Buffer
		_, err := r.run(ctx, call{
			command: "cat",
			args:    []string{"--no-lock", "lock", id},
			repo:    &repo,
			stdout:  &stdout,
		})
		var e *Error
		if errors.As(err, &e) && e.ExitCode == 1 && lockVanished(e) {
			continue
		}
		if err != nil {
			return nil, err
		}
		l := Lock{ID: id}
		if err := json.Unmarshal(stdout.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("restic cat lock %s: %w: cannot decode the lock: %v", id, ErrFailed, err)
		}
		locks = append(locks, l)
	}
	return locks, nil
}

func lockVanished(e *Error) bool {
	all := e.Message + "\n" + e.Tail
	for _, s := range []string{"no such file", "does not exist", "NoSuchKey", "not found"} {
		if strings.Contains(all, s) {
			return true
		}
	}
	return false
}

// UnlockOptions tunes unlock.
type UnlockOptions struct {
	// RemoveAll removes every lock, not only stale ones. Only for a
	// repository nobody else is using.
	RemoveAll bool
}

// Unlock removes stale locks (locks of processes that are gone, or older
// than 30 minutes without refresh), or all locks with RemoveAll.
func (r *Runner) Unlock(ctx context.Context, repo Repo, opts UnlockOptions) error {
	var args []string
	if opts.RemoveAll {
		args = append(args, "--remove-all")
	}
	_, err := r.run(ctx, call{command: "unlock", args: args, repo: &repo})
	return err
}

var snapshotIDPattern = regexp.MustCompile(`^(latest|[0-9a-f]{1,64})$`)

func checkSnapshotID(id string) error {
	if !snapshotIDPattern.MatchString(id) {
		return fmt.Errorf("invalid snapshot ID %q", id)
	}
	return nil
}
