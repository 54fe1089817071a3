package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/vaults"
)

type keyRequest struct {
	Name      string     `json:"name"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func (a *API) keyFor(r *http.Request, act authz.Action) (vaults.Vault, vaults.Key, error) {
	v, err := a.vaultFor(r, act)
	if err != nil {
		return v, vaults.Key{}, err
	}
	k, err := loadByID(r, "key_id", "key", func(ctx context.Context, id int64) (vaults.Key, error) {
		return a.vaults.KeyGetByID(ctx, v.ID, id)
	}, nil)
	return v, k, err
}

// KeyList answers GET /v1/vaults/{id}/keys (never a secret).
func (a *API) KeyList(w http.ResponseWriter, r *http.Request) error {
	v, err := a.vaultFor(r, authz.MemberRead)
	if err != nil {
		return err
	}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	pg, err := a.vaults.KeyPage(r.Context(), v.ID, req)
	return replyPage(w, "keys", pg, err)
}

// KeyCreate answers POST /v1/vaults/{id}/keys: the secret and the restic snippet are in
// this answer only.
func (a *API) KeyCreate(w http.ResponseWriter, r *http.Request) error {
	v, err := a.vaultFor(r, authz.MemberWrite)
	req, err := withBody[keyRequest](r, err)
	if err != nil {
		return err
	}
	k, err := a.vaults.KeyCreate(r.Context(), v.ID, vaults.KeyInput{Name: req.Name, ExpiresAt: req.ExpiresAt})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/vaults/"+strconv.FormatInt(v.ID, 10)+"/keys/"+strconv.FormatInt(k.ID, 10))
	WriteJSON(w, http.StatusCreated, k)
	return nil
}

// KeyGet answers GET /v1/vaults/{id}/keys/{key_id}.
func (a *API) KeyGet(w http.ResponseWriter, r *http.Request) error {
	_, k, err := a.keyFor(r, authz.MemberRead)
	return reply(w, http.StatusOK, k, err)
}

// KeyRotate answers POST /v1/vaults/{id}/keys/{key_id}/rotate: a new key (with its
// secret, once); the old one works until the grace period ends.
func (a *API) KeyRotate(w http.ResponseWriter, r *http.Request) error {
	v, k, err := a.keyFor(r, authz.MemberWrite)
	req, err := withOptionalBody[keyRequest](r, err)
	if err != nil {
		return err
	}
	nk, err := a.vaults.KeyRotate(r.Context(), v.ID, k.ID, vaults.KeyInput{Name: req.Name, ExpiresAt: req.ExpiresAt})
	return reply(w, http.StatusCreated, nk, err)
}

// KeyRevoke answers DELETE /v1/vaults/{id}/keys/{key_id}: the key stops working at once.
func (a *API) KeyRevoke(w http.ResponseWriter, r *http.Request) error {
	v, k, err := a.keyFor(r, authz.MemberWrite)
	if err != nil {
		return err
	}
	_, err = a.vaults.KeyRevoke(r.Context(), v.ID, k.ID)
	return noContent(w, err)
}
