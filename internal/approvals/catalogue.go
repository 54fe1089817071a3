package approvals

// Action names a protected action.
type Action string

// The protected actions. Always protected (when they affect anything, see Kind.When):
const (
	// ActionVaultDelete deletes a vault that holds data, or another member's vault.
	ActionVaultDelete Action = "vault.delete"
	// ActionMemberDelete deletes a member organisation that has vaults or people.
	ActionMemberDelete Action = "member.delete"
	// ActionIslandDelete deletes an island that holds vaults.
	ActionIslandDelete Action = "island.delete"
	// ActionOperatorRemove removes an operator from an island that holds vaults.
	ActionOperatorRemove Action = "island.operator_remove"
	// ActionRepositoryDelete removes a repository and its restore tests.
	ActionRepositoryDelete Action = "repository.delete"
	// ActionRepositoryPasswordRemove removes the verifier's access to a repository: its
	// restore tests can no longer run.
	ActionRepositoryPasswordRemove Action = "repository.password_remove"
	// ActionProtectionSettings shortens the protected-copy grace period or disables copies.
	ActionProtectionSettings Action = "protection.settings_update"
	// ActionApprovalSettings changes the approval rules themselves.
	ActionApprovalSettings Action = "approvals.settings_update"
	// ActionPledgeWithdraw withdraws a pledge that drops an island below its replication
	// factor (protected when the federation says so).
	ActionPledgeWithdraw Action = "pledge.withdraw"
	// ActionQuotaCut sets a vault's quota below its current use (protected when the
	// federation says so).
	ActionQuotaCut Action = "vault.quota_cut"
	// ActionIslandToken replaces an island's admin token (protected when the federation
	// says so).
	ActionIslandToken Action = "island.token_replace"
)

// Kind describes a protected action for people (API, portal, docs/governance.md).
type Kind struct {
	Action Action `json:"action"`
	Title  string `json:"title"`
	// When says when the action is protected.
	When string `json:"when"`
	// DestroysData: executed only after the cooling-off, during which the request can be
	// cancelled and nothing is destroyed.
	DestroysData bool `json:"destroys_data"`
	// Setting names the approval setting that turns protection on ("" = always).
	Setting string `json:"setting,omitempty"`
	// Why this action needs others.
	Why string `json:"why"`
}

// Catalogue lists every protected action, in display order.
var Catalogue = []Kind{
	{Action: ActionVaultDelete, Title: "Delete a vault", DestroysData: true,
		When: "the vault holds data, or the requester is not an admin of the vault's member",
		Why:  "deleting a vault destroys a member's backups; a stolen admin credential must not be enough"},
	{Action: ActionMemberDelete, Title: "Delete a member organisation",
		When: "the member has vaults or people",
		Why:  "removes an organisation and its people's access from the federation"},
	{Action: ActionIslandDelete, Title: "Delete an island",
		When: "the island holds vaults",
		Why:  "the vaults on it would lose their home"},
	{Action: ActionOperatorRemove, Title: "Remove an island's operator",
		When: "the island holds vaults",
		Why:  "changes who answers for the data on the island and where vaults may be placed"},
	{Action: ActionRepositoryDelete, Title: "Remove a repository's restore tests",
		When: "the requester is not an admin of the repository's member",
		Why:  "restore tests are the evidence that backups can be restored"},
	{Action: ActionRepositoryPasswordRemove, Title: "Remove the verifier's access to a repository",
		When: "the requester is not an admin of the repository's member",
		Why:  "without it the restore tests cannot run"},
	{Action: ActionProtectionSettings, Title: "Shorten the protected-copy grace period or disable copies",
		When: "the deletion grace period gets shorter, or copies by default are turned off",
		Why:  "the protected copy is what survives a stolen member key"},
	{Action: ActionApprovalSettings, Title: "Change the approval rules",
		When: "always",
		Why:  "otherwise one person could lower M and then act alone; the change is approved under the old rules"},
	{Action: ActionPledgeWithdraw, Title: "Withdraw a pledge below the island's replication factor",
		When: "the federation protects pledge withdrawals and the island's operating pledges (not withdrawn, not down) would span fewer distinct zones than its replication factor", Setting: "protect_pledge_withdrawal",
		Why: "data on the island would no longer be stored as often as promised"},
	{Action: ActionQuotaCut, Title: "Cut a vault's quota below its current use",
		When: "the federation protects quota cuts and the new quota is below the vault's last measured usage", Setting: "protect_quota_cuts",
		Why: "the member's backups stop fitting: new backups fail until data is deleted"},
	{Action: ActionIslandToken, Title: "Replace an island's admin token",
		When: "the federation protects island token replacement", Setting: "protect_island_token",
		Why: "whoever holds the admin token controls every vault on the island; a wrong token cuts the federation off it"},
}

// KindOf returns the catalogue entry of a.
func KindOf(a Action) (Kind, bool) {
	for _, k := range Catalogue {
		if k.Action == a {
			return k, true
		}
	}
	return Kind{}, false
}
