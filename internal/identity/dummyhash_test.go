package identity

import (
	"fmt"
	"strings"
	"testing"
)

// TestDummyHashMatchesTheCurrentParameters: the constant verified against for unknown
// accounts must cost what a real account's hash costs (same argon2id parameters), or a login
// would reveal whether an email exists by its timing.
func TestDummyHashMatchesTheCurrentParameters(t *testing.T) {
	t.Parallel()
	want := fmt.Sprintf("$m=%d,t=%d,p=%d$", argonMemory, argonTime, argonThreads)
	if !strings.Contains(dummyHash, want) {
		t.Fatalf("dummyHash %q does not use the parameters %s", dummyHash, want)
	}
	ok, err := VerifyPassword(dummyHash, "archipelago-timing-equaliser")
	if err != nil || !ok {
		t.Fatalf("dummyHash does not verify: %v %v", ok, err)
	}
}

// TestVerifyPasswordRefusesParametersAboveTheServersLimits: a stored hash asking for more
// memory than the server hashes with would make one login hold it.
func TestVerifyPasswordRefusesParametersAboveTheServersLimits(t *testing.T) {
	t.Parallel()
	big := strings.Replace(dummyHash, "m=65536", "m=4194304", 1)
	if ok, err := VerifyPassword(big, "archipelago-timing-equaliser"); err == nil || ok {
		t.Fatalf("accepted m=4 GiB: %v %v", ok, err)
	}
}
