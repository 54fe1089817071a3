// Package approvals owns multi-party approval (docs/governance.md): the catalogue of
// protected actions, the federation's approval rules, approval requests and their votes,
// the cooling-off before a data-destroying action, the periodic work that expires and
// executes requests, and the liveness check that enough approvers can still be reached.
//
// A protected action asked through the API or the portal becomes a Request instead of
// acting. Admins of member organisations other than the requester's and the affected
// member's vote, one vote per organisation; the requester never counts. Once M
// organisations approved (the federation's setting, default 2), the request waits its
// cooling-off (data-destroying actions: at least 72 h, during which Hold has made the
// vault read-only and the request can still be cancelled) and is then executed, within
// the execution window, with the requester's authority by the Executor registered for
// its action: the owning domain's own function, never SQL of this package.
//
// It owns the tables approval_settings, approval_requests, approval_votes,
// approver_pings and approval_liveness. Every state change is an audit-log entry in its
// transaction; approvers are told through internal/notify events. It must not decide
// who may ask for an action (callers ask internal/authz first); it decides who may vote.
package approvals
