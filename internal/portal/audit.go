package portal

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
)

// auditForm is the filter form, as submitted.
type auditForm struct {
	Since, Until, Actor, Member, Action, TargetType, TargetID string
}

type auditListData struct {
	Form    auditForm
	Members []identity.MemberRef
	Entries []audit.LogEntry
	// Next is the link to the next page ("" on the last).
	Next string
}

// Audit shows the audit log with filters.
func (p *Portal) Audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	form := auditForm{Since: q.Get("since"), Until: q.Get("until"), Actor: q.Get("actor"), Member: q.Get("member"),
		Action: q.Get("action"), TargetType: q.Get("target_type"), TargetID: q.Get("target_id")}
	f := audit.Filter{Actor: form.Actor, Action: form.Action, TargetType: form.TargetType, TargetID: form.TargetID, Limit: 50}
	page := Page{Title: p.l(r).T("portal.audit.go.title"), Nav: "audit"}
	day := func(s string) (time.Time, bool) {
		t, err := time.Parse("2006-01-02", s)
		return t, err == nil
	}
	if t, ok := day(form.Since); ok {
		f.Since = t
	} else if form.Since != "" {
		page.Error = "“From” must be a date (YYYY-MM-DD)."
	}
	if t, ok := day(form.Until); ok {
		f.Until = t.AddDate(0, 0, 1)
	} else if form.Until != "" {
		page.Error = "“To” must be a date (YYYY-MM-DD)."
	}
	if form.Member == "federation" {
		f.Federation = true
	} else if id, err := strconv.ParseInt(form.Member, 10, 64); err == nil {
		f.MemberID = &id
	}
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && b > 0 {
		f.Before = b
	}
	u := user(r)
	res, err := p.audit.List(r.Context(), f, authz.AuditVisibility(u))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data := auditListData{Form: form, Entries: res.Entries}
	if u != nil {
		data.Members = u.Members
	}
	if res.NextBefore > 0 {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("before", strconv.FormatInt(res.NextBefore, 10))
		data.Next = "/audit?" + next.Encode()
	}
	page.Data = data
	p.render(w, r, http.StatusOK, "audit", page)
}

type auditEntryData struct {
	Entry      audit.LogEntry
	Details    string
	LeafHash   tlog.Hash
	Checkpoint audit.Checkpoint
	Proof      []tlog.Hash
	Verified   bool
	Problem    string
}

// AuditEntry shows one entry and checks its inclusion proof against the current checkpoint.
func (p *Portal) AuditEntry(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseInt(chi.URLParam(r, "seq"), 10, 64)
	if err != nil || seq < 0 {
		p.NotFound(w, r)
		return
	}
	e, err := p.audit.Get(r.Context(), seq, authz.AuditVisibility(user(r)))
	if !p.loaded(w, r, err, audit.ErrNotFound) {
		return
	}
	data := auditEntryData{Entry: e, Details: string(e.Details), LeafHash: e.LeafHash()}
	c, err := p.audit.Checkpoint(r.Context())
	if err != nil {
		data.Problem = p.l(r).T("portal.audit.go.no_checkpoint", "Problem", err.Error())
	} else {
		data.Checkpoint = c
		proof, err := p.audit.ProveEntry(r.Context(), seq, c.Size)
		switch {
		case err != nil:
			data.Problem = err.Error()
		case tlog.CheckRecord(proof.Proof, c.Size, c.Root, seq, data.LeafHash) != nil:
			data.Problem = p.l(r).T("portal.audit.go.altered")
		default:
			data.Proof, data.Verified = proof.Proof, true
		}
	}
	p.render(w, r, http.StatusOK, "audit_entry", Page{Title: p.l(r).T("portal.audit.go.entry_title", "Seq", seq), Nav: "audit", Data: data})
}

type auditCheckpointData struct {
	Checkpoint  audit.Checkpoint
	VerifierKey string
}

// AuditCheckpoint shows the current signed checkpoint and how to keep and check it.
func (p *Portal) AuditCheckpoint(w http.ResponseWriter, r *http.Request) {
	c, err := p.audit.Checkpoint(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "audit_checkpoint", Page{Title: p.l(r).T("portal.audit.go.checkpoint_title"), Nav: "audit",
		Data: auditCheckpointData{Checkpoint: c, VerifierKey: p.audit.Keys().VerifierKey}})
}
