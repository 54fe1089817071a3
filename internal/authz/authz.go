// Package authz is the single decision point for "may this principal do this action on
// this object". Handlers (API and portal) ask it; nothing else decides.
//
// Objects are tenant-scoped: an object of a member the principal does not belong to is
// Hidden (the API answers 404, as if it did not exist), so ids reveal nothing. A principal
// who can see an object but not change it is Denied (403).
package authz

import (
	"errors"
	"fmt"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/identity"
)

// Action names something a principal wants to do.
type Action string

// Decisions other than allow.
var (
	ErrUnauthenticated = errors.New("authentication required")
	ErrHidden          = errors.New("not found")                 // answer 404
	ErrDenied          = errors.New("not allowed for your role") // answer 403
)

// level is what an action requires.
type level int

const (
	anyone          level = iota // any authenticated principal (federation transparency)
	memberViewer                 // a role (viewer or admin) in the object's member
	memberAdmin                  // the admin role in the object's member
	federationAdmin              // federation admins only
)

// scope says whether an action concerns a member's private objects or federation ones.
type rule struct {
	need      level
	federated bool // the object is federation-level: visible to everyone, so a refusal is 403, not 404
}

// Actions. Each later capability adds its own here, so the whole policy reads in one place.
const (
	// Federation-level reading: members, islands, pledges, public audit entries.
	FederationRead Action = "federation.read"
	// Federation management: create/update members and islands, grant quota, overrides.
	FederationManage Action = "federation.manage"
	// Member-private reading: vaults, keys, repositories, reports, private audit entries.
	MemberRead Action = "member.read"
	// Member-private changes: vaults, keys, pledges, repositories, notification channels.
	MemberWrite Action = "member.write"
	// API tokens of a member.
	TokenCreate Action = "token.create"
	// A member's pledges: federation-visible, changed by the pledging member's admins
	// (another member's admin is refused with 403, not 404).
	PledgeManage Action = "pledge.manage"
)

var rules = map[Action]rule{
	FederationRead:   {need: anyone, federated: true},
	FederationManage: {need: federationAdmin, federated: true},
	MemberRead:       {need: memberViewer},
	MemberWrite:      {need: memberAdmin},
	TokenCreate:      {need: memberViewer}, // the role is then capped at the creator's own
	PledgeManage:     {need: memberAdmin, federated: true},
}

// Object identifies what an action is about. MemberID is 0 for federation-level objects.
type Object struct {
	MemberID int64
}

// Member is the object of a member-scoped action.
func Member(id int64) Object { return Object{MemberID: id} }

// Federation is the object of a federation-level action.
var Federation = Object{}

// Check decides. It returns nil (allowed), ErrUnauthenticated, ErrHidden or ErrDenied.
func Check(p *identity.Principal, a Action, o Object) error {
	if p == nil {
		return ErrUnauthenticated
	}
	r, ok := rules[a]
	if !ok {
		return fmt.Errorf("authz: unknown action %q: %w", a, ErrDenied)
	}
	if p.FederationAdmin {
		return nil
	}
	switch r.need {
	case anyone:
		return nil
	case federationAdmin:
		return ErrDenied
	}
	role, member := p.RoleIn(o.MemberID)
	if !member {
		if r.federated {
			return ErrDenied
		}
		return ErrHidden
	}
	if r.need == memberAdmin && role != identity.RoleAdmin {
		return ErrDenied
	}
	return nil
}

// CanSee reports whether p may read the member's private objects (for filtering lists).
func CanSee(p *identity.Principal, memberID int64) bool {
	return Check(p, MemberRead, Member(memberID)) == nil
}

// ManagesFederation reports whether p may manage the federation (members, islands, quota
// grants, overrides, federation-wide channels and reports): front ends show the
// federation-wide lists and forms by it, never by reading the principal's fields.
func ManagesFederation(p *identity.Principal) bool {
	return Check(p, FederationManage, Federation) == nil
}

// Scope is what a principal may read among member-private objects: everything (All), or
// the objects of the listed members. Domains' list filters take it apart as All and
// MemberIDs.
type Scope struct {
	All       bool
	MemberIDs []int64 // never nil when All is false: an empty scope reads nothing
}

// ReadScope is the one answer to "which member-private objects may p list": lists
// (vaults, repositories, channels, events, reports, audit entries) are filtered by it,
// never by reading the principal's fields in a handler.
func ReadScope(p *identity.Principal) Scope {
	if p == nil {
		return Scope{MemberIDs: []int64{}}
	}
	return Scope{All: p.FederationAdmin, MemberIDs: append([]int64{}, p.MemberIDs()...)}
}

// AuditVisibility is what p may read in the audit log: federation-level entries (islands,
// members, pledges, quota policy) are visible to everyone signed in, member-private entries
// to that member's users, personal entries (logins, failed logins, account changes) to the
// person they concern and the admins of that person's members, and everything to federation
// admins. (A token's principal holds only its member, with the token's role.)
func AuditVisibility(p *identity.Principal) audit.Visibility {
	s := ReadScope(p)
	v := audit.Visibility{All: s.All, MemberIDs: s.MemberIDs}
	if p == nil {
		return v
	}
	v.UserID = p.UserID
	for _, m := range p.Members {
		if m.Role == identity.RoleAdmin {
			v.AdminOf = append(v.AdminOf, m.ID)
		}
	}
	return v
}

// ChannelCheck decides on a notification channel: a member's channel is read by the
// member's users and changed by its admins (others' are hidden); a federation-wide
// channel (memberID nil) is for federation admins.
func ChannelCheck(p *identity.Principal, memberID *int64, write bool) error {
	if memberID == nil {
		return Check(p, FederationManage, Federation)
	}
	act := MemberRead
	if write {
		act = MemberWrite
	}
	return Check(p, act, Member(*memberID))
}
