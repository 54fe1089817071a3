package server

import (
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// routes lists every route Archipelago serves: operations endpoints, the REST API under
// /v1 (each described in internal/api/openapi/), and the portal under /.
func (s *Server) routes() chi.Router {
	a, p := s.d.API, s.d.Portal
	r := chi.NewRouter()
	r.Use(middleware.RequestID, requestMeta, recoverer(s.log), securityHeaders(s.d.SecureCookies),
		s.metrics.middleware(s.log), bodyLimit(s.d.MaxBodyBytes, s.log))
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed)

	// Operations.
	r.Get("/healthz", a.Healthz)
	r.Get("/readyz", a.Readyz)
	r.Method("GET", "/metrics", s.metricsHandler())

	// REST API.
	r.Get("/v1/openapi.json", a.ServeOpenAPI)
	r.Get("/v1/version", a.VersionInfo)

	// Portal.
	r.Handle("/static/*", p.Static())
	r.Get("/", p.Home)
	return r
}
