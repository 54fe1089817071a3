package sandbox

import (
	"context"
	"errors"
	"testing"

	"github.com/chatons/archipelago/internal/vaults"
)

// TestSeedingRetriesTransientIslandErrors: an island that answers 503 or times out a few
// times (a loaded machine) no longer aborts seeding — the step is tried again — while a
// refusal of the input fails at once.
func TestSeedingRetriesTransientIslandErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	calls := 0
	got, err := retrySeed(ctx, nil, "flaky step", func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return 0, &vaults.UnreachableError{Island: "north", Operation: "CreateKey", Err: context.DeadlineExceeded}
		}
		return 42, nil
	})
	if err != nil || got != 42 || calls != 3 {
		t.Fatalf("transient failures: got %d after %d calls, %v", got, calls, err)
	}
	calls = 0
	refused := &vaults.FieldError{Field: "name", Problem: "is taken"}
	if _, err := retrySeed(ctx, nil, "refused step", func(context.Context) (int, error) {
		calls++
		return 0, refused
	}); !errors.Is(err, refused) || calls != 1 {
		t.Fatalf("refusal: %d calls, %v", calls, err)
	}
	calls = 0
	if _, err := retrySeed(ctx, nil, "pending vault", func(context.Context) (int, error) {
		calls++
		if calls < 2 {
			return 0, errPending
		}
		return 1, nil
	}); err != nil || calls != 2 {
		t.Fatalf("pending vault: %d calls, %v", calls, err)
	}
}
