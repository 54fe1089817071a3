package reports

// MorningSQL exposes the dashboard lists' statements to the tests (EXPLAIN).
func MorningSQL(f MorningFilter) (repositories string, repoArgs []any, vaults string, vaultArgs []any) {
	repositories, repoArgs, _ = morningRepositoriesSQL(f)
	vaults, vaultArgs, _ = morningVaultsSQL(f)
	return repositories, repoArgs, vaults, vaultArgs
}
