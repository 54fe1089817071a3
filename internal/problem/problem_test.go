package problem_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatons/archipelago/internal/problem"
)

var constraints = problem.Constraints{
	Unique:      map[string]problem.ConflictError{"things_name_key": {Field: "name", Problem: "is already used"}},
	CheckFields: []string{"bucket_name", "name"},
}

func TestTranslateTurnsConstraintViolationsIntoTheVocabulary(t *testing.T) {
	t.Parallel()
	var ce *problem.ConflictError
	if err := constraints.Translate(fmt.Errorf("insert: %w", &pgconn.PgError{Code: "23505", ConstraintName: "things_name_key"})); !errors.As(err, &ce) || ce.Field != "name" || ce.Problem != "is already used" {
		t.Errorf("listed unique violation: %v", err)
	}
	if err := constraints.Translate(&pgconn.PgError{Code: "23505", ConstraintName: "other_key"}); !errors.As(err, &ce) || ce.Problem != "already exists" {
		t.Errorf("unlisted unique violation: %v", err)
	}
	if err := constraints.Translate(&pgconn.PgError{Code: "23503", TableName: "live_pledges"}); !errors.Is(err, problem.ErrInUse) || !strings.Contains(err.Error(), "live pledges") {
		t.Errorf("foreign key violation: %v", err)
	}
	var fe *problem.FieldError
	if err := constraints.Translate(&pgconn.PgError{Code: "23514", ConstraintName: "things_bucket_name_check"}); !errors.As(err, &fe) || fe.Field != "bucket_name" {
		t.Errorf("check violation: %v (the most specific field first)", err)
	}
	other := errors.New("boom")
	if err := constraints.Translate(other); err != other {
		t.Errorf("other errors pass through: %v", err)
	}
	if constraints.Translate(nil) != nil {
		t.Error("nil stays nil")
	}
}

func TestEveryNotFoundMatchesErrNotFound(t *testing.T) {
	t.Parallel()
	vault := problem.NotFound("vault")
	err := fmt.Errorf("vault 3: %w", vault)
	if !errors.Is(err, problem.ErrNotFound) || !errors.Is(err, vault) {
		t.Fatalf("%v does not match ErrNotFound and its own sentinel", err)
	}
	if errors.Is(err, problem.NotFound("vault")) {
		t.Error("two domains' sentinels must stay distinct")
	}
}

func TestTruncateBoundsEchoedInput(t *testing.T) {
	t.Parallel()
	if got := problem.Truncate(strings.Repeat("é", 100_000), 100); len(got) > 100+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("a 100k input echoes %d bytes", len(got))
	}
	if got := problem.Truncate("short", 100); got != "short" {
		t.Errorf("short input changed: %q", got)
	}
}
