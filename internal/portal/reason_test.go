package portal

import (
	"strings"
	"testing"
)

func TestReasonTitles(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in, title string
		detail    bool
	}{
		{"the canary file was not found", "the canary file was not found", false},
		{"integrity: pack 5f3a…e1 is damaged: restic check found 2 errors\n/tmp/scratch/x/y", "integrity: pack 5f3a…e1 is damaged", true},
		{"The snapshot is 3 days old. Expected at most 26 h.", "The snapshot is 3 days old", true},
		{"sample restore: the verifier could not do it (this says nothing about the backup): dial tcp: refused", "sample restore: the verifier could not do it", true},
		{strings.Repeat("x", 300), strings.Repeat("x", reasonTitleMax) + "…", true},
	} {
		v := reasonOf("failed", c.in)
		if v.Title != c.title || (v.Detail != "") != c.detail {
			t.Errorf("reasonOf(%q) = %+v", c.in, v)
		}
	}
}
