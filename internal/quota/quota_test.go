package quota

import (
	"math"
	"testing"
)

const gb = 1_000_000_000

func TestCheck(t *testing.T) {
	t.Parallel()
	island := Island{Name: "north", ReplicationFactor: 3, LayoutCapacityBytes: 3000 * gb}
	tests := []struct {
		name      string
		s         Settings
		m         Member
		i         Island
		requested int64
		allowed   bool
		refusal   string
		memberAv  int64
		islandAv  int64
	}{
		{name: "the issue's example", m: Member{PledgedBytes: 960 * gb}, i: island, requested: 500 * gb,
			refusal: "requested 500 GB; available to you 320 GB = 1.0 × 960 GB pledged ÷ 3", memberAv: 320 * gb, islandAv: 1000 * gb},
		{name: "fits exactly", m: Member{PledgedBytes: 960 * gb}, i: island, requested: 320 * gb, allowed: true,
			memberAv: 320 * gb, islandAv: 1000 * gb},
		{name: "zero settings mean the defaults", s: Settings{}, m: Member{PledgedBytes: 300 * gb}, i: island, requested: 100 * gb,
			allowed: true, memberAv: 100 * gb, islandAv: 1000 * gb},
		{name: "ratio 1.5", s: Settings{Ratio: 1.5}, m: Member{PledgedBytes: 300 * gb}, i: island, requested: 150 * gb,
			allowed: true, memberAv: 150 * gb, islandAv: 1000 * gb},
		{name: "existing vaults count", m: Member{PledgedBytes: 960 * gb, AllocatedBytes: 100 * gb}, i: island, requested: 221 * gb,
			refusal:  "requested 221 GB; available to you 220 GB = 1.0 × 960 GB pledged ÷ 3 − 100 GB already allocated",
			memberAv: 220 * gb, islandAv: 1000 * gb},
		{name: "a newcomer with a grant", m: Member{GrantedBytes: 50 * gb}, i: island, requested: 50 * gb, allowed: true,
			memberAv: 50 * gb, islandAv: 1000 * gb},
		{name: "a newcomer without pledge nor grant", m: Member{}, i: island, requested: 1,
			refusal: "requested 1 B; available to you 0 B = 1.0 × 0 B pledged ÷ 3", islandAv: 1000 * gb},
		{name: "grant and allocation explained", m: Member{PledgedBytes: 300 * gb, GrantedBytes: 20 * gb, AllocatedBytes: 10 * gb},
			i: island, requested: 200 * gb,
			refusal:  "requested 200 GB; available to you 110 GB = 1.0 × 300 GB pledged ÷ 3 + 20 GB granted − 10 GB already allocated",
			memberAv: 110 * gb, islandAv: 1000 * gb},
		{name: "over-allocated member counts as zero", m: Member{PledgedBytes: 300 * gb, AllocatedBytes: 150 * gb}, i: island, requested: 1,
			refusal:  "requested 1 B; available to you 0 B = 1.0 × 300 GB pledged ÷ 3 − 150 GB already allocated (over by 50 GB, counted as 0)",
			islandAv: 1000 * gb},
		{name: "island full", m: Member{PledgedBytes: 9000 * gb}, i: Island{Name: "north", ReplicationFactor: 3, LayoutCapacityBytes: 3000 * gb, AllocatedBytes: 960 * gb},
			requested: 50 * gb, memberAv: 3000 * gb, islandAv: 40 * gb,
			refusal: `requested 50 GB; island "north" has 40 GB unallocated: 40 GB = 1 TB usable (3 TB layout ÷ 3) × 1.0 overcommit − 960 GB allocated`},
		{name: "overcommit 1.2 makes room", s: Settings{Overcommit: 1.2}, m: Member{PledgedBytes: 9000 * gb},
			i:         Island{Name: "north", ReplicationFactor: 3, LayoutCapacityBytes: 3000 * gb, AllocatedBytes: 960 * gb},
			requested: 50 * gb, allowed: true, memberAv: 3000 * gb, islandAv: 240 * gb},
		{name: "island with unknown layout", m: Member{PledgedBytes: 960 * gb}, i: Island{Name: "new", ReplicationFactor: 3},
			requested: 1 * gb, memberAv: 320 * gb,
			refusal: `requested 1 GB; island "new" has 0 B unallocated: 0 B = 0 B usable (0 B layout ÷ 3) × 1.0 overcommit`},
		{name: "rf 1 island", m: Member{PledgedBytes: 960 * gb}, i: Island{Name: "solo", ReplicationFactor: 1, LayoutCapacityBytes: 100 * gb},
			requested: 100 * gb, allowed: true, memberAv: 960 * gb, islandAv: 100 * gb},
		{name: "zero request", m: Member{PledgedBytes: 960 * gb}, i: island, requested: 0,
			refusal: "the quota must be a positive number of bytes", memberAv: 320 * gb, islandAv: 1000 * gb},
		{name: "odd numbers round down to the byte", m: Member{PledgedBytes: 1000}, i: island, requested: 334,
			refusal: "requested 334 B; available to you 333 B = 1.0 × 1 kB pledged ÷ 3", memberAv: 333, islandAv: 1000 * gb},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := Check(tt.s, tt.m, tt.i, tt.requested)
			if d.Allowed != tt.allowed || d.Refusal != tt.refusal {
				t.Errorf("Check = allowed %v, refusal %q\nwant allowed %v, refusal %q", d.Allowed, d.Refusal, tt.allowed, tt.refusal)
			}
			if d.MemberAvailableBytes != tt.memberAv || d.IslandAvailableBytes != tt.islandAv {
				t.Errorf("available: member %d island %d, want %d and %d", d.MemberAvailableBytes, d.IslandAvailableBytes, tt.memberAv, tt.islandAv)
			}
		})
	}
}

func TestFillRatio(t *testing.T) {
	t.Parallel()
	d := Check(Settings{}, Member{PledgedBytes: 3000 * gb}, Island{ReplicationFactor: 3, LayoutCapacityBytes: 300 * gb, AllocatedBytes: 40 * gb}, 10*gb)
	if d.FillRatio != 0.5 {
		t.Errorf("fill = %v, want 0.5", d.FillRatio)
	}
	d = Check(Settings{}, Member{}, Island{ReplicationFactor: 3}, 1)
	if d.FillRatio != math.MaxFloat64 {
		t.Errorf("fill of an island without capacity = %v, want MaxFloat64", d.FillRatio)
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1 kB", 1500: "1.5 kB", 320 * gb: "320 GB",
		333_333_333_333: "333.33 GB", 1_500_000_000_000: "1.5 TB", -5 * gb: "-5 GB", 999_999: "1000 kB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
	if Ratio(1) != "1.0" || Ratio(0.75) != "0.75" {
		t.Errorf("Ratio: %q %q", Ratio(1), Ratio(0.75))
	}
}
