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
// Sequence numbers are gap-free and the tree cannot fork: appends are serialised with a
// transaction-scoped advisory lock, held until the surrounding transaction ends, and the
// entry's leaf hash and the tree's new stored hashes are written in the same transaction.
// tx must run at READ COMMITTED (PostgreSQL's default), so the append sees the entries
// committed before it took the lock; at a stricter level a concurrent append makes it fail
// (never fork).
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
	le := LogEntry{At: time.Now().UTC().Truncate(time.Microsecond), Actor: actor, MemberID: e.MemberID, Action: e.Action,
		TargetType: e.TargetType, TargetID: e.TargetID, RequestID: req.ID, SourceIP: req.SourceIP}
	if err := appendEntry(ctx, tx, &le, raw); err != nil {
		return 0, fmt.Errorf("audit: append %s: %w", e.Action, err)
	}
	return le.Seq, nil
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
