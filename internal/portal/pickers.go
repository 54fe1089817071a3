package portal

import (
	"context"

	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/paging"
)

// pickerMax is how many choices a form lists in a <select>. A federation with more members
// or islands than this gets a typed field instead (a member's slug, an island's name), checked
// when the form is posted: a page never renders the whole federation into a form.
const pickerMax = 200

// memberPicker is a form's choice of member: Options are the choices when Typed is false;
// when Typed, they are the first pickerMax members only (the form asks for a slug).
type memberPicker struct {
	Options []identity.MemberRef
	Typed   bool
}

// everyMemberPicker is the choice of every member of the federation, each with the admin
// role a federation admin acts with: a select of them all when there are at most pickerMax,
// else a typed slug field. One statement.
func (p *Portal) everyMemberPicker(ctx context.Context) (memberPicker, error) {
	pg, err := islands.MemberPage(ctx, p.pool, islands.MemberFilter{}, paging.Request{Limit: pickerMax})
	if err != nil {
		return memberPicker{}, err
	}
	out := memberPicker{Options: make([]identity.MemberRef, 0, len(pg.Items)), Typed: pg.Next != ""}
	for _, m := range pg.Items {
		out.Options = append(out.Options, identity.MemberRef{ID: m.ID, Slug: m.Slug, Name: m.Name, Role: identity.RoleAdmin})
	}
	return out, nil
}

// islandPicker is a form's choice of island: Options when Typed is false, else a typed island
// name (Options then hold the first pickerMax islands only).
type islandPicker struct {
	Options []islands.Island
	Typed   bool
}

// everyIslandPicker is the choice of every island, as everyMemberPicker. One statement.
func (p *Portal) everyIslandPicker(ctx context.Context) (islandPicker, error) {
	pg, err := islands.IslandPage(ctx, p.pool, islands.IslandFilter{}, paging.Request{Limit: pickerMax})
	if err != nil {
		return islandPicker{}, err
	}
	return islandPicker{Options: pg.Items, Typed: pg.Next != ""}, nil
}

// memberField is what the "memberfield" template (layout.html) draws: the member choice of a
// form, a select or a typed slug field, with the input id and the member selected.
type memberField struct {
	ID       string
	Picker   memberPicker
	Selected string
}

// pickMember builds a memberField (the template function "memberField").
func pickMember(id string, p memberPicker, selected string) memberField {
	return memberField{ID: id, Picker: p, Selected: selected}
}
