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

	// REST API: public.
	r.Get("/v1/openapi.json", a.ServeOpenAPI)
	r.Get("/v1/version", a.VersionInfo)

	// Audit log: checkpoints, proofs and the key reveal only hashes; anyone may verify.
	r.Get("/v1/audit/checkpoint", a.AuditCheckpoint)
	r.Get("/v1/audit/key", a.AuditKey)
	r.Get("/v1/audit/consistency", a.AuditConsistency)
	r.Get("/v1/audit/entries/{seq}/proof", a.AuditEntryProof)

	r.Group(func(r chi.Router) {
		r.Use(a.Authenticate)
		r.Post("/v1/auth/login", a.Login)
		r.Post("/v1/auth/refresh", a.Refresh)

		// REST API: authenticated.
		r.Group(func(r chi.Router) {
			r.Use(a.RequireAuth)
			// Identity and access.
			r.Post("/v1/auth/logout", a.Logout)
			r.Get("/v1/me", a.Me)
			r.Get("/v1/tokens", a.TokenList)
			r.Post("/v1/tokens", a.TokenCreate)
			r.Get("/v1/tokens/{id}", a.TokenGet)
			r.Delete("/v1/tokens/{id}", a.TokenRevoke)
			// Audit log.
			r.Get("/v1/audit/entries", a.AuditList)
			r.Get("/v1/audit/entries/{seq}", a.AuditGet)
			// Federation: members, islands, pledges.
			r.Get("/v1/members", a.MemberList)
			r.Post("/v1/members", a.MemberCreate)
			r.Get("/v1/members/{id}", a.MemberGet)
			r.Patch("/v1/members/{id}", a.MemberUpdate)
			r.Delete("/v1/members/{id}", a.MemberDelete)
			r.Get("/v1/islands", a.IslandList)
			r.Post("/v1/islands", a.IslandCreate)
			r.Get("/v1/islands/{id}", a.IslandGet)
			r.Patch("/v1/islands/{id}", a.IslandUpdate)
			r.Delete("/v1/islands/{id}", a.IslandDelete)
			r.Post("/v1/islands/{id}/poll", a.IslandPoll)
			r.Get("/v1/islands/{id}/observations", a.IslandObservations)
			r.Get("/v1/islands/{id}/operators", a.OperatorList)
			r.Put("/v1/islands/{id}/operators/{member_id}", a.OperatorAdd)
			r.Delete("/v1/islands/{id}/operators/{member_id}", a.OperatorRemove)
			r.Get("/v1/pledges", a.PledgeList)
			r.Post("/v1/pledges", a.PledgeCreate)
			r.Get("/v1/pledges/{id}", a.PledgeGet)
			r.Patch("/v1/pledges/{id}", a.PledgeUpdate)
			r.Post("/v1/pledges/{id}/withdraw", a.PledgeWithdraw)
			// Reports and notifications.
			r.Get("/v1/reports", a.ReportList)
			r.Post("/v1/reports", a.ReportCreate)
			r.Get("/v1/reports/{id}", a.ReportGet)
			r.Get("/v1/reports/{id}/report.json", a.ReportJSON)
			r.Get("/v1/reports/{id}/report.html", a.ReportHTML)
			r.Get("/v1/reports/{id}/report.csv", a.ReportCSV)
			r.Get("/v1/reports/{id}/checkpoint", a.ReportCheckpoint)
			r.Get("/v1/notify/channels", a.ChannelList)
			r.Post("/v1/notify/channels", a.ChannelCreate)
			r.Get("/v1/notify/channels/{id}", a.ChannelGet)
			r.Patch("/v1/notify/channels/{id}", a.ChannelUpdate)
			r.Delete("/v1/notify/channels/{id}", a.ChannelDelete)
			r.Post("/v1/notify/channels/{id}/test", a.ChannelTest)
			r.Get("/v1/notify/channels/{id}/deliveries", a.ChannelDeliveries)
			r.Get("/v1/notify/events", a.NotifyEvents)
		})
	})

	// Portal.
	r.Method("GET", "/static/*", p.Static())
	r.Group(func(r chi.Router) {
		r.Use(p.Session)
		r.Get("/login", p.LoginForm)
		r.Post("/login", p.Login)
		r.Group(func(r chi.Router) {
			r.Use(p.RequireLogin)
			r.Post("/logout", p.Logout)
			r.Get("/", p.Home)
			r.Get("/account", p.Account)
			r.Post("/account/password", p.ChangePassword)
			r.Get("/tokens", p.Tokens)
			r.Post("/tokens", p.TokenCreate)
			r.Post("/tokens/{id}/revoke", p.TokenRevoke)
			r.Get("/vaults", p.ComingSoon("vaults", "Vaults"))
			r.Get("/islands", p.Islands)
			r.Get("/islands/{id}", p.Island)
			r.Get("/members", p.Members)
			r.Get("/pledges", p.Pledges)
			r.Post("/pledges", p.PledgeCreate)
			r.Post("/pledges/{id}/withdraw", p.PledgeWithdraw)
			r.Get("/restore-tests", p.ComingSoon("restore-tests", "Restore tests"))
			// Reports and notifications.
			r.Get("/reports", p.Reports)
			r.Post("/reports", p.ReportGenerate)
			r.Get("/reports/{id}", p.Report)
			r.Get("/notifications", p.Notifications)
			r.Post("/notifications/channels", p.ChannelCreate)
			r.Post("/notifications/channels/{id}/test", p.ChannelTest)
			r.Post("/notifications/channels/{id}/delete", p.ChannelDelete)
			// Audit log.
			r.Get("/audit", p.Audit)
			r.Get("/audit/entries/{seq}", p.AuditEntry)
			r.Get("/audit/checkpoint", p.AuditCheckpoint)
		})
	})
	return r
}
