package api

import (
	"cmp"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/paging"
)

type auditPage struct {
	Entries    []audit.EntryView `json:"entries"`
	NextCursor *string           `json:"next_cursor"`
}

// AuditList answers GET /v1/audit/entries: the entries the caller may see, newest first,
// paged in the one style of every list (?cursor=, ?limit=, next_cursor).
func (a *API) AuditList(w http.ResponseWriter, r *http.Request) error {
	f, err := a.auditFilter(r)
	if err != nil {
		return err
	}
	page, err := a.audit.List(r.Context(), f, authz.AuditVisibility(principal(r)))
	if err != nil {
		return err
	}
	out := auditPage{Entries: make([]audit.EntryView, 0, len(page.Entries))}
	for i := range page.Entries {
		out.Entries = append(out.Entries, page.Entries[i].View())
	}
	if page.NextBefore > 0 {
		out.NextCursor = nextCursor(paging.Encode(page.NextBefore))
	}
	WriteJSON(w, http.StatusOK, out)
	return nil
}

// auditFilter reads the list's query parameters.
func (a *API) auditFilter(r *http.Request) (audit.Filter, error) {
	q := r.URL.Query()
	var f audit.Filter
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, Invalid(p.name, "must be an RFC 3339 time such as 2025-01-31T12:00:00Z")
			}
			*p.dst = t
		}
	}
	f.Actor, f.Action, f.TargetType, f.TargetID = q.Get("actor"), q.Get("action"), q.Get("target_type"), q.Get("target_id")
	if k := q.Get("actor_kind"); k != "" {
		switch audit.ActorKind(k) {
		case audit.ActorUser, audit.ActorToken, audit.ActorSystem, audit.ActorAnonymous:
			f.ActorKind = audit.ActorKind(k)
		default:
			return f, Invalid("actor_kind", "must be user, token, system or anonymous")
		}
	}
	if m := q.Get("member"); m == "federation" {
		f.Federation = true
	} else if m != "" {
		// The member's id or slug; who may read which entries is decided by the list itself.
		mem, err := a.memberByRef(r, "member", memberRef(m))
		if err != nil {
			return f, err
		}
		f.MemberID = &mem.ID
	}
	if q.Has("before") {
		// The audit list's own sequence cursor, before the one style: refused clearly
		// rather than ignored (an ignored cursor would repeat the first page forever).
		return f, Invalid("before", "is no longer accepted: pass the next_cursor of the previous page as cursor")
	}
	req, err := pageParams(r)
	if err != nil {
		return f, err
	}
	var before int64
	if _, err := req.Keys(&before); err != nil || (req.Cursor != "" && before < 1) {
		return f, Invalid("cursor", "is not a cursor of this list (pass the next_cursor of the previous page)")
	}
	f.Before, f.Limit = before, req.Limit
	return f, nil
}

// queryInt parses an optional integer query parameter within [lo, hi] (0 when absent).
func queryInt(v, name string, lo, hi int64) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, Invalid(name, "must be an integer from %d to %d", lo, hi)
	}
	return n, nil
}

// withQueryInt reads the optional integer query parameter name (lo to hi, def when absent)
// once the object of the path was loaded: err (a missing or refused object) is answered
// first, as withBody does.
func withQueryInt(r *http.Request, err error, name string, def, lo, hi int64) (int64, error) {
	if err != nil {
		return 0, err
	}
	n, err := queryInt(r.URL.Query().Get(name), name, lo, hi)
	return cmp.Or(n, def), err
}

// auditSeq reads the {seq} path parameter; a malformed one is simply not found.
func auditSeq(r *http.Request) (int64, error) {
	seq, err := strconv.ParseInt(chi.URLParam(r, "seq"), 10, 64)
	if err != nil || seq < 0 {
		return 0, NotFound("audit entry")
	}
	return seq, nil
}

