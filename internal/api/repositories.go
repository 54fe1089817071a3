package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/verify"
)

// Repositories: the restic repositories members register in their vaults for restore
// tests (internal/verify). A repository is read with MemberRead and changed with
// MemberWrite on its member (authz); repositories of other members are not found.
// Passwords go in and never come out: no answer, log line or audit entry carries one.

// repositoryFor loads the repository of the path's {id} and checks act on its member.
func (a *API) repositoryFor(r *http.Request, act authz.Action) (verify.Repository, error) {
	return loadByID(r, "id", "repository", func(ctx context.Context, id int64) (verify.Repository, error) {
		return verify.RepositoryGetByID(ctx, a.pool, id)
	}, onMember(r, act, func(v verify.Repository) int64 { return v.MemberID }))
}

// memberFilter narrows a list to the ?member= member (an id or a slug) when given (404
// when not visible), else to what p may read (nil: everything).
func (a *API) memberFilter(r *http.Request) ([]int64, error) {
	p := principal(r)
	id, err := a.memberQuery(r)
	if err != nil || id != 0 {
		return []int64{id}, err
	}
	if scope := authz.ReadScope(p); !scope.All {
		return scope.MemberIDs, nil // never nil: nil means everything
	}
	return nil, nil
}

// RepositoryList answers GET /v1/repositories (?member=<id or slug>, ?vault_id).
func (a *API) RepositoryList(w http.ResponseWriter, r *http.Request) error {
	ids, err := a.memberFilter(r)
	if err != nil {
		return err
	}
	vaultID, err := queryInt(r.URL.Query().Get("vault_id"), "vault_id", 1, 1<<62)
	if err != nil {
		return err
	}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := verify.RepositoryPage(r.Context(), a.pool, verify.RepositoryFilter{MemberIDs: ids, VaultID: vaultID}, req)
	return replyPage(w, "repositories", pg, err)
}

type repositoryCreateRequest struct {
	VaultID  int64  `json:"vault_id"`
	Name     string `json:"name"`
	Path     string `json:"path"`
	Mode     string `json:"mode"`
	Password string `json:"password"`
	// FullModeConsent quotes verify.FullModeStatementVersion: required in full mode.
	FullModeConsent string        `json:"full_mode_consent"`
	Policy          verify.Policy `json:"policy"`
}

// RepositoryCreate answers POST /v1/repositories: register a repository in one of the
// member's vaults: blind (the default without a password), attested, or full (a password
// and the member's consent to what holding it means, full_mode_consent).
func (a *API) RepositoryCreate(w http.ResponseWriter, r *http.Request) error {
	var req repositoryCreateRequest
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.VaultID <= 0 {
		return Invalid("vault_id", "is required (the id of one of the member's vaults)")
	}
	switch req.Mode {
	case "":
	case verify.ModeFull:
		if req.Password == "" {
			return Invalid("password", "is required in full mode: the password of the key you added with `restic key add`")
		}
	case verify.ModeBlind, verify.ModeAttested:
		if req.Password != "" {
			return Invalid("password", "must be empty in blind and attested mode: the federation holds no password")
		}
	default:
		return Invalid("mode", "must be blind, attested or full")
	}
	member, err := verify.VaultOwner(r.Context(), a.pool, req.VaultID)
	if err == nil {
		err = check(principal(r), authz.MemberWrite, authz.Member(member))
	}
	if err != nil {
		return notFoundAs(err, "vault_id", strconv.FormatInt(req.VaultID, 10))
	}
	repo, err := a.verify.RepositoryCreate(r.Context(), verify.RepositoryInput{MemberID: member, VaultID: req.VaultID,
		Name: req.Name, Path: req.Path, Mode: req.Mode, Password: req.Password, FullModeConsent: req.FullModeConsent,
		Policy: req.Policy})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/repositories/"+strconv.FormatInt(repo.ID, 10))
	WriteJSON(w, http.StatusCreated, repo)
	return nil
}

// RepositoryGet answers GET /v1/repositories/{id}.
func (a *API) RepositoryGet(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberRead)
	if err != nil {
		return err
	}
	view, err := a.repositoryWithAttestation(r, repo)
	return reply(w, http.StatusOK, view, err)
}

