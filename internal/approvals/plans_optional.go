package approvals

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/vaults"
)

// Plans of the actions protected only when the federation says so (the protect_*
// approval settings).

// operating reports whether a pledge still stores data for its island: not withdrawn, not
// down.
func operating(p islands.Pledge) bool {
	return p.WithdrawnAt == nil && p.Status != islands.PledgeDown
}

// PlanPledgeWithdraw: withdrawing a pledge is protected when the federation protects
// pledge withdrawals and, without it, the island's operating pledges (not withdrawn, not
// down) would span fewer distinct zones than its replication factor.
func (s *Service) PlanPledgeWithdraw(ctx context.Context, p *identity.Principal, pl islands.Pledge) (Ask, bool, error) {
	if pl.WithdrawnAt != nil {
		return Ask{}, false, nil
	}
	st, err := s.SettingsGet(ctx)
	if err != nil || !st.ProtectPledgeWithdrawal {
		return Ask{}, false, err
	}
	isl, err := islands.IslandGetByID(ctx, s.pool, pl.IslandID)
	if err != nil {
		return Ask{}, false, fmt.Errorf("island of pledge %d: %w", pl.ID, err)
	}
	zones, left := map[string]bool{}, map[string]bool{}
	for after := int64(0); ; {
		page, err := islands.PledgeList(ctx, s.pool, islands.PledgeFilter{IslandID: pl.IslandID, Live: true, After: after, Limit: 500})
		if err != nil {
			return Ask{}, false, err
		}
		for _, o := range page {
			if !operating(o) {
				continue
			}
			zones[o.Zone] = true
			if o.ID != pl.ID {
				left[o.Zone] = true
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].ID
	}
	rf := max(isl.ReplicationFactor, 1)
	if len(left) >= rf {
		return Ask{}, false, nil
	}
	effect := fmt.Sprintf("Withdraw pledge #%d of member %s (node %s, zone %q, %s) from island %s (id %d). The island's operating pledges "+
		"would span %d distinct zones instead of %d, below its replication factor %d: its data would no longer be stored as often as promised.",
		pl.ID, pl.MemberSlug, shortNode(pl.NodeID), pl.Zone, bytesHuman(pl.CapacityBytes), isl.Name, isl.ID, len(left), len(zones), rf)
	return Ask{Action: ActionPledgeWithdraw, TargetType: "pledge", TargetID: strconv.FormatInt(pl.ID, 10), AffectedMemberID: ptr(pl.MemberID),
		Params: map[string]any{"pledge_id": pl.ID, "island_id": pl.IslandID}, Effect: effect}, true, nil
}

func shortNode(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// QuotaChange is a vault update held by a quota-cut request, in the API's units.
type QuotaChange struct {
	QuotaBytes      *int64 `json:"quota_bytes,omitempty"`
	MaxObjects      *int64 `json:"max_objects,omitempty"`
	ClearMaxObjects bool   `json:"clear_max_objects,omitempty"`
}

// Input converts the change for internal/vaults.
func (c QuotaChange) Input() vaults.UpdateInput {
	return vaults.UpdateInput{QuotaBytes: c.QuotaBytes, MaxObjects: c.MaxObjects, ClearMaxObjects: c.ClearMaxObjects}
}

// PlanQuotaCut: changing a vault's quota is protected when the federation protects quota
// cuts and the new quota is below the vault's last measured usage. The whole update (with
// its object limit, if any) waits for the approvals.
func (s *Service) PlanQuotaCut(ctx context.Context, p *identity.Principal, v vaults.Vault, c QuotaChange) (Ask, bool, error) {
	if c.QuotaBytes == nil || *c.QuotaBytes <= 0 || v.UsageBytes == nil || *c.QuotaBytes >= *v.UsageBytes {
		return Ask{}, false, nil
	}
	st, err := s.SettingsGet(ctx)
	if err != nil || !st.ProtectQuotaCuts {
		return Ask{}, false, err
	}
	effect := fmt.Sprintf("Cut the quota of vault %q (id %d) of member %s from %d bytes (%s) to %d bytes (%s), below its current use of %d bytes (%s): "+
		"new backups to it fail until %d bytes are deleted.", v.Name, v.ID, v.MemberSlug, v.QuotaBytes, bytesHuman(v.QuotaBytes),
		*c.QuotaBytes, bytesHuman(*c.QuotaBytes), *v.UsageBytes, bytesHuman(*v.UsageBytes), *v.UsageBytes-*c.QuotaBytes)
	return Ask{Action: ActionQuotaCut, TargetType: "vault", TargetID: strconv.FormatInt(v.ID, 10), AffectedMemberID: ptr(v.MemberID),
		Params: map[string]any{"vault_id": v.ID, "name": v.Name, "change": c}, Effect: effect}, true, nil
}

// IslandChange is an island update held by a token-replacement request: the new admin
// token is sealed (islands.Service.SealPendingToken), never stored in clear.
type IslandChange struct {
	Name              *string `json:"name,omitempty"`
	AdminEndpoint     *string `json:"admin_endpoint,omitempty"`
	AdminTokenSealed  string  `json:"admin_token_sealed"`
	S3Endpoint        *string `json:"s3_endpoint,omitempty"`
	S3Region          *string `json:"s3_region,omitempty"`
	ReplicationFactor *int    `json:"replication_factor,omitempty"`
}

// PlanIslandToken: replacing an island's admin token is protected when the federation
// protects island tokens. The whole update waits for the approvals (the new token is
// checked against the island when it is executed); in the request the token is sealed.
func (s *Service) PlanIslandToken(ctx context.Context, p *identity.Principal, i islands.Island, in islands.IslandInput) (Ask, bool, error) {
	if in.AdminToken == nil || strings.TrimSpace(*in.AdminToken) == "" {
		return Ask{}, false, nil
	}
	st, err := s.SettingsGet(ctx)
	if err != nil || !st.ProtectIslandToken {
		return Ask{}, false, err
	}
	c := IslandChange{Name: in.Name, AdminEndpoint: in.AdminEndpoint, AdminTokenSealed: s.look.Islands.SealPendingToken(i.ID, *in.AdminToken),
		S3Endpoint: in.S3Endpoint, S3Region: in.S3Region, ReplicationFactor: in.ReplicationFactor}
	effect := fmt.Sprintf("Replace the admin token of island %s (id %d): whoever holds the new token controls every vault on it. "+
		"The new token is checked against the island's admin API when the request is executed", i.Name, i.ID)
	if other := islandChangeText(c); other != "" {
		effect += "; the same change also sets " + other
	}
	effect += "."
	return Ask{Action: ActionIslandToken, TargetType: "island", TargetID: strconv.FormatInt(i.ID, 10),
		Params: map[string]any{"island_id": i.ID, "name": i.Name, "change": c}, Effect: effect}, true, nil
}

func islandChangeText(c IslandChange) string {
	var parts []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"name", c.Name}, {"admin_endpoint", c.AdminEndpoint}, {"s3_endpoint", c.S3Endpoint}, {"s3_region", c.S3Region}} {
		if f.v != nil {
			parts = append(parts, fmt.Sprintf("%s=%q", f.name, *f.v))
		}
	}
	if c.ReplicationFactor != nil {
		parts = append(parts, fmt.Sprintf("replication_factor=%d", *c.ReplicationFactor))
	}
	return joinAnd(parts)
}
