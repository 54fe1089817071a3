package portal

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/verify"
)

// Member-side agents on the repository page (internal/attest, docs/agent.md): what the
// member's agent attested, beside what the federation verified; its keys (public part
// only: register, revoke) and its expected schedule.

// agentData is the repository page's agent section.
type agentData struct {
	Summary  attest.Summary
	Keys     []attest.Key
	Interval string // the schedule form, in hours ("" when none)
	Grace    string
}

func (p *Portal) agentDataOf(r *http.Request, repo verify.Repository) (agentData, error) {
	var d agentData
	var err error
	if d.Summary, err = p.attest.SummaryGet(r.Context(), repo.ID); err != nil {
		return d, err
	}
	if d.Keys, err = p.attest.KeyList(r.Context(), repo.ID); err != nil {
		return d, err
	}
	if s := d.Summary.Schedule; s != nil {
		d.Interval = strconv.FormatFloat(float64(s.IntervalSeconds)/3600, 'f', -1, 64)
		d.Grace = strconv.FormatFloat(float64(s.GraceSeconds)/3600, 'f', -1, 64)
	}
	return d, nil
}

var agentLabels = map[string]string{"name": "portal.restore.agent.name", "public_key": "portal.restore.agent.public_key", "interval_seconds": "portal.restore.agent.interval", "grace_seconds": "portal.restore.agent.grace"}

// AgentKeyAdd handles the "register an agent key" form.
func (p *Portal) AgentKeyAdd(w http.ResponseWriter, r *http.Request) {
	repo, ok := p.repositoryChange(w, r)
	if !ok {
		return
	}
	_, err := p.attest.KeyAdd(r.Context(), repo.ID, repo.MemberID, r.PostFormValue("name"), r.PostFormValue("public_key"))
	p.repositoryOutcome(w, r, err, repo, agentLabels, repoURL(repo.ID, "agent-key"))
}

// AgentKeyRevoke handles an agent key's revoke button.
func (p *Portal) AgentKeyRevoke(w http.ResponseWriter, r *http.Request) {
	repo, ok := p.repositoryChange(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(chi.URLParam(r, "key_id"), 10, 64)
	if err != nil {
		p.NotFound(w, r)
		return
	}
	if !p.confirmed(w, r, confirmAsk{Kind: "agent-key-revoke", Name: "#" + strconv.FormatInt(id, 10), Back: fmt.Sprintf("/restore-tests/repositories/%d", repo.ID)}) {
		return
	}
	_, err = p.attest.KeyRevoke(r.Context(), repo.ID, repo.MemberID, id)
	p.repositoryOutcome(w, r, err, repo, agentLabels, repoURL(repo.ID, "agent-key-revoked"))
}

// AgentSchedule handles the agent schedule form (hours; an empty interval removes it).
func (p *Portal) AgentSchedule(w http.ResponseWriter, r *http.Request) {
	repo, ok := p.repositoryChange(w, r)
	if !ok {
		return
	}
	hours := func(field, v string) (int64, error) {
		v = strings.TrimSpace(v)
		if v == "" {
			return 0, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 8784 {
			return 0, &keyError{Key: "portal.restore.agent.bad_hours", Field: agentLabels[field]}
		}
		return int64(f * 3600), nil
	}
	interval, err := hours("interval_seconds", r.PostFormValue("interval_hours"))
	var grace int64
	if err == nil {
		grace, err = hours("grace_seconds", r.PostFormValue("grace_hours"))
	}
	if err == nil {
		err = p.attest.ScheduleSet(r.Context(), repo.ID, repo.MemberID, interval, grace)
	}
	p.repositoryOutcome(w, r, err, repo, agentLabels, repoURL(repo.ID, "agent-schedule"))
}
