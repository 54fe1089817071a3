package protection_test

import (
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatons/archipelago/internal/protection"
)

// TestCopyBehindMetrics: the series ArchipelagoVaultCopyBehind alerts on count a vault
// whose copy is more than two copy intervals old, or in error — per member
// (archipelago_member_vaults_copy_behind) and per vault with per-object series
// (archipelago_vault_copy_behind) — and not a vault whose copy is up to date.
func TestCopyBehindMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v, _ := b.vault(t)
	if err := b.prot.CopyAll(b.ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := b.prot.State(b.ctx, v.ID); err != nil || st.CopyStatus != protection.CopyActive || st.CopiedThrough == nil {
		t.Fatalf("copy after CopyAll: %+v, %v", st, err)
	}
	var slug string
	if err := b.pool.QueryRow(b.ctx, `SELECT slug FROM members WHERE id = $1`, b.memberA).Scan(&slug); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(protection.NewCollector(b.pool, nil, true))
	vaultID := strconv.FormatInt(v.ID, 10)
	// behind returns the member's and the vault's copy-behind values (-1 when absent).
	behind := func() (member, vault float64) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		member, vault = -1, -1
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				switch {
				case mf.GetName() == "archipelago_member_vaults_copy_behind" && labels["member"] == slug:
					member = m.GetGauge().GetValue()
				case mf.GetName() == "archipelago_vault_copy_behind" && labels["vault_id"] == vaultID:
					vault = m.GetGauge().GetValue()
				}
			}
		}
		return member, vault
	}
	if m, v := behind(); m != 0 || v != 0 {
		t.Fatalf("an up-to-date copy: member_vaults_copy_behind %v, vault_copy_behind %v, want 0 and 0", m, v)
	}
	// Three copy intervals old (hourly copies): behind.
	if _, err := b.pool.Exec(b.ctx, `UPDATE vault_protection SET copied_through = now() - interval '3 hours' WHERE vault_id = $1`, v.ID); err != nil {
		t.Fatal(err)
	}
	if m, v := behind(); m != 1 || v != 1 {
		t.Fatalf("a 3 h old copy on an hourly schedule: member_vaults_copy_behind %v, vault_copy_behind %v, want 1 and 1", m, v)
	}
	// Up to date but in error: behind.
	if _, err := b.pool.Exec(b.ctx, `UPDATE vault_protection SET copied_through = now(), copy_status = 'error' WHERE vault_id = $1`, v.ID); err != nil {
		t.Fatal(err)
	}
	if m, v := behind(); m != 1 || v != 1 {
		t.Fatalf("a copy in error: member_vaults_copy_behind %v, vault_copy_behind %v, want 1 and 1", m, v)
	}
}
