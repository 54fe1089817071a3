package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/problem"
)

// ErrNotFound means no such report (or one the caller may not see).
var ErrNotFound = problem.NotFound("report")

// FieldError is bad input naming its field.
type FieldError = problem.FieldError

// Checkpointer signs (or returns the latest) audit checkpoint: *audit.Service.
type Checkpointer interface {
	Checkpoint(ctx context.Context) (audit.Checkpoint, error)
	Keys() audit.Keys
}

// Service generates, stores and lists reports.
type Service struct {
	pool    *pgxpool.Pool
	audit   Checkpointer
	log     *slog.Logger
	periods []string
	now     func() time.Time
	glance  *glanceCache
}

// Config configures reports.
type Config struct {
	// Periods are the scheduled report periods (weekly, monthly); default both.
	Periods []string
	Now     func() time.Time
}

// New returns the reports service.
func New(pool *pgxpool.Pool, cp Checkpointer, log *slog.Logger, cfg Config) *Service {
	if cfg.Periods == nil {
		cfg.Periods = []string{PeriodWeekly, PeriodMonthly}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, audit: cp, log: log, periods: cfg.Periods, now: cfg.Now, glance: &glanceCache{}}
}

// Stored is a stored report's metadata.
type Stored struct {
	ID             int64     `json:"id"`
	Scope          string    `json:"scope"`
	MemberID       *int64    `json:"member_id"`
	MemberSlug     string    `json:"member_slug,omitempty"`
	Period         string    `json:"period"`
	PeriodStart    time.Time `json:"period_start"`
	PeriodEnd      time.Time `json:"period_end"`
	GeneratedAt    time.Time `json:"generated_at"`
	GeneratedBy    string    `json:"generated_by"`
	Schema         string    `json:"schema"`
	SHA256         string    `json:"sha256"`
	CheckpointSize int64     `json:"checkpoint_size"`
	AuditSeq       int64     `json:"audit_seq"`
	Summary        Summary   `json:"summary"`
}

const storedColumns = `r.id, r.scope, r.member_id, coalesce(m.slug, ''), r.period, r.period_start, r.period_end, r.generated_at,
	r.generated_by, r.schema_version, r.sha256, r.checkpoint_size, r.audit_seq, r.summary`

func scanStored(r pgx.CollectableRow) (Stored, error) {
	var s Stored
	err := r.Scan(&s.ID, &s.Scope, &s.MemberID, &s.MemberSlug, &s.Period, &s.PeriodStart, &s.PeriodEnd, &s.GeneratedAt,
		&s.GeneratedBy, &s.Schema, &s.SHA256, &s.CheckpointSize, &s.AuditSeq, &s.Summary)
	s.PeriodStart, s.PeriodEnd, s.GeneratedAt = s.PeriodStart.UTC(), s.PeriodEnd.UTC(), s.GeneratedAt.UTC()
	if s.Summary.Attention == nil {
		s.Summary.Attention = []string{}
	}
	return s, err
}

