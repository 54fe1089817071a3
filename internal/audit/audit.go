// Package audit owns Archipelago's audit log: the one call every mutation makes, inside the
// database transaction of the change, so that a change without its entry cannot commit
// (fail-closed).
//
// Who acts (a user, an API token, a system job) and the request's id and source address
// travel in the context, set once by the HTTP middleware or the job runner; call sites only
// say what happened. Details must never hold a secret: where the identity of a secret
// matters, record a fingerprint of it (see Fingerprint).
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ActorKind says what kind of principal acted.
type ActorKind string

// Actor kinds.
const (
	ActorUser      ActorKind = "user"
	ActorToken     ActorKind = "token"
	ActorSystem    ActorKind = "system"
	ActorAnonymous ActorKind = "anonymous"
)

// Actor is who performed a change.
type Actor struct {
	Kind ActorKind
	ID   string // user id, token id, or job name
	Name string // email, token name or job description, for people reading the log
}

// System returns the actor for a background job.
func System(job string) Actor { return Actor{Kind: ActorSystem, ID: job, Name: job} }

// Request is what the HTTP layer knows about the request behind a change.
type Request struct {
	ID       string
	SourceIP string
}

type ctxKey int

const (
	actorKey ctxKey = iota
	requestKey
)

// WithActor returns ctx carrying the actor for audit entries.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// ActorFrom returns the actor ctx carries.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey).(Actor)
	return a, ok
}

// WithRequest returns ctx carrying the request's id and source address.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey, r)
}

// RequestFrom returns the request metadata ctx carries.
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey).(Request)
	return r
}

// Entry is what a call site says about a change.
type Entry struct {
	Action     string // dotted verb, e.g. "token.create", "island.update"
	MemberID   *int64 // the member the change belongs to; nil for federation-level changes
	TargetType string // e.g. "token", "island"
	TargetID   string
	Details    map[string]any // JSON without secrets
}

// ErrNoActor means a mutation was attempted with no actor in its context: refused.
var ErrNoActor = errors.New("audit: no actor in context; refusing an unattributed change")

// Record appends e to the audit log inside tx. When it fails the caller must roll the
// transaction back (returning the error does so in every store of this codebase).
//
// Sequence numbers are gap-free: appends are serialised with a transaction-scoped advisory
// lock, held until the surrounding transaction ends.
func Record(ctx context.Context, tx pgx.Tx, e Entry) (seq int64, err error) {
	actor, ok := ActorFrom(ctx)
	if !ok {
		return 0, ErrNoActor
	}
	if e.Action == "" {
		return 0, errors.New("audit: entry without an action")
	}
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	raw, err := json.Marshal(details)
	if err != nil {
		return 0, fmt.Errorf("audit: encode details of %s: %w", e.Action, err)
	}
	req := RequestFrom(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, appendLockID); err != nil {
		return 0, fmt.Errorf("audit: lock the log: %w", err)
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO audit_entries (seq, at, actor_kind, actor_id, actor_name, member_id, action,
		                           target_type, target_id, request_id, source_ip, details)
		SELECT coalesce(max(seq) + 1, 0), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM audit_entries
		RETURNING seq`,
		time.Now().UTC().Truncate(time.Microsecond), string(actor.Kind), actor.ID, actor.Name, e.MemberID, e.Action,
		e.TargetType, e.TargetID, req.ID, req.SourceIP, raw).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return seq, nil
}

// appendLockID is the advisory lock key serialising appends ("audit" in ASCII).
const appendLockID int64 = 0x6175646974

// Fingerprint is a keyed hash identifying a secret in the log without revealing it
// (as Vault's audit devices do): the same secret gives the same fingerprint under the
// same key, and nothing about the secret can be learned from it.
func Fingerprint(key []byte, secret string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(secret))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:32]
}
