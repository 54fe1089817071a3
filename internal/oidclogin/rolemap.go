package oidclogin

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/chatons/archipelago/internal/identity"
)

// FederationAdmin is the role-map target that makes a person a federation admin.
const FederationAdmin = "federation-admin"

// Rule maps one group (a value of the groups claim) to one grant: federation admin, or a
// role in a member (by slug).
type Rule struct {
	Group           string
	FederationAdmin bool
	Member          string
	Role            identity.Role
}

// RoleMap is the ordered list of rules of ARCHIPELAGO_OIDC_ROLE_MAP.
type RoleMap []Rule

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// ParseRoleMap reads a role map: entries separated by ";" or new lines, each
// GROUP=federation-admin or GROUP=MEMBER-SLUG:admin|viewer. The group is everything before
// the last "=" (so LDAP-style group names such as cn=admins,ou=groups work), trimmed.
// Empty entries and lines starting with # are ignored. A group may appear in several entries
// (one group can grant several things).
func ParseRoleMap(s string) (RoleMap, error) {
	var m RoleMap
	for _, line := range strings.Split(s, "\n") {
		for _, entry := range strings.Split(line, ";") {
			entry = strings.TrimSpace(entry)
			if entry == "" || strings.HasPrefix(entry, "#") {
				continue
			}
			i := strings.LastIndex(entry, "=")
			if i <= 0 {
				return nil, fmt.Errorf("%q: expected GROUP=federation-admin or GROUP=MEMBER:admin|viewer", entry)
			}
			group, target := strings.TrimSpace(entry[:i]), strings.TrimSpace(entry[i+1:])
			if group == "" {
				return nil, fmt.Errorf("%q: the group name is empty", entry)
			}
			r := Rule{Group: group}
			if target == FederationAdmin {
				r.FederationAdmin = true
			} else {
				slug, role, ok := strings.Cut(target, ":")
				r.Member, r.Role = strings.TrimSpace(slug), identity.Role(strings.TrimSpace(role))
				if !ok || !slugRE.MatchString(r.Member) {
					return nil, fmt.Errorf("%q: %q is not federation-admin nor MEMBER:ROLE with a member's slug", entry, target)
				}
				if !r.Role.Valid() {
					return nil, fmt.Errorf("%q: the role must be admin or viewer", entry)
				}
			}
			m = append(m, r)
		}
	}
	return m, nil
}

// Apply returns what a person's groups grant: federation admin, and for each member the
// strongest role any of their groups gives there.
func (m RoleMap) Apply(groups []string) (federationAdmin bool, roles map[string]identity.Role) {
	roles = map[string]identity.Role{}
	in := make(map[string]bool, len(groups))
	for _, g := range groups {
		in[g] = true
	}
	for _, r := range m {
		if !in[r.Group] {
			continue
		}
		if r.FederationAdmin {
			federationAdmin = true
			continue
		}
		if cur, ok := roles[r.Member]; !ok || (r.Role == identity.RoleAdmin && cur != identity.RoleAdmin) {
			roles[r.Member] = r.Role
		}
	}
	return federationAdmin, roles
}

// String writes the map back in the form ParseRoleMap reads.
func (m RoleMap) String() string {
	parts := make([]string, len(m))
	for i, r := range m {
		if r.FederationAdmin {
			parts[i] = r.Group + "=" + FederationAdmin
		} else {
			parts[i] = r.Group + "=" + r.Member + ":" + string(r.Role)
		}
	}
	return strings.Join(parts, ";")
}
