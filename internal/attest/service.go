package attest

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/internal/problem"
	"github.com/chatons/archipelago/internal/verify"
)

// Errors of the domain.
var (
	// ErrNotFound: no such key or attestation in this repository.
	ErrNotFound = problem.NotFound("object")
)

// Defaults of Config.
const (
	// DefaultMaxAge: a statement that finished longer ago than this is stale.
	DefaultMaxAge = 6 * time.Hour
	// DefaultClockSkew: a statement finished further in the future than this is refused.
	DefaultClockSkew = 5 * time.Minute
	// StaleEvery is how often CheckStale runs.
	StaleEvery = time.Minute
)

// Config configures the service.
type Config struct {
	MaxAge    time.Duration    // default DefaultMaxAge
	ClockSkew time.Duration    // default DefaultClockSkew
	Now       func() time.Time // default time.Now (tests fix it)
}

// Service accepts attestations and manages agent keys and schedules.
type Service struct {
	pool *pgxpool.Pool
	log  *slog.Logger
	cfg  Config
}

// New returns the service.
func New(pool *pgxpool.Pool, log *slog.Logger, cfg Config) *Service {
	cfg.MaxAge = cmp.Or(cfg.MaxAge, DefaultMaxAge)
	cfg.ClockSkew = cmp.Or(cfg.ClockSkew, DefaultClockSkew)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, log: log, cfg: cfg}
}

func actorName(ctx context.Context) string {
	if a, ok := audit.ActorFrom(ctx); ok {
		return cmp.Or(a.Name, a.ID)
	}
	return ""
}

// Key is a registered agent public key (never a private key).
type Key struct {
	ID           int64      `json:"id"`
	RepositoryID int64      `json:"repository_id"`
	Name         string     `json:"name"`
	PublicKey    string     `json:"public_key"` // PEM
	KeyID        string     `json:"keyid"`      // the DSSE keyid
	CreatedBy    string     `json:"created_by"`
	CreatedAt    time.Time  `json:"created_at"`
	RevokedAt    *time.Time `json:"revoked_at"`
}

const keyColumns = `id, repository_id, name, public_key, key_id, created_by, created_at, revoked_at`

func scanKey(r pgx.CollectableRow) (Key, error) {
	var k Key
	var raw []byte
	err := r.Scan(&k.ID, &k.RepositoryID, &k.Name, &raw, &k.KeyID, &k.CreatedBy, &k.CreatedAt, &k.RevokedAt)
	if err == nil {
		k.PublicKey = PublicPEM(ed25519.PublicKey(raw))
	}
	return k, err
}

// KeyList lists a repository's agent keys, revoked ones included, newest first.
func (s *Service) KeyList(ctx context.Context, repoID int64) ([]Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM agent_keys WHERE repository_id = $1 ORDER BY id DESC`, repoID)
	if err != nil {
		return nil, fmt.Errorf("list agent keys of repository %d: %w", repoID, err)
	}
	return pgx.CollectRows(rows, scanKey)
}

// KeyPage lists one page of a repository's agent keys, newest first, paged in SQL (the cursor
// is the last key's id).
func (s *Service) KeyPage(ctx context.Context, repoID int64, r paging.Request) (paging.Page[Key], error) {
	size, err := r.Size()
	if err != nil {
		return paging.Page[Key]{}, err
	}
	var before int64
	if _, err := r.Keys(&before); err != nil {
		return paging.Page[Key]{}, err
	}
	cond := `repository_id = $1`
	args := []any{repoID}
	if before != 0 {
		cond, args = cond+` AND id < $2`, append(args, before)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM agent_keys WHERE `+cond+` ORDER BY id DESC LIMIT `+
		strconv.Itoa(size+1), args...)
	if err != nil {
		return paging.Page[Key]{}, fmt.Errorf("list agent keys of repository %d: %w", repoID, err)
	}
	out, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return paging.Page[Key]{}, fmt.Errorf("list agent keys of repository %d: %w", repoID, err)
	}
	return paging.Cut(out, size, func(k Key) []any { return []any{k.ID} }), nil
}

