package islands

import (
	"context"
	"errors"
	"fmt"
	"github.com/chatons/archipelago/internal/database"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/problem"
)

// ErrNotFound means the object does not exist.
var ErrNotFound = problem.NotFound("object")

// Member is a member organisation of the federation.
type Member struct {
	ID           int64     `json:"id"`
	Slug         string    `json:"slug"`
	Name         string    `json:"name"`
	Website      string    `json:"website"`
	ContactEmail string    `json:"contact_email"`
	Description  string    `json:"description"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

const memberColumns = `id, slug, name, website, contact_email, description, created_at, updated_at`

func scanMember(r pgx.Row) (Member, error) {
	var m Member
	err := r.Scan(&m.ID, &m.Slug, &m.Name, &m.Website, &m.ContactEmail, &m.Description, &m.CreatedAt, &m.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Member{}, ErrNotFound
	}
	return m, err
}

// Querier is what reads need: a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// MemberGetBySlug returns a member by its slug.
func MemberGetBySlug(ctx context.Context, q Querier, slug string) (Member, error) {
	m, err := scanMember(q.QueryRow(ctx, `SELECT `+memberColumns+` FROM members WHERE slug = $1`, slug))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return m, fmt.Errorf("member %s: %w", slug, err)
	}
	return m, err
}

// MemberGetByID returns a member.
func MemberGetByID(ctx context.Context, q Querier, id int64) (Member, error) {
	m, err := scanMember(q.QueryRow(ctx, `SELECT `+memberColumns+` FROM members WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return m, fmt.Errorf("member %d: %w", id, err)
	}
	return m, err
}

var _ Querier = (*pgxpool.Pool)(nil)

// MemberFilter selects members for MemberList.
type MemberFilter struct {
	Query string // substring of slug or name, case-insensitive
	After int64  // id cursor: members with a greater id
	Limit int    // default 50, at most 500
}

// MemberList lists members by id.
func MemberList(ctx context.Context, q Querier, f MemberFilter) ([]Member, error) {
	rows, err := q.Query(ctx, `SELECT `+memberColumns+` FROM members
		WHERE id > $1 AND ($2 = '' OR slug ILIKE $3 OR name ILIKE $3)
		ORDER BY id LIMIT $4`, f.After, f.Query, database.Contains(f.Query), limit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) { return scanMember(r) })
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return out, nil
}

func limit(n int) int {
	if n <= 0 {
		return 50
	}
	return min(n, 500)
}

// MemberInput is what a federation admin sets on a member. Nil fields are left unchanged
// by MemberUpdate; MemberCreate requires Slug and Name.
type MemberInput struct {
	Slug         *string
	Name         *string
	Website      *string
	ContactEmail *string
	Description  *string
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

func (in *MemberInput) normalise(create bool) error {
	trim := func(p *string) {
		if p != nil {
			*p = strings.TrimSpace(*p)
		}
	}
	trim(in.Slug)
	trim(in.Name)
	trim(in.Website)
	trim(in.ContactEmail)
	trim(in.Description)
	if create {
		if in.Slug == nil || *in.Slug == "" {
			return &FieldError{Field: "slug", Problem: "is required"}
		}
		if in.Name == nil || *in.Name == "" {
			return &FieldError{Field: "name", Problem: "is required"}
		}
	}
	if in.Slug != nil && !slugRE.MatchString(*in.Slug) {
		return &FieldError{Field: "slug", Problem: "must be 2 to 63 lowercase letters, digits or dashes, starting with a letter or digit"}
	}
	if in.Slug != nil && strings.Trim(*in.Slug, "0123456789") == "" {
		// The API names a member by its id or its slug, all digits meaning an id.
		return &FieldError{Field: "slug", Problem: "must hold a letter or a dash (all digits would read as a member id)"}
	}
	if in.Slug != nil && *in.Slug == "federation" {
		// ?member=federation names the federation's own entries in the audit log.
		return &FieldError{Field: "slug", Problem: "is reserved: it names the federation itself"}
	}
	if in.Name != nil && (*in.Name == "" || len(*in.Name) > 200) {
		return &FieldError{Field: "name", Problem: "must be 1 to 200 characters"}
	}
	if in.Website != nil && *in.Website != "" {
		u, err := url.Parse(*in.Website)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(*in.Website) > 500 {
			return &FieldError{Field: "website", Problem: "must be an http(s) URL such as https://example.org"}
		}
	}
	if in.ContactEmail != nil && *in.ContactEmail != "" {
		a, err := mail.ParseAddress(*in.ContactEmail)
		if err != nil || a.Address != *in.ContactEmail {
			return &FieldError{Field: "contact_email", Problem: "must be an email address such as contact@example.org"}
		}
	}
	if in.Description != nil && len(*in.Description) > 2000 {
		return &FieldError{Field: "description", Problem: "must be at most 2000 characters"}
	}
	return nil
}

func (in *MemberInput) details() map[string]any {
	d := map[string]any{}
	for k, v := range map[string]*string{"slug": in.Slug, "name": in.Name, "website": in.Website,
		"contact_email": in.ContactEmail, "description": in.Description} {
		if v != nil {
			d[k] = *v
		}
	}
	return d
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// MemberCreate creates a member organisation.
func (s *Service) MemberCreate(ctx context.Context, in MemberInput) (Member, error) {
	if err := in.normalise(true); err != nil {
		return Member{}, err
	}
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO members (slug, name, website, contact_email, description)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, *in.Slug, *in.Name, deref(in.Website), deref(in.ContactEmail),
			deref(in.Description)).Scan(&id); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "member.create", TargetType: "member",
			TargetID: strconv.FormatInt(id, 10), Details: in.details()})
		return err
	})
	if err != nil {
		return Member{}, fmt.Errorf("create member: %w", err)
	}
	return MemberGetByID(ctx, s.pool, id)
}

