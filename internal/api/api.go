package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/attest"
	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/notify"
	"github.com/chatons/archipelago/internal/protection"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/vaults"
	"github.com/chatons/archipelago/internal/verify"
)

// Version is set at build time (-ldflags "-X github.com/chatons/archipelago/internal/api.Version=…").
var Version = "dev"

// API holds what the REST handlers depend on.
type API struct {
	log      *slog.Logger
	pool     *pgxpool.Pool
	openapi  []byte
	bodies   *bodySchemas
	identity *identity.Service
	audit    *audit.Service
	islands  *islands.Service
	notify   *notify.Service
	reports  *reports.Service
	vaults   *vaults.Service
	verify   *verify.Service
	// protection: protected vaults (internal/api/protection.go)
	protection *protection.Service
	attest     *attest.Service // member-side agents (internal/api/attestations.go)
	secure     bool            // cookies carry Secure
	// approvals: multi-party approval of protected actions (internal/api/approvals.go)
	approvals *approvals.Service
	langs     *languages // the language of error messages (internal/api/language.go)
}

// Deps are the collaborators of the API.
type Deps struct {
	Logger        *slog.Logger
	Pool          *pgxpool.Pool
	Identity      *identity.Service
	Audit         *audit.Service
	Islands       *islands.Service
	Notify        *notify.Service
	Reports       *reports.Service
	Vaults        *vaults.Service
	Verify        *verify.Service
	Protection    *protection.Service
	Attest        *attest.Service
	Approvals     *approvals.Service
	SecureCookies bool
	// Catalog holds the messages of every language (loaded from the embedded catalogs when nil).
	Catalog *i18n.Catalog
}

// New builds the API; it fails when the OpenAPI document does not assemble.
func New(d Deps) (*API, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	bodies, err := newBodySchemas(doc)
	if err != nil {
		return nil, err
	}
	cat := d.Catalog
	if cat == nil {
		if cat, err = i18n.Load(); err != nil {
			return nil, err
		}
	}
	return &API{log: d.Logger, pool: d.Pool, openapi: doc, bodies: bodies, identity: d.Identity, secure: d.SecureCookies,
		audit: d.Audit, islands: d.Islands, notify: d.Notify, reports: d.Reports, vaults: d.Vaults, verify: d.Verify,
		protection: d.Protection, attest: d.Attest, approvals: d.Approvals, langs: &languages{cat: cat, pool: d.Pool}}, nil
}

// Fail writes err in the error shape (a convenience for handlers).
// Its message is in the caller's language (internal/api/language.go).
func (a *API) Fail(w http.ResponseWriter, r *http.Request, err error) {
	WriteError(w, a.localized(r), a.log, err)
}

// Healthz answers 200 while the process is alive.
func (a *API) Healthz(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type readiness struct {
	Status   string `json:"status"`
	Database string `json:"database"`
	Schema   string `json:"schema"`
}

// Readyz answers 200 when the database answers and its schema is current, 503 otherwise.
func (a *API) Readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	out := readiness{Status: "ready", Database: "ok", Schema: "current"}
	status := http.StatusOK
	if err := a.pool.Ping(ctx); err != nil {
		out = readiness{Status: "unready", Database: "unreachable", Schema: "unknown"}
		status = http.StatusServiceUnavailable
	} else if err := database.CheckCurrent(ctx, a.pool); err != nil {
		out.Status, out.Schema = "unready", err.Error()
		status = http.StatusServiceUnavailable
	}
	WriteJSON(w, status, out)
}

// Version answers GET /v1/version.
func (a *API) VersionInfo(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"version": Version})
}

// Handler is a REST handler that returns its failure instead of writing it.
type Handler func(w http.ResponseWriter, r *http.Request) error

// H adapts a Handler: a returned error is written in the error shape (see ErrorOf), so
// handlers read as decode → authorize → call → respond, each step returning its error.
func (a *API) H(h Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.Fail(w, r, err)
		}
	}
}
