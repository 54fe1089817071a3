package reports

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
)

// RecordedCheckpoints returns the audit checkpoint each stored report carries, for
// `archipelago audit verify` (an audit.CheckpointSource): reports live outside the audit
// log's tables, so a truncation of the log that also deleted its later checkpoints still
// meets the checkpoints its reports published.
func RecordedCheckpoints(ctx context.Context, q audit.Querier) ([]audit.RecordedCheckpoint, error) {
	rows, err := q.Query(ctx, `SELECT id, generated_at, coalesce(convert_from(document, 'UTF8')::jsonb #>> '{checkpoint,note}', '')
		FROM reports ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read the checkpoints of reports: %w", err)
	}
	var (
		out  []audit.RecordedCheckpoint
		id   int64
		at   time.Time
		note string
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &at, &note}, func() error {
		if note != "" {
			out = append(out, audit.RecordedCheckpoint{Where: "report " + strconv.FormatInt(id, 10), Note: []byte(note), At: at})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the checkpoints of reports: %w", err)
	}
	return out, nil
}
