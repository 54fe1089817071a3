// Package proc owns the child processes Archipelago's sandbox and test harness start
// (PostgreSQL, MinIO): started in their own process group, told to die with their parent,
// optionally as another user, and stopped by the PID their starter owns — never by name.
package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Process is a child process owned by its starter.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Options describe how to start a child.
type Options struct {
	Name    string
	Path    string
	Args    []string
	Env     []string // added to a minimal environment
	Dir     string
	LogFile string      // stdout and stderr go here when set
	As      *Credential // run as this user (e.g. postgres when we are root)
}

// Credential is a Unix user to run a child as.
type Credential struct{ UID, GID uint32 }

// LookupUser returns the credential of a local user.
func LookupUser(name string) (*Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &Credential{UID: uint32(uid), GID: uint32(gid)}, nil
}

// Start starts the child. The child gets SIGTERM if this process dies.
func Start(o Options) (*Process, error) {
	cmd := exec.Command(o.Path, o.Args...)
	cmd.Dir = o.Dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "TZ=UTC"}, o.Env...)
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if o.As != nil {
		attr.Credential = &syscall.Credential{Uid: o.As.UID, Gid: o.As.GID}
	}
	cmd.SysProcAttr = attr
	if o.LogFile != "" {
		f, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Name, err)
	}
	p := &Process{Name: o.Name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// PID is the child's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the child has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Stop sends sig to the child's process group and waits up to grace, then kills the group.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %s and was killed", p.Name, grace)
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor calls ready until it returns nil, the child exits, or ctx ends.
func (p *Process) WaitFor(ctx context.Context, what string, ready func(context.Context) error) error {
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v): %w", p.Name, p.err, last)
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not ready: %w", p.Name, what, errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FindTool locates a pinned tool binary: the path in envVar when set, else .tools/bin/name
// below the project root (found by walking up from the working directory and from the
// executable), else PATH. The error says how to get it.
func FindTool(name, envVar string) (string, error) {
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", envVar, p, err)
		}
		return p, nil
	}
	starts := []string{}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			p := filepath.Join(d, ".tools", "bin", name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
				return p, nil
			}
			if d == filepath.Dir(d) {
				break
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found: run `make tools` in the Archipelago checkout (it builds the pinned version into .tools/bin), or set %s to its path", name, envVar)
}
