package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/paging"

	"github.com/chatons/archipelago/internal/problem"
)

// Event kinds.
const (
	KindRestoreFailed   = "restore.failed"   // a restore test failed
	KindRestoreError    = "restore.error"    // a restore test could not run (infrastructure, credentials)
	KindSnapshotStale   = "snapshot.stale"   // the newest snapshot is older than the repository's RPO
	KindDeletionsSeen   = "deletions.seen"   // snapshots disappeared since the previous test
	KindQuota80         = "quota.80"         // a vault crossed 80 % of its quota
	KindQuota95         = "quota.95"         // … 95 %
	KindQuota100        = "quota.100"        // … is full
	KindPledgeDown      = "pledge.down"      // a pledged node is unreachable
	KindReportPublished = "report.published" // a report was generated
	KindTest            = "test"             // a test message asked for by a person
	// Protected vaults (internal/protection).
	KindLifecycleRule = "vault.lifecycle" // a lifecycle rule Archipelago did not set was found (and removed)
	KindCopyDeletions = "copy.deletions"  // objects disappeared from a vault; the copy keeps them for the grace period
	KindCopyOverwrite = "copy.overwrite"  // a vault object no longer matches its name; the copy keeps the good one
	KindCopyFailed    = "copy.failed"     // a copy run failed
	// Member-side agents (internal/attest).
	KindAgentStale = "agent.stale" // a repository's agent stopped reporting past its schedule + grace
	// Multi-party approval (internal/approvals).
	KindApprovalRequested = "approval.requested" // an approval request waits for the votes of other organisations
	KindApprovalDecided   = "approval.decided"   // a request was approved, rejected, cancelled, expired or executed
	KindApprovalLiveness  = "approval.liveness"  // fewer approver organisations can be reached than the approvals required
	KindApprovalPing      = "approval.ping"      // an approver is asked to acknowledge that they can be reached
)

// Kinds lists the event kinds a channel may subscribe to, in display order.
var Kinds = []string{KindRestoreFailed, KindRestoreError, KindSnapshotStale, KindDeletionsSeen,
	KindQuota80, KindQuota95, KindQuota100, KindPledgeDown, KindReportPublished,
	KindLifecycleRule, KindCopyDeletions, KindCopyOverwrite, KindCopyFailed, KindAgentStale,
	KindApprovalRequested, KindApprovalDecided, KindApprovalLiveness, KindApprovalPing}

// Severities, in increasing order.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// DefaultSeverity is the severity of each kind when the emitter does not say.
var DefaultSeverity = map[string]string{
	KindRestoreFailed: SeverityCritical, KindRestoreError: SeverityCritical, KindSnapshotStale: SeverityWarning,
	KindDeletionsSeen: SeverityWarning, KindQuota80: SeverityWarning, KindQuota95: SeverityCritical,
	KindQuota100: SeverityCritical, KindPledgeDown: SeverityCritical, KindReportPublished: SeverityInfo,
	KindTest: SeverityInfo, KindLifecycleRule: SeverityCritical, KindCopyDeletions: SeverityWarning,
	KindCopyOverwrite: SeverityCritical, KindCopyFailed: SeverityWarning, KindAgentStale: SeverityWarning,
	KindApprovalRequested: SeverityWarning, KindApprovalDecided: SeverityInfo, KindApprovalLiveness: SeverityCritical,
	KindApprovalPing: SeverityInfo,
}

// DedupWindow is how long a subject stays quiet on a channel after a message about it:
// further events of no higher severity go to the digest; after the window a still-broken
// subject is announced again.
const DedupWindow = 24 * time.Hour

// Event is something worth telling a member (MemberID set) or the federation (nil).
type Event struct {
	Kind     string
	Severity string // default DefaultSeverity[Kind]
	MemberID *int64
	// Subject names what the event is about ("repository/12", "vault/3"); with the channel
	// it is the de-duplication key.
	Subject string
	Title   string         // one line for people
	Detail  map[string]any // JSON, without secrets
	At      time.Time      // default now
}