// AuditGet answers GET /v1/audit/entries/{seq}.
func (a *API) AuditGet(w http.ResponseWriter, r *http.Request) error {
	seq, err := auditSeq(r)
	if err != nil {
		return err
	}
	e, err := a.audit.Get(r.Context(), seq, authz.AuditVisibility(principal(r)))
	if err != nil {
		return auditError(err, "")
	}
	WriteJSON(w, http.StatusOK, e.View())
	return nil
}

// AuditEntryProof answers GET /v1/audit/entries/{seq}/proof: the inclusion proof of an
// entry in a tree size (default: the current checkpoint's). Public: it reveals only hashes.
func (a *API) AuditEntryProof(w http.ResponseWriter, r *http.Request) error {
	seq, err := auditSeq(r)
	if err != nil {
		return err
	}
	size, err := queryInt(r.URL.Query().Get("tree_size"), "tree_size", 1, 1<<62)
	if err != nil {
		return err
	}
	p, err := a.audit.ProveEntry(r.Context(), seq, size)
	if errors.Is(err, audit.ErrBadRange) && size == 0 {
		err = NotFound("audit entry")
	}
	if err != nil {
		return auditError(err, "tree_size")
	}
	proof := []tlog.Hash(p.Proof)
	if proof == nil {
		proof = []tlog.Hash{}
	}
	WriteJSON(w, http.StatusOK, audit.ProofView{Seq: p.Seq, TreeSize: p.TreeSize, LeafHash: p.LeafHash, Proof: proof})
	return nil
}

// AuditConsistency answers GET /v1/audit/consistency?from=&to=: the proof that the tree of
// size from is a prefix of the tree of size to. Public.
func (a *API) AuditConsistency(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	from, err := queryInt(q.Get("from"), "from", 1, 1<<62)
	if err == nil && from == 0 {
		err = Invalid("from", "is required")
	}
	if err != nil {
		return err
	}
	to, err := queryInt(q.Get("to"), "to", 1, 1<<62)
	if err == nil && to == 0 {
		err = Invalid("to", "is required")
	}
	if err != nil {
		return err
	}
	p, err := a.audit.ProveConsistency(r.Context(), from, to)
	if err != nil {
		return auditError(err, "to")
	}
	proof := []tlog.Hash(p)
	if proof == nil {
		proof = []tlog.Hash{}
	}
	WriteJSON(w, http.StatusOK, audit.ConsistencyView{From: from, To: to, Proof: proof})
	return nil
}

// AuditCheckpoint answers GET /v1/audit/checkpoint: the latest signed checkpoint in the
// note format, signing a fresh one when the log has grown. Public.
func (a *API) AuditCheckpoint(w http.ResponseWriter, r *http.Request) error {
	c, err := a.audit.Checkpoint(r.Context())
	if err != nil {
		return auditError(err, "")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Audit-Tree-Size", strconv.FormatInt(c.Size, 10))
	_, _ = w.Write(c.Note)
	return nil
}

// AuditKey answers GET /v1/audit/key: the public key that verifies checkpoints. Public.
func (a *API) AuditKey(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write([]byte(a.audit.Keys().VerifierKey + "\n"))
}

// CodeAuditInconsistent: the stored audit log does not hold what its signed checkpoints
// say (409); the message names what does not hold.
const CodeAuditInconsistent = "audit_log_inconsistent"

func auditError(err error, field string) error {
	switch {
	case errors.Is(err, audit.ErrInconsistent):
		msg := err.Error()
		if i := strings.Index(msg, audit.ErrInconsistent.Error()); i >= 0 {
			msg = msg[i:]
		}
		return &Error{Status: http.StatusConflict, Code: CodeAuditInconsistent, Message: msg}
	case errors.Is(err, audit.ErrNotFound):
		return NotFound("audit entry")
	case errors.Is(err, audit.ErrBadRange):
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[:i]
		}
		return Invalid(field, "%s: outside the log", msg)
	}
	return err
}
