package selfbackup

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
)

// CountedTables are the tables whose row counts a backup records and a restore compares:
// the federation's members and people, its islands and vaults, the repositories tested,
// and the audit log (append-only: its count is the log's size).
var CountedTables = []string{"members", "users", "islands", "vaults", "restic_repositories", "audit_entries"}

// Metadata is what a backup records of the database it dumped, read in the very snapshot
// pg_dump dumps (pg_export_snapshot): the schema version tern applied and row counts.
type Metadata struct {
	SchemaVersion int32            `json:"schema_version"`
	Rows          map[string]int64 `json:"rows"`
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readMetadata reads the schema version and the counted tables' rows.
func readMetadata(ctx context.Context, q queryRower) (Metadata, error) {
	m := Metadata{Rows: map[string]int64{}}
	if err := q.QueryRow(ctx, `SELECT version FROM `+database.VersionTable).Scan(&m.SchemaVersion); err != nil {
		return m, fmt.Errorf("read the schema version: %w", err)
	}
	for _, t := range CountedTables {
		var n int64
		if err := q.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
			return m, fmt.Errorf("count the rows of %s: %w", t, err)
		}
		m.Rows[t] = n
	}
	return m, nil
}

// tags are the snapshot's tags: the coordinator's tag, the schema version and each count
// ("schema=22", "rows.members=12"): a snapshot describes itself without the coordinator.
func (m Metadata) tags() []string {
	tags := []string{Tag, "schema=" + strconv.Itoa(int(m.SchemaVersion))}
	for _, t := range slices.Sorted(maps.Keys(m.Rows)) {
		tags = append(tags, fmt.Sprintf("rows.%s=%d", t, m.Rows[t]))
	}
	return tags
}

// metadataFromTags reads back what tags wrote.
func metadataFromTags(tags []string) (Metadata, error) {
	m := Metadata{Rows: map[string]int64{}}
	schema := false
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch {
		case k == "schema":
			m.SchemaVersion, schema = int32(n), true
		case strings.HasPrefix(k, "rows."):
			m.Rows[strings.TrimPrefix(k, "rows.")] = n
		}
	}
	if !schema || len(m.Rows) == 0 {
		return m, errors.New("the snapshot has no schema version or row counts in its tags: not made by archipelago admin backup")
	}
	return m, nil
}

// compare says how found differs from expected, or nil.
func (expected Metadata) compare(found Metadata) error {
	var diffs []string
	if found.SchemaVersion != expected.SchemaVersion {
		diffs = append(diffs, fmt.Sprintf("schema version %d, the snapshot says %d", found.SchemaVersion, expected.SchemaVersion))
	}
	for _, t := range slices.Sorted(maps.Keys(expected.Rows)) {
		if n, ok := found.Rows[t]; !ok || n != expected.Rows[t] {
			diffs = append(diffs, fmt.Sprintf("%s has %d rows, the snapshot says %d", t, n, expected.Rows[t]))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the restored database differs from the one dumped: %s", strings.Join(diffs, "; "))
	}
	return nil
}
