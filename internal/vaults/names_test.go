package vaults

import "testing"

func TestBucketNameProblem(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"backups": true, "libre-nuage-2026": true, "a.b.c": true, "abc": true,
		"ab": false, "Backups": false, "back_ups": false, "-backups": false, "backups-": false, "a..b": false,
		"a.-b": false, "192.168.1.1": false, "xn--bucket": false, "bucket-s3alias": false, "sthree-x": false,
		"0123456789012345678901234567890123456789012345678901234567890123": false, "bück": false, "a b": false,
	} {
		if got := BucketNameProblem(name) == ""; got != ok {
			t.Errorf("BucketNameProblem(%q) = %q", name, BucketNameProblem(name))
		}
	}
}
