package islands

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/seal"
)

// Island statuses (islands.status).
const (
	StatusUnknown     = "unknown"     // never polled
	StatusHealthy     = "healthy"     // Garage: all partitions fully replicated
	StatusDegraded    = "degraded"    // Garage: quorum everywhere, some copies missing
	StatusUnavailable = "unavailable" // Garage: some partitions without quorum
	StatusUnreachable = "unreachable" // the admin API failed (StatusError says how)
)

// Island is a Garage cluster of the federation. Its admin token is never part of it.
type Island struct {
	ID                  int64      `json:"id"`
	Name                string     `json:"name"`
	AdminEndpoint       string     `json:"admin_endpoint"`
	S3Endpoint          string     `json:"s3_endpoint"`
	S3Region            string     `json:"s3_region"`
	ReplicationFactor   int        `json:"replication_factor"`
	Status              string     `json:"status"`
	StatusError         string     `json:"status_error"`
	LastPolledAt        *time.Time `json:"last_polled_at"`
	LastOKAt            *time.Time `json:"last_ok_at"`
	LayoutVersion       *int64     `json:"layout_version"`
	LayoutCapacityBytes *int64     `json:"layout_capacity_bytes"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

const islandColumns = `i.id, i.name, i.admin_endpoint, i.s3_endpoint, i.s3_region, i.replication_factor, i.status,
	i.status_error, i.last_polled_at, i.last_ok_at, i.layout_version, i.layout_capacity_bytes, i.created_at, i.updated_at`

func scanIsland(r pgx.Row) (Island, error) {
	var i Island
	err := r.Scan(&i.ID, &i.Name, &i.AdminEndpoint, &i.S3Endpoint, &i.S3Region, &i.ReplicationFactor, &i.Status,
		&i.StatusError, &i.LastPolledAt, &i.LastOKAt, &i.LayoutVersion, &i.LayoutCapacityBytes, &i.CreatedAt, &i.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Island{}, ErrNotFound
	}
	return i, err
}

// IslandGetByID returns an island.
func IslandGetByID(ctx context.Context, q Querier, id int64) (Island, error) {
	i, err := scanIsland(q.QueryRow(ctx, `SELECT `+islandColumns+` FROM islands i WHERE i.id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return i, fmt.Errorf("island %d: %w", id, err)
	}
	return i, err
}

// IslandGetByName returns the island of this name (names are unique regardless of case).
func IslandGetByName(ctx context.Context, q Querier, name string) (Island, error) {
	i, err := scanIsland(q.QueryRow(ctx, `SELECT `+islandColumns+` FROM islands i WHERE lower(i.name) = lower($1)`, name))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return i, fmt.Errorf("island %s: %w", name, err)
	}
	return i, err
}

// IslandFilter selects islands for IslandList.
type IslandFilter struct {
	Status   string // one of the Status* values
	Operator int64  // islands this member operates
	After    int64  // id cursor
	Limit    int    // default 50, at most 500
}