// Querier is what reads need: a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

var kindRE = regexp.MustCompile(`^[a-z0-9_.]{1,60}$`)

// ErrNotFound means no such object, or one the caller may not see.
var ErrNotFound = problem.NotFound("channel")

// FieldError is bad input naming its field.
type FieldError = problem.FieldError

func severityRank(s string) int {
	return slices.Index([]string{SeverityInfo, SeverityWarning, SeverityCritical}, s)
}

// Emit records an event in tx and fans it out to the channels that want it: the member's
// channels and the federation-wide ones. On each channel the first event about a subject
// is queued for delivery at once; later ones within DedupWindow that are not more severe
// are held for the channel's next digest. It returns the event's id.
func Emit(ctx context.Context, tx pgx.Tx, e Event) (int64, error) {
	if !kindRE.MatchString(e.Kind) {
		return 0, fmt.Errorf("notify: bad event kind %q", e.Kind)
	}
	if e.Severity == "" {
		e.Severity = DefaultSeverity[e.Kind]
	}
	if severityRank(e.Severity) < 0 {
		return 0, fmt.Errorf("notify: bad severity %q for %s", e.Severity, e.Kind)
	}
	if e.Subject == "" || e.Title == "" {
		return 0, fmt.Errorf("notify: event %s needs a subject and a title", e.Kind)
	}
	if len(e.Title) > 500 {
		e.Title = e.Title[:497] + "…"
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	raw, err := json.Marshal(detail)
	if err != nil {
		return 0, fmt.Errorf("notify: encode detail of %s: %w", e.Kind, err)
	}
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO notify_events (member_id, kind, severity, subject, title, detail, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, e.MemberID, e.Kind, e.Severity, e.Subject, e.Title, raw, e.At).Scan(&id); err != nil {
		return 0, fmt.Errorf("notify: record %s event: %w", e.Kind, err)
	}
	rows, err := tx.Query(ctx, `SELECT id FROM notify_channels
		WHERE enabled AND (member_id IS NULL OR member_id = $1) AND (events = '{}' OR $2 = ANY (events))
		ORDER BY id`, e.MemberID, e.Kind)
	if err != nil {
		return 0, fmt.Errorf("notify: channels for %s: %w", e.Kind, err)
	}
	channels, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("notify: channels for %s: %w", e.Kind, err)
	}
	for _, ch := range channels {
		if err := fanOut(ctx, tx, ch, id, e); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// fanOut queues event id for channel ch at once, or for its digest.
func fanOut(ctx context.Context, tx pgx.Tx, ch, id int64, e Event) error {
	now := e.At
	// The upsert wins (and the event goes out at once) when the subject is new on this
	// channel, its window has passed, or the event is more severe than the last message.
	var immediate bool
	err := tx.QueryRow(ctx, `INSERT INTO notify_dedup AS d (channel_id, subject, severity, sent_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (channel_id, subject) DO UPDATE SET severity = EXCLUDED.severity, sent_at = EXCLUDED.sent_at
		WHERE d.sent_at < $5
		   OR array_position(ARRAY['info','warning','critical'], EXCLUDED.severity) > array_position(ARRAY['info','warning','critical'], d.severity)
		RETURNING true`, ch, e.Subject, e.Severity, now, now.Add(-DedupWindow)).Scan(&immediate)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err = tx.Exec(ctx, `INSERT INTO notify_digest_items (channel_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, ch, id)
		if err != nil {
			return fmt.Errorf("notify: hold event %d for the digest of channel %d: %w", id, ch, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("notify: de-duplicate event %d on channel %d: %w", id, ch, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO notify_deliveries (channel_id, kind, event_ids) VALUES ($1, 'event', ARRAY[$2::bigint])`, ch, id); err != nil {
		return fmt.Errorf("notify: queue event %d for channel %d: %w", id, ch, err)
	}
	return nil
}

// Resolve says the problem with subject is over (the repository passes again, the vault
// went back under its thresholds): the next event about it is announced at once.
func Resolve(ctx context.Context, tx pgx.Tx, subject string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM notify_dedup WHERE subject = $1`, subject); err != nil {
		return fmt.Errorf("notify: resolve %s: %w", subject, err)
	}
	return nil
}

// EventView is an event as the API and messages show it.
type EventView struct {
	ID         int64          `json:"id"`
	Kind       string         `json:"kind"`
	Severity   string         `json:"severity"`
	MemberID   *int64         `json:"member_id"`
	MemberSlug string         `json:"member_slug,omitempty"`
	Subject    string         `json:"subject"`
	Title      string         `json:"title"`
	Detail     map[string]any `json:"detail"`
	At         time.Time      `json:"at"`
}

const eventColumns = `e.id, e.kind, e.severity, e.member_id, coalesce(m.slug, ''), e.subject, e.title, e.detail, e.at`

func scanEvent(r pgx.CollectableRow) (EventView, error) {
	var v EventView
	err := r.Scan(&v.ID, &v.Kind, &v.Severity, &v.MemberID, &v.MemberSlug, &v.Subject, &v.Title, &v.Detail, &v.At)
	v.At = v.At.UTC()
	return v, err
}

// EventsByID returns the events with these ids, oldest first.
func EventsByID(ctx context.Context, q Querier, ids []int64) ([]EventView, error) {
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM notify_events e LEFT JOIN members m ON m.id = e.member_id
		WHERE e.id = ANY ($1) ORDER BY e.at, e.id`, ids)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return pgx.CollectRows(rows, scanEvent)
}

// EventFilter selects events.
type EventFilter struct {
	MemberIDs []int64 // events of these members
	All       bool    // every event (federation admins)
	Since     time.Time
	Limit     int // default 50, at most 500
}

// EventList returns events, newest first. Without All, federation-level events are
// included only with All.
func EventList(ctx context.Context, q Querier, f EventFilter) ([]EventView, error) {
	limit := f.Limit
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM notify_events e LEFT JOIN members m ON m.id = e.member_id
		WHERE ($1 OR e.member_id = ANY ($2)) AND e.at >= $3 ORDER BY e.at DESC, e.id DESC LIMIT $4`,
		f.All, f.MemberIDs, f.Since, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return pgx.CollectRows(rows, scanEvent)
}

// EventPage lists one page of the events f selects (f.Limit is ignored: r has the limit),
// newest first, in internal/paging's style (the cursor is the last event's time and id).
func EventPage(ctx context.Context, q Querier, f EventFilter, r paging.Request) (paging.Page[EventView], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[EventView]{}, err
	}
	var (
		at time.Time
		id int64
	)
	after, err := r.Keys(&at, &id)
	if err != nil {
		return paging.Page[EventView]{}, err
	}
	if !f.All && len(f.MemberIDs) == 0 {
		return paging.Page[EventView]{Items: []EventView{}}, nil
	}
	var w database.Where
	if !f.All {
		w.And("e.member_id = ANY(?)", f.MemberIDs)
	}
	if !f.Since.IsZero() {
		w.And("e.at >= ?", f.Since)
	}
	if after {
		w.And("e.at <= ? AND (e.at, e.id) < (?, ?)", at, at, id)
	}
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM notify_events e LEFT JOIN members m ON m.id = e.member_id`+
		w.String()+` ORDER BY e.at DESC, e.id DESC LIMIT `+w.Arg(size+1), w.Args...)
	if err != nil {
		return paging.Page[EventView]{}, fmt.Errorf("list events: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return paging.Page[EventView]{}, fmt.Errorf("list events: %w", err)
	}
	return paging.Cut(out, size, func(e EventView) []any { return []any{e.At, e.ID} }), nil
}
