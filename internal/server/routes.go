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
			// Vaults, keys and quotas.
			r.Get("/v1/vaults", a.VaultList)
			r.Post("/v1/vaults", a.VaultCreate)
			r.Get("/v1/vaults/{id}", a.VaultGet)
			r.Patch("/v1/vaults/{id}", a.VaultUpdate)
			r.Delete("/v1/vaults/{id}", a.VaultDelete)
			r.Post("/v1/vaults/{id}/restore", a.VaultRestore)
			r.Post("/v1/vaults/{id}/reconcile", a.VaultReconcile)
			r.Get("/v1/vaults/{id}/usage", a.VaultUsage)
			r.Get("/v1/vaults/{id}/keys", a.KeyList)
			r.Post("/v1/vaults/{id}/keys", a.KeyCreate)
			r.Get("/v1/vaults/{id}/keys/{key_id}", a.KeyGet)
			r.Delete("/v1/vaults/{id}/keys/{key_id}", a.KeyRevoke)
			r.Post("/v1/vaults/{id}/keys/{key_id}/rotate", a.KeyRotate)
			r.Get("/v1/quota", a.QuotaExplain)
			r.Get("/v1/quota/settings", a.QuotaSettings)
			r.Patch("/v1/quota/settings", a.QuotaSettingsUpdate)
			r.Get("/v1/quota/grants", a.GrantList)
			r.Post("/v1/quota/grants", a.GrantCreate)
			r.Delete("/v1/quota/grants/{id}", a.GrantRevoke)
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
			// Restore verification.
			r.Get("/v1/repositories", a.RepositoryList)
			r.Post("/v1/repositories", a.RepositoryCreate)
			r.Get("/v1/repositories/{id}", a.RepositoryGet)
			r.Patch("/v1/repositories/{id}", a.RepositoryUpdate)
			r.Delete("/v1/repositories/{id}", a.RepositoryDelete)
			r.Put("/v1/repositories/{id}/password", a.RepositoryPasswordSet)
			r.Delete("/v1/repositories/{id}/password", a.RepositoryPasswordRemove)
			r.Post("/v1/repositories/{id}/tests", a.RepositoryTestNow)
			r.Get("/v1/restore-tests", a.RestoreTestList)
			r.Get("/v1/restore-tests/{id}", a.RestoreTestGet)
			r.Get("/v1/restore-tests/{id}/log", a.RestoreTestLog)
			r.Get("/v1/restore-tests/{id}/progress", a.RestoreTestProgress)
			r.Get("/v1/restore-tests/{id}/events", a.RestoreTestEvents)
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
			// Vaults, keys and quotas.
			r.Get("/vaults", p.Vaults)
			r.Post("/vaults", p.VaultCreate)
			r.Get("/vaults/{id}", p.Vault)
			r.Post("/vaults/{id}/keys", p.VaultKeyCreate)
			r.Post("/vaults/{id}/keys/{key_id}/rotate", p.VaultKeyRotate)
			r.Post("/vaults/{id}/keys/{key_id}/revoke", p.VaultKeyRevoke)
			r.Post("/vaults/{id}/quota", p.VaultQuota)
			r.Post("/vaults/{id}/delete", p.VaultDelete)
			r.Post("/vaults/{id}/restore", p.VaultRestore)
			r.Get("/quota", p.Quota)
			r.Get("/islands", p.Islands)
			r.Get("/islands/{id}", p.Island)
			r.Get("/members", p.Members)
			r.Get("/pledges", p.Pledges)
			r.Post("/pledges", p.PledgeCreate)
			r.Post("/pledges/{id}/withdraw", p.PledgeWithdraw)
			// Restore verification.
			r.Get("/restore-tests", p.RestoreTests)
			r.Post("/restore-tests/repositories", p.RepositoryRegister)
			r.Get("/restore-tests/repositories/{id}", p.Repository)
			r.Post("/restore-tests/repositories/{id}/run", p.RepositoryRunNow)
			r.Post("/restore-tests/repositories/{id}/policy", p.RepositoryPolicy)
			r.Post("/restore-tests/repositories/{id}/password", p.RepositoryPassword)
			r.Post("/restore-tests/repositories/{id}/password/remove", p.RepositoryPasswordRemove)
			r.Post("/restore-tests/repositories/{id}/delete", p.RepositoryDelete)
			r.Get("/restore-tests/runs/{id}", p.RestoreRun)
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