// IslandList lists islands by id.
func IslandList(ctx context.Context, q Querier, f IslandFilter) ([]Island, error) {
	rows, err := q.Query(ctx, `SELECT `+islandColumns+` FROM islands i
		WHERE i.id > $1 AND ($2 = '' OR i.status = $2)
		  AND ($3 = 0 OR EXISTS (SELECT 1 FROM island_operators o WHERE o.island_id = i.id AND o.member_id = $3))
		ORDER BY i.id LIMIT $4`, f.After, f.Status, f.Operator, limit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("list islands: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Island, error) { return scanIsland(r) })
	if err != nil {
		return nil, fmt.Errorf("list islands: %w", err)
	}
	return out, nil
}

// IslandInput is what a federation admin sets on an island. Nil fields are left unchanged
// by IslandUpdate; IslandCreate requires all but S3Region (default "garage") and
// ReplicationFactor (default 3).
type IslandInput struct {
	Name              *string
	AdminEndpoint     *string
	AdminToken        *string // write-only; sealed at rest
	S3Endpoint        *string
	S3Region          *string
	ReplicationFactor *int
}

func (in *IslandInput) normalise(create bool) error {
	for _, p := range []*string{in.Name, in.AdminEndpoint, in.S3Endpoint, in.S3Region, in.AdminToken} {
		if p != nil {
			*p = strings.TrimSpace(*p)
		}
	}
	if create {
		for _, f := range []struct {
			name string
			v    *string
		}{{"name", in.Name}, {"admin_endpoint", in.AdminEndpoint}, {"admin_token", in.AdminToken}, {"s3_endpoint", in.S3Endpoint}} {
			if f.v == nil || *f.v == "" {
				return &FieldError{Field: f.name, Problem: "is required"}
			}
		}
		if in.S3Region == nil {
			r := "garage"
			in.S3Region = &r
		}
		if in.ReplicationFactor == nil {
			rf := 3
			in.ReplicationFactor = &rf
		}
	}
	if in.Name != nil && (*in.Name == "" || len(*in.Name) > 100) {
		return &FieldError{Field: "name", Problem: "must be 1 to 100 characters"}
	}
	if in.AdminEndpoint != nil {
		if err := checkURL(*in.AdminEndpoint); err != "" {
			return &FieldError{Field: "admin_endpoint", Problem: err}
		}
	}
	if in.S3Endpoint != nil {
		if err := checkURL(*in.S3Endpoint); err != "" {
			return &FieldError{Field: "s3_endpoint", Problem: err}
		}
	}
	if in.AdminToken != nil && (*in.AdminToken == "" || len(*in.AdminToken) > 1000 || strings.ContainsAny(*in.AdminToken, " \t\r\n")) {
		return &FieldError{Field: "admin_token", Problem: "must be a Garage admin token (no spaces, at most 1000 characters)"}
	}
	if in.S3Region != nil && (*in.S3Region == "" || len(*in.S3Region) > 100) {
		return &FieldError{Field: "s3_region", Problem: "must be 1 to 100 characters (Garage's s3_region)"}
	}
	if in.ReplicationFactor != nil && (*in.ReplicationFactor < 1 || *in.ReplicationFactor > 7) {
		return &FieldError{Field: "replication_factor", Problem: "must be from 1 to 7 (Garage's replication_factor)"}
	}
	return nil
}

// checkURL returns a problem with an http(s) endpoint URL, or "".
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "is required"
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "must be an http(s) URL with a host, such as https://garage.example.org:3903"
	case u.User != nil:
		return "must not carry credentials"
	case u.RawQuery != "" || u.Fragment != "":
		return "must not have a query or fragment"
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "has an invalid port"
		}
	}
	if host := u.Hostname(); net.ParseIP(host) == nil && strings.ContainsAny(host, " _") {
		return "has an invalid host name"
	}
	return ""
}

// details is the audit detail of a change: never the token, only whether it changed.
func (in *IslandInput) details() map[string]any {
	d := map[string]any{}
	for k, v := range map[string]*string{"name": in.Name, "admin_endpoint": in.AdminEndpoint,
		"s3_endpoint": in.S3Endpoint, "s3_region": in.S3Region} {
		if v != nil {
			d[k] = *v
		}
	}
	if in.ReplicationFactor != nil {
		d["replication_factor"] = *in.ReplicationFactor
	}
	if in.AdminToken != nil {
		d["admin_token_changed"] = true
	}
	return d
}

func tokenPurpose(id int64) string { return fmt.Sprintf("island/%d/admin_token", id) }

func pendingTokenPurpose(id int64) string { return fmt.Sprintf("island/%d/pending_admin_token", id) }

// SealPendingToken seals a new admin token for island id that waits for approval (held in
// an approval request's parameters, never in clear); OpenPendingToken opens it.
func (s *Service) SealPendingToken(id int64, token string) string {
	return s.keys.SealString(pendingTokenPurpose(id), strings.TrimSpace(token))
}

// OpenPendingToken opens a token sealed by SealPendingToken for island id.
func (s *Service) OpenPendingToken(id int64, sealed string) (string, error) {
	tok, err := s.keys.OpenString(pendingTokenPurpose(id), sealed)
	if err != nil {
		return "", fmt.Errorf("island %d: open the pending admin token: %w", id, err)
	}
	return tok, nil
}

// SealedColumns are the sealed values this package keeps (for re-sealing).
func SealedColumns() []seal.Column {
	return []seal.Column{{Table: "islands", IDColumn: "id", Column: "admin_token_sealed", Purpose: tokenPurpose}}
}

// client builds a Garage client with request-sized timeouts.
func (s *Service) client(endpoint, token string, timeout time.Duration) *garage.Client {
	return garage.New(garage.Config{Endpoint: endpoint, Token: token, Timeout: timeout, MaxAttempts: 2,
		RetryBaseDelay: 100 * time.Millisecond, RetryMaxDelay: 500 * time.Millisecond, Logger: s.log})
}

// probe checks that an island's admin API answers with this token, within CallTimeout.
func (s *Service) probe(ctx context.Context, name, endpoint, token string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	if _, err := s.client(endpoint, token, s.cfg.CallTimeout).GetClusterStatus(ctx); err != nil {
		if errors.Is(err, garage.ErrAccessDenied) {
			return problem.Invalid("admin_token", "island %q refused the admin token (GetClusterStatus: 403)", name)
		}
		return &UnreachableError{Island: name, Operation: "GetClusterStatus", Err: err}
	}
	return nil
}

