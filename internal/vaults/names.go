package vaults

import (
	"net/netip"
	"strings"
)

// BucketNameProblem returns why name is not a valid S3 bucket name ("" when it is). The
// rules are S3's (which Garage applies to global aliases): 3 to 63 characters; lower-case
// letters, digits, hyphens and dots; starting and ending with a letter or digit; no two
// adjacent dots; not shaped like an IP address; none of AWS's reserved prefixes and
// suffixes.
func BucketNameProblem(name string) string {
	if len(name) < 3 || len(name) > 63 {
		return "must be 3 to 63 characters long (an S3 bucket name)"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return "may contain only lower-case letters, digits, hyphens and dots (an S3 bucket name)"
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return "must start and end with a lower-case letter or a digit"
	}
	if strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return "must not contain two adjacent dots or a dot next to a hyphen"
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "must not be formatted as an IP address"
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return "must not start with " + p
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return "must not end with " + s
		}
	}
	return ""
}

func isAlnum(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' }
