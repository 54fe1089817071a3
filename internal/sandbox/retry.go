package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/vaults"
)

// seedPatience bounds how long seeding retries one step that failed for a transient
// reason (an island's admin API slow or briefly unavailable on a loaded machine).
const seedPatience = 3 * time.Minute

// transient reports whether err is an island that did not answer in time or answered
// that it is unavailable: worth trying again, unlike a refusal of the input.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var (
		ue *problem.UnreachableError // vaults' and islands' UnreachableError
		ne net.Error
	)
	return errors.As(err, &ue) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, garage.ErrUnavailable) ||
		errors.Is(err, errPending)
}

// errPending is a vault still pending after a seeding step: the island did not finish
// provisioning it (the reconciler would, later).
var errPending = errors.New("the vault is still pending")

// retrySeed runs step until it succeeds, fails for a reason that is not transient, or
// seedPatience is over, pausing longer after each transient failure.
func retrySeed[T any](ctx context.Context, log *slog.Logger, what string, step func(context.Context) (T, error)) (T, error) {
	deadline := time.Now().Add(seedPatience)
	pause := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err := step(ctx)
		if !transient(err) || ctx.Err() != nil {
			return out, err
		}
		if time.Now().Add(pause).After(deadline) {
			return out, fmt.Errorf("%s: still failing after %d attempts: %w", what, attempt, err)
		}
		if log != nil {
			log.WarnContext(ctx, "sandbox: seeding step failed, retrying", slog.String("step", what),
				slog.Int("attempt", attempt), slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// retryStep is retrySeed for a step with no result.
func retryStep(ctx context.Context, a *app.App, what string, step func(context.Context) error) error {
	_, err := retrySeed(ctx, a.Log, what, func(ctx context.Context) (struct{}, error) { return struct{}{}, step(ctx) })
	return err
}

// activeVault makes sure a vault seeding created is active: a vault left pending by an
// island error is provisioned again (as the reconciler would, later) until it is.
func activeVault(ctx context.Context, a *app.App, v vaults.Vault) (vaults.Vault, error) {
	if v.Status == vaults.StatusActive {
		return v, nil
	}
	return retrySeed(ctx, a.Log, "provision vault "+v.Name, func(ctx context.Context) (vaults.Vault, error) {
		rec, err := a.Vaults.ReconcileVault(ctx, v.ID)
		if err != nil {
			return v, err
		}
		cur, err := a.Vaults.VaultGetByID(ctx, v.ID)
		if err != nil {
			return v, err
		}
		switch {
		case cur.Status == vaults.StatusActive:
			return cur, nil
		case cur.Status == vaults.StatusPending && len(rec.Drift) == 0:
			return cur, fmt.Errorf("vault %s (%s): %w", cur.Name, cur.StatusDetail, errPending)
		}
		return cur, fmt.Errorf("vault %s is %s (%s)", cur.Name, cur.Status, cur.StatusDetail)
	})
}