type repositoryUpdateRequest struct {
	Name   *string        `json:"name"`
	Paused *bool          `json:"paused"`
	Policy *verify.Policy `json:"policy"`
}

// RepositoryUpdate answers PATCH /v1/repositories/{id}: rename, pause, or replace the
// policy (a null value in it takes the federation default; an absent policy is kept).
func (a *API) RepositoryUpdate(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	req, err := withBody[repositoryUpdateRequest](r, err)
	if err != nil {
		return err
	}
	policy := repo.Policy
	if req.Policy != nil {
		policy = *req.Policy
	}
	out, err := a.verify.PolicyUpdate(r.Context(), repo.ID, req.Name, policy, req.Paused)
	return reply(w, http.StatusOK, out, err)
}

// RepositoryDelete answers DELETE /v1/repositories/{id}: the repository is no longer
// tested, its password is erased; its history stays.
func (a *API) RepositoryDelete(w http.ResponseWriter, r *http.Request) error {
	return gatedOn(a, w, r, a.repositoryFor, authz.MemberWrite, a.approvals.PlanRepositoryDelete, func(repo verify.Repository) error {
		return noContent(w, a.verify.RepositoryDelete(r.Context(), repo.ID))
	})
}

// RepositoryPasswordSet answers PUT /v1/repositories/{id}/password: set or replace the
// password (the repository becomes full). It is checked against the repository first.
// Entering full mode needs full_mode_consent (verify.FullModeStatementVersion).
func (a *API) RepositoryPasswordSet(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	if err != nil {
		return err
	}
	var req struct {
		Password        string `json:"password"`
		FullModeConsent string `json:"full_mode_consent"`
	}
	if err := Decode(r, &req); err != nil {
		return err
	}
	if req.Password == "" {
		return Invalid("password", "is required; to forget the password use DELETE")
	}
	out, err := a.verify.PasswordSet(r.Context(), repo.ID, req.Password, req.FullModeConsent)
	return reply(w, http.StatusOK, out, err)
}

// RepositoryPasswordRemove answers DELETE /v1/repositories/{id}/password: the password is
// erased and the repository becomes blind.
func (a *API) RepositoryPasswordRemove(w http.ResponseWriter, r *http.Request) error {
	return gatedOn(a, w, r, a.repositoryFor, authz.MemberWrite, a.approvals.PlanRepositoryPasswordRemove, func(repo verify.Repository) error {
		out, err := a.verify.PasswordRemove(r.Context(), repo.ID)
		return reply(w, http.StatusOK, out, err)
	})
}

// runNowSettle is how long run-now waits for River to mark a test that has just finished
// as completed before it gives up with 409 (see RunNow).
var runNowSettle = 3 * time.Second

// RepositoryTestNow answers POST /v1/repositories/{id}/tests: queue a test now. 202 with
// the new run; 200 with the run already waiting or running (at most one per repository).
// A test that has just finished is still held by the queue for a moment: run-now retries
// for a few seconds, then answers 409 with Retry-After.
func (a *API) RepositoryTestNow(w http.ResponseWriter, r *http.Request) error {
	repo, err := a.repositoryFor(r, authz.MemberWrite)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(runNowSettle)
	for {
		run, created, err := a.verify.RunNow(r.Context(), repo.ID)
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/v1/restore-tests/"+strconv.FormatInt(run.ID, 10))
		switch {
		case created:
			WriteJSON(w, http.StatusAccepted, run)
			return nil
		case !run.Final():
			WriteJSON(w, http.StatusOK, run)
			return nil
		}
		if time.Now().After(deadline) {
			w.Header().Del("Location")
			w.Header().Set("Retry-After", "5")
			return Conflict("", "a test of this repository has just finished (restore test %d); ask again in a few seconds", run.ID)
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// trimmedQuery returns a query parameter without surrounding spaces.
func trimmedQuery(r *http.Request, name string) string {
	return strings.TrimSpace(r.URL.Query().Get(name))
}
