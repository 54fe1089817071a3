// Package quota is the federation's quota policy as pure functions: how much storage a
// member may hold in its vaults, how much an island may have allocated, and the arithmetic
// behind each answer, written out so people can check it ("requested 500 GB; available to
// you 320 GB = 1.0 × 960 GB pledged ÷ 3").
//
// It reads nothing and writes nothing: callers (internal/vaults) gather the numbers under
// the locks they need and ask Check.
package quota

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Defaults of the federation settings.
const (
	DefaultRatio      = 1.0
	DefaultOvercommit = 1.0
)

// Settings are the federation's policy knobs.
type Settings struct {
	// Ratio: a member's total quota ≤ Ratio × its active pledged capacity ÷ the target
	// island's replication factor.
	Ratio float64
	// Overcommit: an island's allocated quotas ≤ its usable capacity × Overcommit.
	Overcommit float64
}

// Member is what the policy needs to know about a member.
type Member struct {
	Name string
	// PledgedBytes is the capacity of the member's active pledges, on every island.
	PledgedBytes int64
	// GrantedBytes is extra quota granted by federation admins (live grants).
	GrantedBytes int64
	// AllocatedBytes is the sum of the quotas of the member's vaults, without the vault
	// being created or changed.
	AllocatedBytes int64
}

// Island is what the policy needs to know about an island.
type Island struct {
	Name              string
	ReplicationFactor int
	// LayoutCapacityBytes is the total storage capacity of the island's applied layout
	// (0 when unknown).
	LayoutCapacityBytes int64
	// AllocatedBytes is the sum of the quotas of the vaults on the island, without the
	// vault being created or changed.
	AllocatedBytes int64
}

// Decision is the policy's answer for one request on one island, with its arithmetic.
type Decision struct {
	RequestedBytes int64 `json:"requested_bytes"`
	// The member side: limit = ratio × pledged ÷ rf + granted; available = limit − allocated.
	MemberLimitBytes     int64 `json:"member_limit_bytes"`
	MemberAllocatedBytes int64 `json:"member_allocated_bytes"`
	MemberAvailableBytes int64 `json:"member_available_bytes"`
	// The island side: usable = layout ÷ rf; limit = usable × overcommit; available = limit − allocated.
	IslandUsableBytes    int64 `json:"island_usable_bytes"`
	IslandLimitBytes     int64 `json:"island_limit_bytes"`
	IslandAllocatedBytes int64 `json:"island_allocated_bytes"`
	IslandAvailableBytes int64 `json:"island_available_bytes"`
	// FillRatio is the island's allocated ÷ limit after the request (placement prefers the
	// lowest); math.MaxFloat64 for an island without capacity.
	FillRatio float64 `json:"fill_ratio"`
	// Allowed is true when the request fits both limits.
	Allowed bool `json:"allowed"`
	// MemberExplanation and IslandExplanation write the arithmetic out.
	MemberExplanation string `json:"member_explanation"`
	IslandExplanation string `json:"island_explanation"`
	// Refusal says why a request is refused ("" when allowed), naming the numbers.
	Refusal string `json:"refusal,omitempty"`
}

// Normalize fills zero settings with the defaults.
func (s Settings) Normalize() Settings {
	if s.Ratio <= 0 {
		s.Ratio = DefaultRatio
	}
	if s.Overcommit <= 0 {
		s.Overcommit = DefaultOvercommit
	}
	return s
}

// MemberLimit is ratio × pledged ÷ rf + granted, rounded down to a byte.
func MemberLimit(s Settings, m Member, rf int) int64 {
	s = s.Normalize()
	rf = max(rf, 1)
	return floor(s.Ratio*float64(m.PledgedBytes)/float64(rf)) + m.GrantedBytes
}

// IslandUsable is an island's usable capacity: layout capacity ÷ replication factor.
func IslandUsable(i Island) int64 {
	return i.LayoutCapacityBytes / int64(max(i.ReplicationFactor, 1))
}

// IslandLimit is usable × overcommit.
func IslandLimit(s Settings, i Island) int64 {
	return floor(float64(IslandUsable(i)) * s.Normalize().Overcommit)
}

