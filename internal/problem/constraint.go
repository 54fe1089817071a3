package problem

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Constraints tells Translate what a domain's constraints mean.
type Constraints struct {
	// Unique maps a unique constraint's name to the conflict it means.
	Unique map[string]ConflictError
	// CheckFields lists the fields whose name a check constraint's name contains, most
	// specific first ("bucket_name" before "name").
	CheckFields []string
}

// Translate turns a PostgreSQL constraint violation into this vocabulary: a unique
// violation into a ConflictError (the one listed for the constraint, else "already
// exists"), a foreign key violation into ErrInUse naming the referencing table, a check
// violation into a FieldError naming the field ("is out of range"). Other errors, and nil,
// are returned as they are.
func (c Constraints) Translate(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		if ce, ok := c.Unique[pe.ConstraintName]; ok {
			return &ce
		}
		return &ConflictError{Problem: "already exists"}
	case "23503": // foreign_key_violation
		return fmt.Errorf("%w: still referenced by %s", ErrInUse, strings.ReplaceAll(pe.TableName, "_", " "))
	case "23514": // check_violation
		return &FieldError{Field: c.checkField(pe.ConstraintName), Problem: "is out of range"}
	}
	return err
}

func (c Constraints) checkField(constraint string) string {
	for _, f := range c.CheckFields {
		if strings.Contains(constraint, f) {
			return f
		}
	}
	return ""
}

// IsUniqueViolation reports whether err is a PostgreSQL unique violation.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
