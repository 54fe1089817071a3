// Package reseal rewrites sealed values under the master keyring's current key, so that an
// old master key can leave the key file after a rotation (docs/security.md).
package reseal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/selfbackup"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// Columns are every sealed column of the schema (a test checks none is missing).
func Columns() []seal.Column {
	return slices.Concat(islands.SealedColumns(), vaults.SealedColumns(), verify.SealedColumns(), notify.SealedColumns(), protection.SealedColumns(), selfbackup.SealedColumns())
}

// Field is a sealed value kept inside a jsonb document rather than in a column of its own:
// the string at Path in Column of the rows of Table that match Where, sealed for
// Purpose(the number at KeyPath in the same document).
type Field struct {
	Table, IDColumn, Column string
	Path, KeyPath           []string
	Where                   string // SQL condition: the rows whose value someone will open
	Purpose                 func(key int64) string
}

// Name is how counts and the audit entry name the field: table.column.path.
func (f Field) Name() string { return f.Table + "." + f.Column + "." + strings.Join(f.Path, ".") }

// Fields are the sealed values kept inside jsonb documents: the new admin token of an island
// held by an open approval request (approvals.IslandChange.AdminTokenSealed, sealed by
// islands.Service.SealPendingToken, opened when the approved request is executed). Closed
// requests are left alone: nothing opens their token again.
func Fields() []Field {
	return []Field{{Table: "approval_requests", IDColumn: "id", Column: "params", Path: []string{"change", "admin_token_sealed"},
		KeyPath: []string{"island_id"}, Where: "action = '" + string(approvals.ActionIslandToken) + "' AND status IN ('pending', 'approved')",
		Purpose: func(island int64) string { return fmt.Sprintf("island/%d/pending_admin_token", island) }}}
}

// Count is what Run found in one column.
type Count struct {
	Column   string // table.column
	Values   int    // sealed values (empty ones are not counted)
	Current  int    // already sealed with the current key
	Resealed int    // sealed again with the current key (or, in a dry run, to be)
}

// ErrUnopenable means some values open with no key of the keyring: nothing was changed.
var ErrUnopenable = errors.New("reseal: values that no key of the master key file opens")

// Run seals again, with the keyring's current key, every value of cols (and of fields)
// sealed with an older key, in one transaction with one audit entry (counts only, never a
// value); with dryRun it only counts. When a value opens with no key of the keyring (a key
// removed from the file too early, or a damaged value) nothing is changed and the error
// names the rows.
func Run(ctx context.Context, pool *pgxpool.Pool, kr *seal.Keyring, cols []seal.Column, dryRun bool, fields ...Field) ([]Count, error) {
	ctx = audit.WithActor(ctx, audit.System("admin.reseal"))
	var counts []Count
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		counts = nil
		var bad []string
		for _, c := range cols {
			n := Count{Column: c.Table + "." + c.Column}
			rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s WHERE coalesce(%[2]s, '') <> '' ORDER BY 1 FOR UPDATE`,
				pgx.Identifier{c.IDColumn}.Sanitize(), pgx.Identifier{c.Column}.Sanitize(), pgx.Identifier{c.Table}.Sanitize()))
			if err != nil {
				return fmt.Errorf("read %s: %w", n.Column, err)
			}
			type value struct {
				ID     int64
				Sealed string
			}
			values, err := pgx.CollectRows(rows, pgx.RowToStructByPos[value])
			if err != nil {
				return fmt.Errorf("read %s: %w", n.Column, err)
			}
			for _, v := range values {
				n.Values++
				if seal.SealedKeyID(v.Sealed) == kr.CurrentKeyID() {
					n.Current++
					continue
				}
				plain, err := kr.Open(c.Purpose(v.ID), v.Sealed)
				if err != nil {
					bad = append(bad, fmt.Sprintf("%s %s=%d (sealed with key %q)", n.Column, c.IDColumn, v.ID, seal.SealedKeyID(v.Sealed)))
					continue
				}
				n.Resealed++
				if dryRun {
					continue
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = $2 WHERE %s = $1`, pgx.Identifier{c.Table}.Sanitize(),
					pgx.Identifier{c.Column}.Sanitize(), pgx.Identifier{c.IDColumn}.Sanitize()), v.ID, kr.Seal(c.Purpose(v.ID), plain)); err != nil {
					return fmt.Errorf("reseal %s %d: %w", n.Column, v.ID, err)
				}
			}
			counts = append(counts, n)
		}
		for _, f := range fields {
			n, fbad, err := resealField(ctx, tx, kr, f, dryRun)
			if err != nil {
				return err
			}
			counts, bad = append(counts, n), append(bad, fbad...)
		}
		if len(bad) > 0 {
			return fmt.Errorf("%w: %s", ErrUnopenable, strings.Join(bad, "; "))
		}
		details, total := map[string]any{"key_id": kr.CurrentKeyID()}, 0
		for _, c := range counts {
			details[c.Column], total = c.Resealed, total+c.Resealed
		}
		if dryRun || total == 0 {
			return nil
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "seal.reseal", TargetType: "master_key", TargetID: kr.CurrentKeyID(), Details: details})
		return err
	})
	return counts, err
}

// resealField is Run's work on one field: the values that no key opens are returned as bad.
func resealField(ctx context.Context, tx pgx.Tx, kr *seal.Keyring, f Field, dryRun bool) (Count, []string, error) {
	n := Count{Column: f.Name()}
	table, id, col := pgx.Identifier{f.Table}.Sanitize(), pgx.Identifier{f.IDColumn}.Sanitize(), pgx.Identifier{f.Column}.Sanitize()
	rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %s, (%s #>> $2::text[])::bigint, %[2]s #>> $1::text[] FROM %s
		WHERE (%s) AND coalesce(%[2]s #>> $1::text[], '') <> '' ORDER BY 1 FOR UPDATE`, id, col, table, f.Where), f.Path, f.KeyPath)
	if err != nil {
		return n, nil, fmt.Errorf("read %s: %w", n.Column, err)
	}
	type value struct {
		ID     int64
		Key    int64
		Sealed string
	}
	values, err := pgx.CollectRows(rows, pgx.RowToStructByPos[value])
	if err != nil {
		return n, nil, fmt.Errorf("read %s: %w", n.Column, err)
	}
	var bad []string
	for _, v := range values {
		n.Values++
		if seal.SealedKeyID(v.Sealed) == kr.CurrentKeyID() {
			n.Current++
			continue
		}
		plain, err := kr.Open(f.Purpose(v.Key), v.Sealed)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s %s=%d (sealed with key %q)", n.Column, f.IDColumn, v.ID, seal.SealedKeyID(v.Sealed)))
			continue
		}
		n.Resealed++
		if dryRun {
			continue
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = jsonb_set(%[2]s, $3::text[], to_jsonb($2::text)) WHERE %s = $1`, table, col, id),
			v.ID, kr.Seal(f.Purpose(v.Key), plain), f.Path); err != nil {
			return n, nil, fmt.Errorf("reseal %s %d: %w", n.Column, v.ID, err)
		}
	}
	return n, bad, nil
}
