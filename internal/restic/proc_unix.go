//go:build unix

package restic

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in a process group of its own, so that a
// terminal's Ctrl-C reaches Archipelago (which then stops restic cleanly)
// rather than restic directly, and so that signals reach all of restic.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// interruptGroup sends SIGINT to the child's process group: restic then
// removes its locks and exits with code 130.
func interruptGroup(p *os.Process) error {
	err := syscall.Kill(-p.Pid, syscall.SIGINT)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// killGroup kills whatever is left in the child's process group once the
// child itself has been waited for.
func killGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
