package restic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// CommandBackupOptions says which command's standard output to back up.
type CommandBackupOptions struct {
	// Command is the program and its arguments, run by restic itself
	// (`backup --stdin-from-command`): when it exits with an error restic
	// makes no snapshot and fails. Its arguments are visible to other users
	// of the machine (ps): put secrets in Env, never here.
	Command []string
	// Env is added to the environment restic and the command run with
	// ("NAME=value"). Every value is scrubbed from the output kept.
	Env []string
	// Filename is the name the output gets in the snapshot (restic's
	// --stdin-filename), e.g. "archipelago.dump": the snapshot holds one file,
	// "/" + Filename.
	Filename string
	// Tags are added to the snapshot; a tag must not contain a comma.
	Tags []string
	// Host overrides the hostname recorded in the snapshot.
	Host string
}

// BackupCommand makes a snapshot of one file: the standard output of
// opts.Command, which restic starts and reads (restic ≥ 0.17). If the command
// fails, restic aborts and no snapshot is made: the returned error says so and
// carries the command's last lines of standard error (restic prints them as
// "subprocess NAME: …").
func (r *Runner) BackupCommand(ctx context.Context, repo Repo, opts CommandBackupOptions) (*BackupSummary, error) {
	if len(opts.Command) == 0 || opts.Command[0] == "" {
		return nil, errors.New("restic backup: no command given")
	}
	if opts.Filename == "" || strings.ContainsAny(opts.Filename, "/\x00") {
		return nil, fmt.Errorf("restic backup: invalid file name %q", opts.Filename)
	}
	args := []string{"--stdin-from-command", "--stdin-filename=" + opts.Filename}
	if opts.Host != "" {
		args = append(args, "--host="+opts.Host)
	}
	for _, t := range opts.Tags {
		if t == "" || strings.Contains(t, ",") {
			return nil, fmt.Errorf("restic backup: invalid tag %q", t)
		}
		args = append(args, "--tag="+t)
	}
	args = append(args, "--")
	args = append(args, opts.Command...)
	var secrets []string
	for _, kv := range opts.Env {
		if _, v, _ := strings.Cut(kv, "="); v != "" {
			secrets = append(secrets, v)
		}
	}
	var sum *BackupSummary
	_, err := r.run(ctx, call{
		command: "backup",
		args:    args,
		repo:    &repo,
		env:     opts.Env,
		secrets: secrets,
		onEvent: func(ev Event) error {
			if ev, ok := ev.(*BackupSummary); ok {
				sum = ev
			}
			return nil
		},
	})
	if err != nil {
		var e *Error
		if errors.As(err, &e) && strings.Contains(e.Message+"\n"+e.Tail, "command failed") {
			return nil, fmt.Errorf("%s failed, restic made no snapshot: %w", path.Base(opts.Command[0]), err)
		}
		return nil, err
	}
	if sum == nil || sum.SnapshotID == "" {
		return nil, fmt.Errorf("restic backup: %w: no summary with a snapshot ID", ErrFailed)
	}
	return sum, nil
}

// ForgetPolicy says which snapshots `restic forget` keeps: the newest of each of
// the last N days, weeks, months (restic's --keep-daily, --keep-weekly,
// --keep-monthly), and always the newest Last. Zero values keep nothing by that
// rule; a policy with every value zero is refused (it would forget everything).
type ForgetPolicy struct {
	Last, Daily, Weekly, Monthly int
	// Tags restricts forget to snapshots with all of these tags.
	Tags []string
}

// Empty reports whether the policy keeps nothing.
func (p ForgetPolicy) Empty() bool { return p.Last+p.Daily+p.Weekly+p.Monthly == 0 }

// ForgetResult is what forget did.
type ForgetResult struct {
	// Removed are the IDs of the snapshots forgotten.
	Removed []string
	// Kept counts the snapshots kept.
	Kept     int
	Duration time.Duration
}

// Forget forgets the snapshots the policy does not keep and, with prune,
// deletes the data no snapshot needs any more (an exclusive lock: nothing else
// can write the repository meanwhile).
func (r *Runner) Forget(ctx context.Context, repo Repo, p ForgetPolicy, prune bool) (*ForgetResult, error) {
	if p.Empty() || p.Last < 0 || p.Daily < 0 || p.Weekly < 0 || p.Monthly < 0 {
		return nil, errors.New("restic forget: the policy must keep something (a positive count)")
	}
	args := []string{}
	for _, k := range []struct {
		flag string
		n    int
	}{{"--keep-last", p.Last}, {"--keep-daily", p.Daily}, {"--keep-weekly", p.Weekly}, {"--keep-monthly", p.Monthly}} {
		if k.n > 0 {
			args = append(args, fmt.Sprintf("%s=%d", k.flag, k.n))
		}
	}
	if len(p.Tags) > 0 {
		args = append(args, "--tag="+strings.Join(p.Tags, ","))
	}
	if prune {
		args = append(args, "--prune")
	}
	var raw []byte
	out, err := r.run(ctx, call{
		command: "forget",
		args:    args,
		repo:    &repo,
		onEvent: func(ev Event) error {
			if ev, ok := ev.(*RawJSON); ok && raw == nil {
				raw = ev.Data
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	res := &ForgetResult{Duration: out.duration}
	if raw != nil {
		groups, err := parseForget(raw)
		if err != nil {
			return nil, fmt.Errorf("restic forget: %w: %v", ErrFailed, err)
		}
		for _, g := range groups {
			res.Kept += len(g.Keep)
			for _, s := range g.Remove {
				res.Removed = append(res.Removed, s.ID)
			}
		}
	}
	return res, nil
}

type forgetGroup struct {
	Keep   []Snapshot `json:"keep"`
	Remove []Snapshot `json:"remove"`
}

func parseForget(raw []byte) ([]forgetGroup, error) {
	var groups []forgetGroup
	if err := json.Unmarshal(raw, &groups); err != nil {
		return nil, err
	}
	return groups, nil
}

// ParseForgetPolicy reads a retention such as "daily=14,weekly=8,monthly=12" (names last,
// daily, weekly, monthly; each a positive count). "all" (or "") keeps every snapshot: the
// empty policy.
func ParseForgetPolicy(s string) (ForgetPolicy, error) {
	var p ForgetPolicy
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" || s == "all" {
		return p, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || err != nil || n < 1 || n > 100000 {
			return p, fmt.Errorf("%q is not NAME=COUNT with a positive count (e.g. daily=14,weekly=8,monthly=12), or all", part)
		}
		switch strings.TrimSpace(k) {
		case "last":
			p.Last = n
		case "daily":
			p.Daily = n
		case "weekly":
			p.Weekly = n
		case "monthly":
			p.Monthly = n
		default:
			return p, fmt.Errorf("%q: the names are last, daily, weekly and monthly", k)
		}
	}
	return p, nil
}

// String is the policy as ParseForgetPolicy reads it ("all" when empty).
func (p ForgetPolicy) String() string {
	var parts []string
	for _, k := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}} {
		if k.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k.name, k.n))
		}
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ",")
}