// KeyAdd registers an agent's public key on a repository of memberID. Audited.
func (s *Service) KeyAdd(ctx context.Context, repoID, memberID int64, name, publicKey string) (Key, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return Key{}, problem.Invalid("name", "is required, at most 100 characters (e.g. the machine the agent runs on)")
	}
	if len(publicKey) > 4000 {
		return Key{}, problem.Invalid("public_key", "is too long for an Ed25519 public key")
	}
	pub, err := ParsePublicKey(publicKey)
	if err != nil {
		return Key{}, problem.Invalid("public_key", "%s", err.Error())
	}
	kid := KeyID(pub)
	var k Key
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO agent_keys (repository_id, name, public_key, key_id, created_by)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repository_id, key_id) DO NOTHING RETURNING `+keyColumns,
			repoID, name, []byte(pub), kid, actorName(ctx))
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, scanKey)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return problem.Conflict("public_key", "this key (keyid %s) is already registered on this repository; revoked keys cannot come back: generate a new one", kid[:16])
		}
		k = keys[0]
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "agent_key.add", MemberID: &memberID, TargetType: "repository",
			TargetID: strconv.FormatInt(repoID, 10), Details: map[string]any{"key_id": k.ID, "keyid": kid, "name": name}})
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("register agent key on repository %d: %w", repoID, err)
	}
	return k, nil
}

// KeyRevoke revokes an agent key: statements it signs are refused from now on (those
// accepted before stay). Audited; revoking a revoked key is a no-op.
func (s *Service) KeyRevoke(ctx context.Context, repoID, memberID, keyID int64) (Key, error) {
	var k Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE agent_keys SET revoked_at = coalesce(revoked_at, $3) WHERE repository_id = $1 AND id = $2
			RETURNING `+keyColumns, repoID, keyID, s.cfg.Now())
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, scanKey)
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			return problem.NotFound("agent key")
		}
		k = keys[0]
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "agent_key.revoke", MemberID: &memberID, TargetType: "repository",
			TargetID: strconv.FormatInt(repoID, 10), Details: map[string]any{"key_id": k.ID, "keyid": k.KeyID, "name": k.Name}})
		return err
	})
	if err != nil {
		return Key{}, fmt.Errorf("revoke agent key %d: %w", keyID, err)
	}
	return k, nil
}

// Schedule is when a repository's agent is expected to report.
type Schedule struct {
	IntervalSeconds int64      `json:"interval_seconds"`
	GraceSeconds    int64      `json:"grace_seconds"`
	Since           time.Time  `json:"since"`
	AlertedAt       *time.Time `json:"alerted_at"` // set while the stale alert is raised
}

