package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/chatons/archipelago/internal/minioserver"
	"github.com/chatons/archipelago/internal/pgcluster"
	"github.com/chatons/archipelago/internal/testenv"
)

// RunWithServices starts a throwaway PostgreSQL cluster and MinIO, runs args with their
// coordinates in the ARCHIPELAGO_TEST_* variables, then stops both — also when the command
// fails or ctx is cancelled (Ctrl-C). It returns the command's exit code.
func RunWithServices(ctx context.Context, args []string, out io.Writer, log *slog.Logger) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("testenv: no command given (usage: archipelago testenv -- go test ./...)")
	}
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Logger: log})
	if err != nil {
		return 1, fmt.Errorf("testenv: start PostgreSQL: %w", err)
	}
	defer pg.Stop()
	s3, err := minioserver.Start(ctx, minioserver.Options{Logger: log})
	if err != nil {
		return 1, fmt.Errorf("testenv: start MinIO: %w", err)
	}
	defer s3.Stop()
	fmt.Fprintf(out, "testenv: PostgreSQL on 127.0.0.1:%d (pid %d), MinIO on %s (pid %d)\n", pg.Port, pg.PID(), s3.Endpoint, s3.PID())

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		testenv.EnvPGURL+"="+pg.URL("postgres"),
		testenv.EnvS3Endpoint+"="+s3.Endpoint,
		testenv.EnvS3AccessKey+"="+s3.AccessKey,
		testenv.EnvS3SecretKey+"="+s3.SecretKey,
		testenv.EnvS3Region+"="+s3.Region,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("testenv: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	if ctx.Err() != nil {
		return 130, nil
	}
	return 0, nil
}
