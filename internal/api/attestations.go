package api

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/verify"
)

// Member-side agents (internal/attest, docs/agent.md): the Ed25519 public keys a member
// registers per repository (MemberWrite), the expected schedule, and the DSSE-signed
// attestations its agent pushes. Pushing needs only MemberRead on the repository (a viewer
// token is enough): what makes an attestation count is its signature by a registered key.

// repositoryView is a repository with what its member's agent attested beside it.
type repositoryView struct {
	verify.Repository
	AttestedByMember attest.Summary `json:"attested_by_member"`
}

func (a *API) repositoryWithAttestation(r *http.Request, repo verify.Repository) (repositoryView, error) {
	sum, err := a.attest.SummaryGet(r.Context(), repo.ID)
	return repositoryView{Repository: repo, AttestedByMember: sum}, err
}

// runView is a restore test with the member's attestation of the same snapshot, if any.
type runView struct {
	verify.Run
	AttestedByMember *attest.Attestation `json:"attested_by_member"`
}

func (a *API) runWithAttestation(r *http.Request, run verify.Run) (runView, error) {
	v := runView{Run: run}
	if run.SnapshotID == nil || *run.SnapshotID == "" {
		return v, nil
	}
	att, err := a.attest.ForSnapshot(r.Context(), run.RepositoryID, *run.SnapshotID)
	v.AttestedByMember = att
	return v, err
}

// AgentGet answers GET /v1/repositories/{id}/agent: keys, schedule and latest attestation.
func (a *API) AgentGet(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberRead)
	if err != nil {
		return err
	}
	sum, err := a.attest.SummaryGet(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	keys, err := a.attest.KeyList(r.Context(), repo.ID)
	return reply(w, http.StatusOK, map[string]any{"summary": sum, "keys": keys}, err)
}

type agentScheduleRequest struct {
	IntervalSeconds int64 `json:"interval_seconds"`
	GraceSeconds    int64 `json:"grace_seconds"`
}

// AgentScheduleSet answers PUT /v1/repositories/{id}/agent/schedule (interval 0 removes it).
func (a *API) AgentScheduleSet(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	req, err := withBody[agentScheduleRequest](r, err)
	if err != nil {
		return err
	}
	if err := a.attest.ScheduleSet(r.Context(), repo.ID, repo.MemberID, req.IntervalSeconds, req.GraceSeconds); err != nil {
		return err
	}
	sum, err := a.attest.SummaryGet(r.Context(), repo.ID)
	return reply(w, http.StatusOK, sum, err)
}

type agentKeyRequest struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
}

// AgentKeyList answers GET /v1/repositories/{id}/agent/keys.
func (a *API) AgentKeyList(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberRead)
	if err != nil {
		return err
	}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := a.attest.KeyPage(r.Context(), repo.ID, req)
	return replyPage(w, "keys", pg, err)
}

// AgentKeyAdd answers POST /v1/repositories/{id}/agent/keys: register an agent's public key.
func (a *API) AgentKeyAdd(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	req, err := withBody[agentKeyRequest](r, err)
	if err != nil {
		return err
	}
	k, err := a.attest.KeyAdd(r.Context(), repo.ID, repo.MemberID, req.Name, req.PublicKey)
	if err == nil {
		w.Header().Set("Location", "/v1/repositories/"+strconv.FormatInt(repo.ID, 10)+"/agent/keys/"+strconv.FormatInt(k.ID, 10))
	}
	return reply(w, http.StatusCreated, k, err)
}

// AgentKeyRevoke answers DELETE /v1/repositories/{id}/agent/keys/{key_id}.
func (a *API) AgentKeyRevoke(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	if err != nil {
		return err
	}
	id, err := pathID(r, chi.URLParam(r, "key_id"))
	if err != nil {
		return err
	}
	k, err := a.attest.KeyRevoke(r.Context(), repo.ID, repo.MemberID, id)
	return reply(w, http.StatusOK, k, err)
}

// AttestationList answers GET /v1/repositories/{id}/attestations (?limit=20, at most 200).
func (a *API) AttestationList(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberRead)
	limit, err := withQueryInt(r, err, "limit", 20, 1, 200)
	if err != nil {
		return err
	}
	list, err := a.attest.AttestationList(r.Context(), repo.ID, int(limit))
	return reply(w, http.StatusOK, map[string]any{"attestations": list}, err)
}

// AttestationGet answers GET /v1/repositories/{id}/attestations/{att_id}, with the
// envelope as received (for verification with standard tools).
func (a *API) AttestationGet(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberRead)
	if err != nil {
		return err
	}
	id, err := pathID(r, chi.URLParam(r, "att_id"))
	if err != nil {
		return err
	}
	att, err := a.attest.AttestationGet(r.Context(), repo.ID, id)
	return reply(w, http.StatusOK, att, err)
}

// AttestationPush answers POST /v1/repositories/{id}/attestations: the body is a DSSE
// envelope; 201 with the accepted attestation, 4xx naming why it was refused.
func (a *API) AttestationPush(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberRead)
	env, err := withBody[attest.Envelope](r, err)
	if err != nil {
		return err
	}
	att, err := a.attest.Accept(r.Context(), repo.ID, repo.MemberID, env)
	if err == nil {
		w.Header().Set("Location", "/v1/repositories/"+strconv.FormatInt(repo.ID, 10)+"/attestations/"+strconv.FormatInt(att.ID, 10))
	}
	return reply(w, http.StatusCreated, att, err)
}