// ScheduleSet sets (or, with interval 0, removes) the expected agent schedule. Audited.
func (s *Service) ScheduleSet(ctx context.Context, repoID, memberID, interval, grace int64) error {
	if interval != 0 && (interval < 60 || interval > 31622400) {
		return problem.Invalid("interval_seconds", "must be between 60 and 31622400 (or 0: no schedule)")
	}
	if grace < 0 || grace > 31622400 {
		return problem.Invalid("grace_seconds", "must be between 0 and 31622400")
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if interval == 0 {
			_, err = tx.Exec(ctx, `DELETE FROM agent_schedules WHERE repository_id = $1`, repoID)
			if err == nil {
				err = notify.Resolve(ctx, tx, staleSubject(repoID))
			}
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO agent_schedules (repository_id, interval_seconds, grace_seconds, since)
				VALUES ($1, $2, $3, $4) ON CONFLICT (repository_id) DO UPDATE
				SET interval_seconds = EXCLUDED.interval_seconds, grace_seconds = EXCLUDED.grace_seconds, updated_at = now()`,
				repoID, interval, grace, s.cfg.Now())
		}
		if err != nil {
			return fmt.Errorf("set agent schedule of repository %d: %w", repoID, err)
		}
		_, err = audit.Record(ctx, tx, audit.Entry{Action: "agent_schedule.set", MemberID: &memberID, TargetType: "repository",
			TargetID: strconv.FormatInt(repoID, 10), Details: map[string]any{"interval_seconds": interval, "grace_seconds": grace}})
		return err
	})
}

// Attestation is an accepted statement, as the API and the portal show it.
type Attestation struct {
	ID              int64           `json:"id"`
	RepositoryID    int64           `json:"repository_id"`
	KeyID           string          `json:"keyid"`
	KeyName         string          `json:"key_name"`
	StatementSHA256 string          `json:"statement_sha256"`
	SnapshotID      *string         `json:"snapshot_id"`
	SnapshotSeen    bool            `json:"snapshot_seen_by_federation"`
	Status          string          `json:"status"`
	Reason          string          `json:"reason"`
	Levels          []Level         `json:"levels"`
	CheckSubset     string          `json:"check_subset"`
	AgentVersion    string          `json:"agent_version"`
	StartedAt       time.Time       `json:"started_at"`
	FinishedAt      time.Time       `json:"finished_at"`
	ReceivedAt      time.Time       `json:"received_at"`
	AuditSeq        int64           `json:"audit_seq"`
	Envelope        json.RawMessage `json:"envelope,omitempty"` // only when asked for one attestation
}

const attColumns = `a.id, a.repository_id, k.key_id, k.name, a.statement_sha256, a.snapshot_id, a.snapshot_seen, a.status,
	a.reason, a.levels, a.check_subset, a.agent_version, a.started_at, a.finished_at, a.received_at, a.audit_seq`

func scanAtt(r pgx.CollectableRow) (Attestation, error) {
	var a Attestation
	err := r.Scan(&a.ID, &a.RepositoryID, &a.KeyID, &a.KeyName, &a.StatementSHA256, &a.SnapshotID, &a.SnapshotSeen, &a.Status,
		&a.Reason, &a.Levels, &a.CheckSubset, &a.AgentVersion, &a.StartedAt, &a.FinishedAt, &a.ReceivedAt, &a.AuditSeq)
	a.StartedAt, a.FinishedAt, a.ReceivedAt = a.StartedAt.UTC(), a.FinishedAt.UTC(), a.ReceivedAt.UTC()
	return a, err
}

// AttestationList lists a repository's attestations, newest first (at most limit, ≤ 200).
func (s *Service) AttestationList(ctx context.Context, repoID int64, limit int) ([]Attestation, error) {
	limit = min(max(limit, 1), 200)
	rows, err := s.pool.Query(ctx, `SELECT `+attColumns+` FROM agent_attestations a JOIN agent_keys k ON k.id = a.agent_key_id
		WHERE a.repository_id = $1 ORDER BY a.finished_at DESC, a.id DESC LIMIT $2`, repoID, limit)
	if err != nil {
		return nil, fmt.Errorf("list attestations of repository %d: %w", repoID, err)
	}
	return pgx.CollectRows(rows, scanAtt)
}

// AttestationGet returns one attestation with its envelope, as received.
func (s *Service) AttestationGet(ctx context.Context, repoID, id int64) (Attestation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+attColumns+`, a.envelope FROM agent_attestations a JOIN agent_keys k ON k.id = a.agent_key_id
		WHERE a.repository_id = $1 AND a.id = $2`, repoID, id)
	if err != nil {
		return Attestation{}, fmt.Errorf("read attestation %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attestation, error) {
		var a Attestation
		err := r.Scan(&a.ID, &a.RepositoryID, &a.KeyID, &a.KeyName, &a.StatementSHA256, &a.SnapshotID, &a.SnapshotSeen, &a.Status,
			&a.Reason, &a.Levels, &a.CheckSubset, &a.AgentVersion, &a.StartedAt, &a.FinishedAt, &a.ReceivedAt, &a.AuditSeq, &a.Envelope)
		a.StartedAt, a.FinishedAt, a.ReceivedAt = a.StartedAt.UTC(), a.FinishedAt.UTC(), a.ReceivedAt.UTC()
		return a, err
	})
	if err != nil {
		return Attestation{}, fmt.Errorf("read attestation %d: %w", id, err)
	}
	if len(out) == 0 {
		return Attestation{}, problem.NotFound("attestation")
	}
	return out[0], nil
}

// Summary is what is shown beside the federation's own results: "attested by the member".
type Summary struct {
	// State: none (no agent key registered), never (keys, but no attestation yet),
	// current, or stale (the schedule plus its grace has passed without a report).
	State      string       `json:"state"`
	ActiveKeys int          `json:"active_keys"`
	Schedule   *Schedule    `json:"schedule"`
	Latest     *Attestation `json:"latest"`
}

// SummaryGet returns a repository's attestation summary.
func (s *Service) SummaryGet(ctx context.Context, repoID int64) (Summary, error) {
	var sum Summary
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM agent_keys WHERE repository_id = $1 AND revoked_at IS NULL`, repoID).Scan(&sum.ActiveKeys); err != nil {
		return sum, fmt.Errorf("count agent keys of repository %d: %w", repoID, err)
	}
	var sc Schedule
	err := s.pool.QueryRow(ctx, `SELECT interval_seconds, grace_seconds, since, alerted_at FROM agent_schedules WHERE repository_id = $1`, repoID).
		Scan(&sc.IntervalSeconds, &sc.GraceSeconds, &sc.Since, &sc.AlertedAt)
	switch {
	case err == nil:
		sum.Schedule = &sc
	case !errors.Is(err, pgx.ErrNoRows):
		return sum, fmt.Errorf("read agent schedule of repository %d: %w", repoID, err)
	}
	latest, err := s.AttestationList(ctx, repoID, 1)
	if err != nil {
		return sum, err
	}
	if len(latest) > 0 {
		sum.Latest = &latest[0]
	}
	switch {
	case sum.Schedule != nil && sum.Schedule.AlertedAt != nil:
		sum.State = "stale"
	case sum.Latest != nil:
		sum.State = "current"
	case sum.ActiveKeys > 0:
		sum.State = "never"
	default:
		sum.State = "none"
	}
	return sum, nil
}

// ForSnapshot returns the newest attestation of the repository about snapshotID, or nil.
func (s *Service) ForSnapshot(ctx context.Context, repoID int64, snapshotID string) (*Attestation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+attColumns+` FROM agent_attestations a JOIN agent_keys k ON k.id = a.agent_key_id
		WHERE a.repository_id = $1 AND a.snapshot_id = $2 ORDER BY a.finished_at DESC, a.id DESC LIMIT 1`, repoID, snapshotID)
	if err != nil {
		return nil, fmt.Errorf("attestation of snapshot %s: %w", snapshotID, err)
	}
	out, err := pgx.CollectRows(rows, scanAtt)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return &out[0], nil
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// refused is a well-formed statement the federation will not accept (422), naming why.
func refused(code, field, format string, args ...any) error {
	return &problem.RefusedError{Code: code, Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Accept checks a DSSE envelope pushed for repository repoID of
// memberID and stores it: the signature must verify against one of the repository's
// non-revoked agent keys; the statement must be an in-toto Statement v1 of our predicate
// type naming this repository, finished within the clock skew of now and not longer ago
// than MaxAge, not older than the newest accepted one, never seen before, and about a
// snapshot the federation has not seen in another repository or seen deleted. Its hash
// is appended to the audit log in the same transaction; a raised stale alert is cleared.
func (s *Service) Accept(ctx context.Context, repoID, memberID int64, env Envelope) (Attestation, error) {
	if env.PayloadType != PayloadType {
		return Attestation{}, problem.Invalid("payloadType", "must be %s", PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil || len(payload) == 0 {
		return Attestation{}, problem.Invalid("payload", "must be the standard base64 of the statement")
	}
	if len(env.Signatures) == 0 || len(env.Signatures) > 8 {
		return Attestation{}, problem.Invalid("signatures", "must hold 1 to 8 signatures")
	}
	keys, err := s.KeyList(ctx, repoID)
	if err != nil {
		return Attestation{}, err
	}
	signer, err := verifySignatures(env, payload, keys)
	if err != nil {
		return Attestation{}, err
	}
	st, err := parseStatement(payload)
	if err != nil {
		return Attestation{}, err
	}
	p := st.Predicate
	if p.RepositoryID != repoID {
		return Attestation{}, refused("wrong_repository", "predicate.repository_id",
			"the statement is about repository %d, not repository %d (the path of the request)", p.RepositoryID, repoID)
	}
	name := SubjectPrefix + strconv.FormatInt(repoID, 10)
	if st.Subject[0].Name != name {
		return Attestation{}, refused("wrong_repository", "subject[0].name", "the subject must be named %s", name)
	}
	if p.SnapshotID != "" && st.Subject[0].Digest["sha256"] != p.SnapshotID {
		return Attestation{}, refused("wrong_snapshot", "subject[0].digest.sha256", "the subject's digest must be the snapshot id of the predicate")
	}
	now := s.cfg.Now()
	switch {
	case p.FinishedAt.After(now.Add(s.cfg.ClockSkew)):
		return Attestation{}, refused("future", "predicate.finished_at",
			"the statement finished at %s, in the future (now %s): set the agent machine's clock right (NTP)",
			p.FinishedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case p.FinishedAt.Before(now.Add(-s.cfg.MaxAge)):
		return Attestation{}, refused("stale", "predicate.finished_at",
			"the statement finished at %s, more than %s ago: stale statements are refused; run the agent again",
			p.FinishedAt.UTC().Format(time.RFC3339), s.cfg.MaxAge)
	}
	sum := sha256.Sum256(payload)
	digest := hex.EncodeToString(sum[:])
	raw, err := json.Marshal(env)
	if err != nil {
		return Attestation{}, fmt.Errorf("encode envelope: %w", err)
	}
	var id int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// One acceptance at a time per repository: the replay checks below see every
		// earlier acceptance.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(1635018094, $1::int)`, int32(repoID)); err != nil {
			return err
		}
		var prevID int64
		err := tx.QueryRow(ctx, `SELECT id FROM agent_attestations WHERE statement_sha256 = $1`, digest).Scan(&prevID)
		if err == nil {
			return problem.Conflict("payload", "replay: this statement was already accepted (attestation %d)", prevID)
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var newest *time.Time
		if err := tx.QueryRow(ctx, `SELECT max(finished_at) FROM agent_attestations WHERE repository_id = $1`, repoID).Scan(&newest); err != nil {
			return err
		}
		if newest != nil && !p.FinishedAt.After(*newest) {
			return problem.Conflict("predicate.finished_at", "replay: an attestation that finished at %s was already accepted; this statement is not newer",
				newest.UTC().Format(time.RFC3339))
		}
		seen := false
		if p.SnapshotID != "" {
			var elsewhere, gone bool
			if err := tx.QueryRow(ctx, `SELECT coalesce(bool_or(repository_id <> $1), false), coalesce(bool_or(repository_id = $1 AND gone_at IS NOT NULL), false),
					coalesce(bool_or(repository_id = $1), false)
				FROM restore_test_snapshots WHERE snapshot_id = $2`, repoID, p.SnapshotID).Scan(&elsewhere, &gone, &seen); err != nil {
				return err
			}
			switch {
			case gone:
				return refused("snapshot_gone", "predicate.snapshot_id", "the federation saw snapshot %s deleted from this repository", p.SnapshotID[:8])
			case elsewhere && !seen:
				return refused("wrong_snapshot", "predicate.snapshot_id", "snapshot %s belongs to another repository as the federation has seen it", p.SnapshotID[:8])
			}
		}
		seq, err := audit.Record(ctx, tx, audit.Entry{Action: "attestation.accept", MemberID: &memberID, TargetType: "repository",
			TargetID: strconv.FormatInt(repoID, 10), Details: map[string]any{"statement_sha256": digest, "keyid": signer.KeyID,
				"key_name": signer.Name, "snapshot_id": p.SnapshotID, "status": p.Status, "finished_at": p.FinishedAt.UTC()}})
		if err != nil {
			return err
		}
		levels, err := json.Marshal(p.Levels)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO agent_attestations (repository_id, agent_key_id, statement_sha256, envelope, snapshot_id,
				snapshot_seen, status, reason, levels, check_subset, agent_version, started_at, finished_at, received_at, audit_seq)
			VALUES ($1, $2, $3, $4, nullif($5, ''), $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id`,
			repoID, signer.ID, digest, raw, p.SnapshotID, seen, p.Status, problem.Truncate(p.Reason, 4000), levels,
			problem.Truncate(p.CheckSubset, 40), problem.Truncate(p.AgentVersion, 100), p.StartedAt, p.FinishedAt, now, seq).Scan(&id); err != nil {
			return err
		}
		var alerted bool
		if err := tx.QueryRow(ctx, `UPDATE agent_schedules SET alerted_at = NULL WHERE repository_id = $1 AND alerted_at IS NOT NULL
			RETURNING true`, repoID).Scan(&alerted); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if alerted {
			return notify.Resolve(ctx, tx, staleSubject(repoID))
		}
		return nil
	})
	if err != nil {
		return Attestation{}, fmt.Errorf("accept attestation for repository %d: %w", repoID, err)
	}
	s.log.InfoContext(ctx, "attestation accepted", "repository_id", repoID, "attestation_id", id, "status", p.Status, "keyid", signer.KeyID)
	return s.AttestationGet(ctx, repoID, id)
}

// verifySignatures returns the non-revoked key one of the envelope's signatures verifies
// with, or a refusal naming the first signature's problem.
func verifySignatures(env Envelope, payload []byte, keys []Key) (Key, error) {
	active := 0
	for _, k := range keys {
		if k.RevokedAt == nil {
			active++
		}
	}
	pae := PAE(env.PayloadType, payload)
	var first error
	for i, sg := range env.Signatures {
		field := fmt.Sprintf("signatures[%d]", i)
		sig, err := base64.StdEncoding.DecodeString(sg.Sig)
		if err != nil || len(sig) != ed25519.SignatureSize {
			first = cmp.Or[error](first, problem.Invalid(field+".sig", "must be the standard base64 of a 64-byte Ed25519 signature"))
			continue
		}
		matched := false
		for _, k := range keys {
			if sg.KeyID != "" && sg.KeyID != k.KeyID {
				continue
			}
			matched = true
			pub, err := ParsePublicKey(k.PublicKey)
			if err != nil || !ed25519.Verify(pub, pae, sig) {
				continue
			}
			if k.RevokedAt != nil {
				first = cmp.Or[error](first, refused("key_revoked", field+".keyid", "the key %q that signed this statement was revoked at %s",
					k.Name, k.RevokedAt.UTC().Format(time.RFC3339)))
				continue
			}
			return k, nil
		}
		if !matched {
			first = cmp.Or[error](first, refused("unknown_key", field+".keyid", "no agent key of this repository has keyid %q: register the agent's public key",
				problem.Truncate(sg.KeyID, 80)))
		} else {
			first = cmp.Or[error](first, refused("bad_signature", field+".sig", "the signature does not verify: the statement was altered or signed with another key"))
		}
	}
	var re *problem.RefusedError
	if active == 0 && (errors.As(first, &re) && re.Code == "unknown_key" || len(keys) == 0) {
		return Key{}, refused("no_agent_key", "signatures", "this repository has no agent key: register the agent's public key first")
	}
	return Key{}, first
}

// parseStatement reads a signed statement, naming the field at fault.
func parseStatement(payload []byte) (Statement, error) {
	var st Statement
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	if err := dec.Decode(&st); err != nil {
		return st, problem.Invalid("payload", "the payload is not an in-toto statement: %s", problem.Truncate(err.Error(), 200))
	}
	p := st.Predicate
	switch {
	case st.Type != StatementType:
		return st, problem.Invalid("payload._type", "must be %s", StatementType)
	case st.PredicateType != PredicateType:
		return st, problem.Invalid("payload.predicateType", "must be %s", PredicateType)
	case len(st.Subject) != 1:
		return st, problem.Invalid("payload.subject", "must name exactly one subject: the repository")
	case p.SnapshotID != "" && !hex64.MatchString(p.SnapshotID):
		return st, problem.Invalid("predicate.snapshot_id", "must be a full restic snapshot id (64 hex digits)")
	case p.StartedAt.IsZero() || p.FinishedAt.IsZero() || p.FinishedAt.Before(p.StartedAt):
		return st, problem.Invalid("predicate.finished_at", "started_at and finished_at are required, finished_at not before started_at")
	}
	switch p.Status {
	case "passed", "warning", "failed", "error":
	default:
		return st, problem.Invalid("predicate.status", "must be passed, warning, failed or error")
	}
	if len(p.Levels) > 20 {
		return st, problem.Invalid("predicate.levels", "at most 20 levels")
	}
	return st, nil
}

func staleSubject(repoID int64) string {
	return "repository/" + strconv.FormatInt(repoID, 10) + "/agent"
}

// CheckStale raises an agent.stale alert for every repository whose agent has not reported
// for its schedule's interval plus grace (counted from its last accepted attestation, or
// from when the schedule was set), once until the agent reports again. It returns how many
// alerts it raised.
func (s *Service) CheckStale(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	rows, err := s.pool.Query(ctx, `SELECT s.repository_id, r.member_id, r.name, s.interval_seconds, s.grace_seconds,
			greatest(s.since, (SELECT max(a.received_at) FROM agent_attestations a WHERE a.repository_id = s.repository_id))
		FROM agent_schedules s JOIN restic_repositories r ON r.id = s.repository_id AND r.deleted_at IS NULL
		WHERE s.alerted_at IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("find silent agents: %w", err)
	}
	type silent struct {
		repoID, memberID int64
		name             string
		interval, grace  int64
		last             time.Time
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (silent, error) {
		var x silent
		err := r.Scan(&x.repoID, &x.memberID, &x.name, &x.interval, &x.grace, &x.last)
		return x, err
	})
	if err != nil {
		return 0, fmt.Errorf("find silent agents: %w", err)
	}
	n := 0
	for _, x := range all {
		due := x.last.Add(time.Duration(x.interval+x.grace) * time.Second)
		if !now.After(due) {
			continue
		}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var ok bool
			err := tx.QueryRow(ctx, `UPDATE agent_schedules SET alerted_at = $2 WHERE repository_id = $1 AND alerted_at IS NULL RETURNING true`,
				x.repoID, now).Scan(&ok)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			mid := x.memberID
			_, err = notify.Emit(ctx, tx, notify.Event{Kind: notify.KindAgentStale, MemberID: &mid, Subject: staleSubject(x.repoID),
				Title: fmt.Sprintf("the agent of repository %s has not reported since %s (expected every %s, grace %s)", x.name,
					x.last.UTC().Format(time.RFC3339), time.Duration(x.interval)*time.Second, time.Duration(x.grace)*time.Second),
				Detail: map[string]any{"repository_id": x.repoID, "repository": x.name, "last_report": x.last.UTC(), "interval_seconds": x.interval,
					"grace_seconds": x.grace}, At: now})
			return err
		})
		if err != nil {
			return n, fmt.Errorf("raise the stale-agent alert of repository %d: %w", x.repoID, err)
		}
		n++
	}
	return n, nil
}

// ShortSnapshot is the snapshot's short id (8 characters), "" when none.
func (a Attestation) ShortSnapshot() string {
	if a.SnapshotID == nil || len(*a.SnapshotID) < 8 {
		return ""
	}
	return (*a.SnapshotID)[:8]
}

// Evidence is the member's part of a repository's evidence list (verify.Service.EvidenceList,
// registered with AddEvidenceSource at wiring): its latest attestation, produced by the member's
// agent and signed with a key registered on the repository; none when no agent has reported.
func (s *Service) Evidence(ctx context.Context, repoID int64) ([]verify.Evidence, error) {
	atts, err := s.AttestationList(ctx, repoID, 1)
	if err != nil || len(atts) == 0 {
		return nil, err
	}
	a := atts[0]
	summary := a.Reason
	if a.SnapshotID != nil {
		summary = fmt.Sprintf("snapshot %.8s: %s (key %q, check subset %s)", *a.SnapshotID, a.Reason, a.KeyName, a.CheckSubset)
	}
	if r := []rune(summary); len(r) > 1000 {
		summary = string(r[:999]) + "…"
	}
	return []verify.Evidence{{Kind: "attestation", Producer: verify.ProducerMember, Outcome: a.Status, Summary: summary,
		At: a.FinishedAt, Ref: a.StatementSHA256}}, nil
}