// Check decides whether a vault quota of requested bytes fits the member's and the
// island's limits, and writes the arithmetic out.
func Check(s Settings, m Member, i Island, requested int64) Decision {
	s = s.Normalize()
	rf := max(i.ReplicationFactor, 1)
	d := Decision{RequestedBytes: requested, MemberAllocatedBytes: m.AllocatedBytes, IslandAllocatedBytes: i.AllocatedBytes}
	d.MemberLimitBytes = MemberLimit(s, m, rf)
	d.MemberAvailableBytes = max(d.MemberLimitBytes-m.AllocatedBytes, 0)
	d.IslandUsableBytes = IslandUsable(i)
	d.IslandLimitBytes = IslandLimit(s, i)
	d.IslandAvailableBytes = max(d.IslandLimitBytes-i.AllocatedBytes, 0)
	if d.IslandLimitBytes > 0 {
		d.FillRatio = float64(i.AllocatedBytes+max(requested, 0)) / float64(d.IslandLimitBytes)
	} else {
		d.FillRatio = math.MaxFloat64 // nothing to fill: never preferred (and still valid JSON)
	}

	// "320 GB = 1.0 × 960 GB pledged ÷ 3 + 50 GB granted − 100 GB already allocated"
	var b strings.Builder
	fmt.Fprintf(&b, "%s = %s × %s pledged ÷ %d", Bytes(d.MemberAvailableBytes), Ratio(s.Ratio), Bytes(m.PledgedBytes), rf)
	if m.GrantedBytes > 0 {
		fmt.Fprintf(&b, " + %s granted", Bytes(m.GrantedBytes))
	}
	if m.AllocatedBytes > 0 {
		fmt.Fprintf(&b, " − %s already allocated", Bytes(m.AllocatedBytes))
	}
	if d.MemberLimitBytes-m.AllocatedBytes < 0 {
		b.WriteString(" (over by " + Bytes(m.AllocatedBytes-d.MemberLimitBytes) + ", counted as 0)")
	}
	d.MemberExplanation = b.String()

	b.Reset()
	fmt.Fprintf(&b, "%s = %s usable (%s layout ÷ %d) × %s overcommit", Bytes(d.IslandAvailableBytes),
		Bytes(d.IslandUsableBytes), Bytes(i.LayoutCapacityBytes), rf, Ratio(s.Overcommit))
	if i.AllocatedBytes > 0 {
		fmt.Fprintf(&b, " − %s allocated", Bytes(i.AllocatedBytes))
	}
	d.IslandExplanation = b.String()

	switch {
	case requested <= 0:
		d.Refusal = "the quota must be a positive number of bytes"
	case requested > d.MemberAvailableBytes:
		d.Refusal = fmt.Sprintf("requested %s; available to you %s", Bytes(requested), d.MemberExplanation)
	case requested > d.IslandAvailableBytes:
		d.Refusal = fmt.Sprintf("requested %s; island %q has %s unallocated: %s", Bytes(requested), i.Name,
			Bytes(d.IslandAvailableBytes), d.IslandExplanation)
	default:
		d.Allowed = true
	}
	return d
}

func floor(f float64) int64 {
	if f >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(math.Floor(f + 1e-9))
}

// Ratio formats a setting with at least one decimal: 1.0, 0.75, 1.5.
func Ratio(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// Bytes formats a byte count in SI units as Garage counts capacity, with up to two
// decimals and no trailing zeros: 320 GB, 1.5 TB, 333.33 GB, 512 B.
func Bytes(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	f, u := float64(n), 0
	for f >= 1000 && u < len(units)-1 {
		f /= 1000
		u++
	}
	s := strconv.FormatFloat(math.Floor(f*100+0.5)/100, 'f', -1, 64)
	if neg {
		s = "-" + s
	}
	return s + " " + units[u]
}

// ParseBytes reads a size as people write it: a number of bytes, or a number with an SI unit
// (kB, MB, GB, TB, PB — as Bytes prints them) or a binary one (KiB, MiB, GiB, TiB, PiB); units
// are case-insensitive except that "b" alone means bytes. 1.5TB is 1,500,000,000,000.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	v, err := strconv.ParseFloat(t[:i], 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a size (e.g. 500GB, 1.5TB, 10GiB)", s)
	}
	mult, ok := byteUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB)", s, strings.TrimSpace(t[i:]))
	}
	f := v * mult
	if f > math.MaxInt64 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(math.Round(f)), nil
}

var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
}