// IslandCreate registers an island after checking that its admin API answers with the
// token; the token is sealed before it is stored.
func (s *Service) IslandCreate(ctx context.Context, in IslandInput) (Island, error) {
	if err := in.normalise(true); err != nil {
		return Island{}, err
	}
	if err := s.probe(ctx, *in.Name, *in.AdminEndpoint, *in.AdminToken); err != nil {
		return Island{}, err
	}
	var id int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// The seal purpose names the id, so insert first with a placeholder.
		if err := tx.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
			replication_factor) VALUES ($1, $2, '', $3, $4, $5) RETURNING id`, *in.Name, *in.AdminEndpoint, *in.S3Endpoint,
			*in.S3Region, *in.ReplicationFactor).Scan(&id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE islands SET admin_token_sealed = $2 WHERE id = $1`, id,
			s.keys.SealString(tokenPurpose(id), *in.AdminToken)); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, audit.Entry{Action: "island.create", TargetType: "island",
			TargetID: strconv.FormatInt(id, 10), Details: in.details()})
		return err
	})
	if err != nil {
		return Island{}, fmt.Errorf("create island %q: %w", *in.Name, err)
	}
	return IslandGetByID(ctx, s.pool, id)
}

// IslandUpdate changes the fields in is that are not nil. A new endpoint or token is
// checked against the island's admin API first.
func (s *Service) IslandUpdate(ctx context.Context, id int64, in IslandInput) (Island, error) {
	if err := in.normalise(false); err != nil {
		return Island{}, err
	}
	cur, err := IslandGetByID(ctx, s.pool, id)
	if err != nil {
		return Island{}, err
	}
	if in.AdminEndpoint != nil || in.AdminToken != nil {
		endpoint, token := cur.AdminEndpoint, ""
		if in.AdminEndpoint != nil {
			endpoint = *in.AdminEndpoint
		}
		if in.AdminToken != nil {
			token = *in.AdminToken
		} else if token, err = s.adminToken(ctx, id); err != nil {
			return Island{}, err
		}
		name := cur.Name
		if in.Name != nil {
			name = *in.Name
		}
		if err := s.probe(ctx, name, endpoint, token); err != nil {
			return Island{}, err
		}
	}
	var sealed *string
	if in.AdminToken != nil {
		v := s.keys.SealString(tokenPurpose(id), *in.AdminToken)
		sealed = &v
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE islands SET name = coalesce($2, name), admin_endpoint = coalesce($3, admin_endpoint),
			admin_token_sealed = coalesce($4, admin_token_sealed), s3_endpoint = coalesce($5, s3_endpoint),
			s3_region = coalesce($6, s3_region), replication_factor = coalesce($7, replication_factor), updated_at = now()
			WHERE id = $1`, id, in.Name, in.AdminEndpoint, sealed, in.S3Endpoint, in.S3Region, in.ReplicationFactor)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "island.update", TargetType: "island",
			TargetID: strconv.FormatInt(id, 10), Details: in.details()})
		return err
	})
	if err != nil {
		return Island{}, fmt.Errorf("update island %d: %w", id, err)
	}
	return IslandGetByID(ctx, s.pool, id)
}

// IslandDelete removes an island with no live pledge (withdrawn pledges, operators and
// observations go with it); otherwise ErrInUse. Objects of other packages that still
// reference it (vaults) make it ErrInUse too.
func (s *Service) IslandDelete(ctx context.Context, id int64) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var name string
		var live int
		err := tx.QueryRow(ctx, `SELECT i.name, (SELECT count(*) FROM pledges p WHERE p.island_id = i.id AND p.withdrawn_at IS NULL)
			FROM islands i WHERE i.id = $1 FOR UPDATE`, id).Scan(&name, &live)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if live > 0 {
			return fmt.Errorf("%w: island %q has %d live pledges; withdraw them first", ErrInUse, name, live)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pledges WHERE island_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM islands WHERE id = $1`, id); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "island.delete", TargetType: "island",
			TargetID: strconv.FormatInt(id, 10), Details: map[string]any{"name": name}})
		return err
	})
	if err != nil {
		return fmt.Errorf("delete island %d: %w", id, err)
	}
	return nil
}

// adminToken opens an island's sealed admin token. It stays inside this package.
func (s *Service) adminToken(ctx context.Context, id int64) (string, error) {
	var sealed string
	err := s.pool.QueryRow(ctx, `SELECT admin_token_sealed FROM islands WHERE id = $1`, id).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("island %d: %w", id, err)
	}
	tok, err := s.keys.OpenString(tokenPurpose(id), sealed)
	if err != nil {
		return "", fmt.Errorf("island %d: open admin token: %w", id, err)
	}
	return tok, nil
}

