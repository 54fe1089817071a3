package quota

import "testing"

// TestParseBytesReadsWhatBytesPrints: sizes as people type them, SI and binary, and what
// Bytes prints reads back to the same number.
func TestParseBytesReadsWhatBytesPrints(t *testing.T) {
	for in, want := range map[string]int64{
		"512": 512, "512 B": 512, "10GB": 10_000_000_000, "1.5 TB": 1_500_000_000_000, "10gib": 10 << 30,
		"2 MiB": 2 << 20, "0": 0, "333.33 GB": 333_330_000_000, " 7kB ": 7000,
	} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, n := range []int64{1, 999, 320_000_000_000, 1_500_000_000_000} {
		if got, err := ParseBytes(Bytes(n)); err != nil || got != n {
			t.Errorf("ParseBytes(Bytes(%d) = %q) = %d, %v", n, Bytes(n), got, err)
		}
	}
	for _, bad := range []string{"", "lots", "-1GB", "10 XB", "1e3", "1..2GB", "99999999999999 PB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}