// MemberUpdate changes the fields in is that are not nil.
func (s *Service) MemberUpdate(ctx context.Context, id int64, in MemberInput) (Member, error) {
	if err := in.normalise(false); err != nil {
		return Member{}, err
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE members SET slug = coalesce($2, slug), name = coalesce($3, name),
			website = coalesce($4, website), contact_email = coalesce($5, contact_email),
			description = coalesce($6, description), updated_at = now() WHERE id = $1`,
			id, in.Slug, in.Name, in.Website, in.ContactEmail, in.Description)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "member.update", TargetType: "member",
			TargetID: strconv.FormatInt(id, 10), Details: in.details()})
		return err
	})
	if err != nil {
		return Member{}, fmt.Errorf("update member %d: %w", id, err)
	}
	return MemberGetByID(ctx, s.pool, id)
}

// MemberDelete deletes a member that operates no island, pledged nothing and has no
// history in the audit log; otherwise ErrInUse.
func (s *Service) MemberDelete(ctx context.Context, id int64) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var slug string
		err := tx.QueryRow(ctx, `DELETE FROM members WHERE id = $1 RETURNING slug`, id).Scan(&slug)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "member.delete", TargetType: "member",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"slug": slug}})
		return err
	})
	if err != nil {
		return fmt.Errorf("delete member %d: %w", id, err)
	}
	return nil
}

// MembersByID returns the members with these ids, in one statement (unknown ids are
// absent from the map).
func MembersByID(ctx context.Context, q Querier, ids []int64) (map[int64]Member, error) {
	out := make(map[int64]Member, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT `+memberColumns+` FROM members WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) { return scanMember(r) })
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	for _, m := range ms {
		out[m.ID] = m
	}
	return out, nil
}

// MemberStat is what the Members page shows beside a member: the islands it operates (their
// names, by name) and its live pledges (their number, capacity, and those not active).
type MemberStat struct {
	Operates  []string
	Pledges   int
	Pledged   int64
	NotActive int
}

// MemberStats returns the MemberStat of each of these members (a page of them) in one
// statement: its cost follows the members asked for, not the federation.
func MemberStats(ctx context.Context, q Querier, ids []int64) (map[int64]MemberStat, error) {
	out := make(map[int64]MemberStat, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT m.id,
			coalesce((SELECT array_agg(i.name ORDER BY i.name) FROM island_operators o JOIN islands i ON i.id = o.island_id
				WHERE o.member_id = m.id), '{}'),
			coalesce(p.n, 0), coalesce(p.capacity, 0), coalesce(p.not_active, 0)
		FROM unnest($1::bigint[]) AS m(id)
		LEFT JOIN LATERAL (SELECT count(*) n, sum(capacity_bytes)::bigint capacity,
				count(*) FILTER (WHERE status <> $2) not_active
			FROM pledges WHERE member_id = m.id AND withdrawn_at IS NULL) p ON true`, ids, string(PledgeActive))
	if err != nil {
		return nil, fmt.Errorf("read member statistics: %w", err)
	}
	var (
		id    int64
		st    MemberStat
		n     int64
		na    int64
		bytes int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &st.Operates, &n, &bytes, &na}, func() error {
		out[id] = MemberStat{Operates: st.Operates, Pledges: int(n), Pledged: bytes, NotActive: int(na)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read member statistics: %w", err)
	}
	return out, nil
}