// Get returns a stored report and its JSON document.
func ReportGetByID(ctx context.Context, q Querier, id int64) (Stored, []byte, error) {
	rows, err := q.Query(ctx, `SELECT `+storedColumns+`, r.document FROM reports r LEFT JOIN members m ON m.id = r.member_id WHERE r.id = $1`, id)
	if err != nil {
		return Stored{}, nil, fmt.Errorf("report %d: %w", id, err)
	}
	var doc []byte
	s, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (Stored, error) {
		var s Stored
		err := r.Scan(&s.ID, &s.Scope, &s.MemberID, &s.MemberSlug, &s.Period, &s.PeriodStart, &s.PeriodEnd, &s.GeneratedAt,
			&s.GeneratedBy, &s.Schema, &s.SHA256, &s.CheckpointSize, &s.AuditSeq, &s.Summary, &doc)
		s.PeriodStart, s.PeriodEnd, s.GeneratedAt = s.PeriodStart.UTC(), s.PeriodEnd.UTC(), s.GeneratedAt.UTC()
		return s, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Stored{}, nil, fmt.Errorf("report %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Stored{}, nil, fmt.Errorf("report %d: %w", id, err)
	}
	return s, doc, nil
}

// storedByID returns a stored report without its document.
func storedByID(ctx context.Context, q Querier, id int64) (Stored, error) {
	rows, err := q.Query(ctx, `SELECT `+storedColumns+` FROM reports r LEFT JOIN members m ON m.id = r.member_id WHERE r.id = $1`, id)
	if err != nil {
		return Stored{}, fmt.Errorf("report %d: %w", id, err)
	}
	s, err := pgx.CollectExactlyOneRow(rows, scanStored)
	if errors.Is(err, pgx.ErrNoRows) {
		return Stored{}, fmt.Errorf("report %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Stored{}, fmt.Errorf("report %d: %w", id, err)
	}
	return s, nil
}

// Filter selects reports.
type Filter struct {
	All        bool    // every report (federation admins)
	MemberIDs  []int64 // reports of these members
	Federation bool    // and the federation reports
	Scope      string  // member or federation; "" both
}

// Request asks for a report.
type Request struct {
	Scope  string
	Member *MemberRef // for ScopeMember
	Period Period     // Kind weekly, monthly or custom; Start < End
}

// Generate builds a report now, stores it, records its hash in the audit log and emits
// a report.published notification, all in one transaction. The document carries the
// audit log's latest signed checkpoint (signed now if the log has grown).
func (s *Service) Generate(ctx context.Context, req Request) (Stored, error) {
	if err := validate(req); err != nil {
		return Stored{}, err
	}
	cp, err := s.audit.Checkpoint(ctx)
	if err != nil {
		return Stored{}, fmt.Errorf("report: audit checkpoint: %w", err)
	}
	in, err := Gather(ctx, s.pool, req.Scope, req.Member, req.Period)
	if err != nil {
		return Stored{}, err
	}
	in.GeneratedAt = s.now().UTC().Truncate(time.Second)
	in.Checkpoint = Checkpoint{Origin: cp.Origin, TreeSize: cp.Size, RootHash: cp.Root.String(), Note: string(cp.Note),
		VerifierKey: s.audit.Keys().VerifierKey}
	rep := Build(in)
	generatedAt := in.GeneratedAt // in is not used below: it can go while encoding
	doc, err := Encode(rep)
	if err != nil {
		return Stored{}, err
	}
	sum := sha256.Sum256(doc)
	hash := hex.EncodeToString(sum[:])
	actor, _ := audit.ActorFrom(ctx)
	var memberID *int64
	slug := ""
	if req.Member != nil {
		memberID, slug = &req.Member.ID, req.Member.Slug
	}
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO reports (scope, member_id, period, period_start, period_end, generated_at, generated_by,
				schema_version, document, sha256, checkpoint_size, audit_seq, summary)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12) RETURNING id`,
			req.Scope, memberID, req.Period.Kind, req.Period.Start, req.Period.End, generatedAt, actor.Name, rep.Schema, doc, hash,
			cp.Size, rep.Summary).Scan(&id)
		if err != nil {
			return err
		}
		seq, err := audit.Record(ctx, tx, audit.Entry{Action: "report.publish", MemberID: memberID, TargetType: "report",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"sha256": hash, "scope": req.Scope, "member": slug,
				"period": req.Period.Kind, "period_start": req.Period.Start.UTC(), "period_end": req.Period.End.UTC(),
				"checkpoint_size": cp.Size, "checkpoint_root": cp.Root.String(), "schema": rep.Schema}})
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE reports SET audit_seq = $2 WHERE id = $1`, id, seq); err != nil {
			return err
		}
		what, memberName := "federation", ""
		if req.Member != nil {
			what, memberName = req.Member.Name, req.Member.Name
		}
		_, err = notify.Emit(ctx, tx, notify.Event{Kind: notify.KindReportPublished, MemberID: memberID,
			Subject: "report/" + strconv.FormatInt(id, 10),
			Title: fmt.Sprintf("%s report for %s, %s – %s: %d green, %d amber, %d red, %d untested", req.Period.Kind, what,
				req.Period.Start.UTC().Format("2006-01-02"), req.Period.End.UTC().Format("2006-01-02"),
				rep.Summary.Green, rep.Summary.Amber, rep.Summary.Red, rep.Summary.Grey),
			Detail: map[string]any{"report_id": id, "sha256": hash, "scope": req.Scope, "period": req.Period.Kind,
				// For the message in its reader's language (internal/notify/language.go).
				"period_start": req.Period.Start.UTC(), "period_end": req.Period.End.UTC(), "member_name": memberName,
				"green": rep.Summary.Green, "amber": rep.Summary.Amber, "red": rep.Summary.Red, "untested": rep.Summary.Grey}})
		return err
	})
	if err != nil {
		return Stored{}, fmt.Errorf("store report: %w", err)
	}
	s.log.InfoContext(ctx, "report published", "report", id, "scope", req.Scope, "member", slug, "period", req.Period.Kind, "sha256", hash)
	return storedByID(ctx, s.pool, id) // not its document again
}

func validate(req Request) error {
	switch req.Scope {
	case ScopeMember:
		if req.Member == nil {
			return &FieldError{Field: "member", Problem: "is required for a member report"}
		}
	case ScopeFederation:
		if req.Member != nil {
			return &FieldError{Field: "member", Problem: "must be empty for a federation report"}
		}
	default:
		return &FieldError{Field: "scope", Problem: "must be member or federation"}
	}
	switch req.Period.Kind {
	case PeriodWeekly, PeriodMonthly, PeriodCustom:
	default:
		return &FieldError{Field: "period", Problem: "must be weekly, monthly or custom"}
	}
	if !req.Period.Start.Before(req.Period.End) {
		return &FieldError{Field: "start", Problem: "must be before end"}
	}
	if req.Period.End.Sub(req.Period.Start) > 366*24*time.Hour {
		return &FieldError{Field: "start", Problem: "a report covers at most a year"}
	}
	return nil
}

// View returns the template view of a stored report.
func ViewOf(st Stored, doc []byte) (View, error) {
	r, err := Decode(doc)
	if err != nil {
		return View{}, err
	}
	return View{R: r, ID: st.ID, SHA256: st.SHA256, AuditSeq: st.AuditSeq}, nil
}

func isUniqueViolation(err error) bool { return problem.IsUniqueViolation(err) }
