package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

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
	Details    map[string]any // JSON without secrets; long strings are cut (see MaxDetailString)
	// Person is the person a personal entry (auth.*, user.*) concerns, when the call site
	// knows better than Record (which takes a target of type "user", else a user actor).
	Person *int64
}

// Personal reports whether entries of action are personal: authentication and account
// entries, visible only to the person they concern, the admins of that person's members
// and federation admins (never to every member, whatever their MemberID).
func Personal(action string) bool {
	return strings.HasPrefix(action, "auth.") || strings.HasPrefix(action, "user.")
}

// person is the person a personal entry concerns: e.Person, else a target of type "user",
// else the acting user; nil when nobody is known.
func (e Entry) person(a Actor) *int64 {
	if e.Person != nil {
		return e.Person
	}
	if e.TargetType == "user" {
		if id, err := strconv.ParseInt(e.TargetID, 10, 64); err == nil {
			return &id
		}
	}
	if a.Kind == ActorUser {
		if id, err := strconv.ParseInt(a.ID, 10, 64); err == nil {
			return &id
		}
	}
	return nil
}

// Bounds on what one entry holds, so that no caller — and no attacker whose text reaches a
// caller, such as a failed login's email — can make the append-only log grow by more than a
// few KiB an entry.
const (
	// MaxDetailString is the longest string kept in details (longer ones are cut and
	// marked, at a UTF-8 boundary).
	MaxDetailString = 1024
	// MaxDetails is the largest details object; a larger one is replaced by a summary.
	MaxDetails = 16 << 10
	// maxField bounds the entry's other text fields (actor name, target id, …).
	maxField = 512
)

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
	raw, err := boundedDetails(e.Details)
	if err != nil {
		return 0, fmt.Errorf("audit: encode details of %s: %w", e.Action, err)
	}
	req := RequestFrom(ctx)
	actor.ID, actor.Name = cut(actor.ID, maxField), cut(actor.Name, maxField)
	le := LogEntry{Actor: actor, MemberID: e.MemberID, Action: cut(e.Action, maxField),
		TargetType: cut(e.TargetType, maxField), TargetID: cut(e.TargetID, maxField), RequestID: cut(req.ID, maxField),
		SourceIP: cut(req.SourceIP, maxField)}
	personal := Personal(e.Action)
	var person *int64
	if personal {
		person = e.person(actor)
	}
	if err := appendEntry(ctx, tx, &le, raw, personal, person); err != nil {
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

// cut shortens s to at most n bytes at a UTF-8 boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// boundedDetails encodes details with every string longer than MaxDetailString cut (the
// cut is marked with its original length), and replaces an object still larger than
// MaxDetails by a summary of it.
func boundedDetails(details map[string]any) ([]byte, error) {
	if details == nil {
		details = map[string]any{}
	}
	raw, err := json.Marshal(details)
	if err != nil || len(raw) <= MaxDetailString {
		return raw, err // (no string in it can be too long)
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // (ids beyond 2^53 stay exact)
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	raw, err = json.Marshal(cutStrings(generic))
	if err != nil || len(raw) <= MaxDetails {
		return raw, err
	}
	keys := make([]string, 0, len(details))
	for k := range details {
		keys = append(keys, cut(k, 64))
		if len(keys) == 32 {
			break
		}
	}
	return json.Marshal(map[string]any{"truncated": true, "bytes": len(raw), "keys": keys})
}

func cutStrings(v any) any {
	switch x := v.(type) {
	case string:
		if len(x) > MaxDetailString {
			return cut(x, MaxDetailString) + fmt.Sprintf(" [cut from %d bytes]", len(x))
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[cut(k, maxField)] = cutStrings(e)
		}
		return out
	case []any:
		for i := range x {
			x[i] = cutStrings(x[i])
		}
	}
	return v
}
