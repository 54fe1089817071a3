package oidclogin_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/oidclogin"
)

func TestParseRoleMap(t *testing.T) {
	t.Parallel()
	m, err := oidclogin.ParseRoleMap(" fed = federation-admin ;libre-admins=libre-nuage:admin\n# a comment\n\n" +
		"cn=team,ou=groups,dc=example,dc=org=libre-nuage:viewer;libre-admins=autre-chaton:viewer")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != "fed=federation-admin;libre-admins=libre-nuage:admin;cn=team,ou=groups,dc=example,dc=org=libre-nuage:viewer;libre-admins=autre-chaton:viewer" {
		t.Errorf("parsed as %s", got)
	}
	for _, bad := range []string{"no-equals", "=federation-admin", "g=libre-nuage", "g=libre-nuage:owner", "g=Not_A_Slug:admin", "g=admin"} {
		if _, err := oidclogin.ParseRoleMap(bad); err == nil || !strings.Contains(err.Error(), strings.SplitN(bad, ";", 2)[0]) {
			t.Errorf("ParseRoleMap(%q) = %v, want an error naming the entry", bad, err)
		}
	}
}

func TestRoleMapApply(t *testing.T) {
	t.Parallel()
	m, err := oidclogin.ParseRoleMap("fed=federation-admin;team=libre-nuage:viewer;admins=libre-nuage:admin;admins=autre-chaton:viewer")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		groups []string
		fed    bool
		roles  map[string]identity.Role
	}{
		{nil, false, map[string]identity.Role{}},
		{[]string{"unrelated"}, false, map[string]identity.Role{}},
		{[]string{"team"}, false, map[string]identity.Role{"libre-nuage": identity.RoleViewer}},
		// The strongest role wins, whatever the order of groups or rules.
		{[]string{"admins", "team"}, false, map[string]identity.Role{"libre-nuage": identity.RoleAdmin, "autre-chaton": identity.RoleViewer}},
		{[]string{"team", "admins", "fed"}, true, map[string]identity.Role{"libre-nuage": identity.RoleAdmin, "autre-chaton": identity.RoleViewer}},
		// Group names are compared exactly.
		{[]string{"Team", "fed "}, false, map[string]identity.Role{}},
	}
	for _, c := range cases {
		fed, roles := m.Apply(c.groups)
		if fed != c.fed || !maps.Equal(roles, c.roles) {
			t.Errorf("Apply(%v) = %v %v, want %v %v", c.groups, fed, roles, c.fed, c.roles)
		}
	}
}
