package protection_test

import (
	"testing"

	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/protection"
)

// TestCopyInErrorIsBehind: a copy that cannot be provisioned (the copy island's admin API
// answers 503) is in error, and the vault is shown behind at once, without waiting two
// copy intervals.
func TestCopyInErrorIsBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v, _ := b.vault(t)
	for _, isl := range []*garagesim.Sim{b.south.Sim, b.east.Sim} { // the copy goes to the one without the vault
		isl.InjectFault(garagesim.Fault{Operation: "CreateBucket", Status: 503, Count: 1000})
	}
	status, err := b.prot.EnsureCopy(b.ctx, v.ID)
	if err == nil || status != protection.CopyError {
		t.Fatalf("EnsureCopy with the copy island down = %q, %v", status, err)
	}
	st, err := b.prot.State(b.ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.CopyStatus != protection.CopyError || !st.Behind {
		t.Fatalf("a copy in error is not shown behind: status %q, behind %v (%s)", st.CopyStatus, st.Behind, st.CopyDetail)
	}
}