// GarageClient returns a client for an island's admin API (ErrNotFound if there is no such
// island). Its calls time out after CallTimeout each and are retried once.
func (s *Service) GarageClient(ctx context.Context, islandID int64) (*garage.Client, error) {
	isl, err := IslandGetByID(ctx, s.pool, islandID)
	if err != nil {
		return nil, err
	}
	tok, err := s.adminToken(ctx, islandID)
	if err != nil {
		return nil, err
	}
	return s.client(isl.AdminEndpoint, tok, s.cfg.CallTimeout), nil
}

// Operator is a member running an island.
type Operator struct {
	IslandID   int64     `json:"island_id"`
	MemberID   int64     `json:"member_id"`
	MemberSlug string    `json:"member_slug"`
	MemberName string    `json:"member_name"`
	Since      time.Time `json:"since"`
}

// OperatorList lists the operators of an island (ErrNotFound if there is no such island).
func OperatorList(ctx context.Context, q Querier, islandID int64) ([]Operator, error) {
	if _, err := IslandGetByID(ctx, q, islandID); err != nil {
		return nil, err
	}
	return operatorQuery(ctx, q, `o.island_id = $1`, islandID)
}

// OperatorsByIsland returns the operators of these islands (one statement: a page of
// islands reads its own operators, not every island's).
func OperatorsByIsland(ctx context.Context, q Querier, ids []int64) (map[int64][]Operator, error) {
	ops, err := operatorQuery(ctx, q, `o.island_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	out := map[int64][]Operator{}
	for _, o := range ops {
		out[o.IslandID] = append(out[o.IslandID], o)
	}
	return out, nil
}

func operatorQuery(ctx context.Context, q Querier, where string, args ...any) ([]Operator, error) {
	rows, err := q.Query(ctx, `SELECT o.island_id, o.member_id, m.slug, m.name, o.created_at
		FROM island_operators o JOIN members m ON m.id = o.member_id WHERE `+where+` ORDER BY o.island_id, m.slug`, args...)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Operator, error) {
		var o Operator
		err := r.Scan(&o.IslandID, &o.MemberID, &o.MemberSlug, &o.MemberName, &o.Since)
		return o, err
	})
}

// IsOperator reports whether a member operates an island.
func IsOperator(ctx context.Context, q Querier, islandID, memberID int64) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM island_operators WHERE island_id = $1 AND member_id = $2)`,
		islandID, memberID).Scan(&ok)
	return ok, err
}

// OperatorAdd makes a member an operator of an island (idempotent).
func (s *Service) OperatorAdd(ctx context.Context, islandID, memberID int64) (Operator, error) {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := IslandGetByID(ctx, tx, islandID); err != nil {
			return err
		}
		if _, err := MemberGetByID(ctx, tx, memberID); errors.Is(err, ErrNotFound) {
			return &FieldError{Field: "member_id", Problem: "no such member"}
		} else if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO island_operators (island_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			islandID, memberID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "island.operator_add", TargetType: "island",
			TargetID: strconv.FormatInt(islandID, 10), Details: map[string]any{"member_id": memberID}})
		return err
	})
	if err != nil {
		return Operator{}, fmt.Errorf("add operator to island %d: %w", islandID, err)
	}
	ops, err := operatorQuery(ctx, s.pool, `o.island_id = $1 AND o.member_id = $2`, islandID, memberID)
	if err != nil || len(ops) == 0 {
		return Operator{}, cmpErr(err, ErrNotFound)
	}
	return ops[0], nil
}

// OperatorRemove stops a member operating an island. A member with live pledges on the
// island must withdraw them first (ErrInUse).
func (s *Service) OperatorRemove(ctx context.Context, islandID, memberID int64) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var live int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pledges WHERE island_id = $1 AND member_id = $2 AND withdrawn_at IS NULL`,
			islandID, memberID).Scan(&live); err != nil {
			return err
		}
		if live > 0 {
			return fmt.Errorf("%w: the member has %d live pledges on this island; withdraw them first", ErrInUse, live)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM island_operators WHERE island_id = $1 AND member_id = $2`, islandID, memberID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "island.operator_remove", TargetType: "island",
			TargetID: strconv.FormatInt(islandID, 10), Details: map[string]any{"member_id": memberID}})
		return err
	})
	if err != nil {
		return fmt.Errorf("remove operator from island %d: %w", islandID, err)
	}
	return nil
}

func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}
