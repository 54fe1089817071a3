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

// picker is a form's choice among the federation's members or islands: a select of Options
// when Typed is false; when Typed, a typed field (a member's slug, an island's name), and
// Options hold the first pickerMax only.
type picker[T any] struct {
	Options []T
	Typed   bool
}

// memberPicker is the choice of a member; islandPicker the choice of an island.
type (
	memberPicker = picker[identity.MemberRef]
	islandPicker = picker[islands.Island]
)

// pickFrom makes the choice from the first page (pickerMax items) of a list: typed when the
// list goes on.
func pickFrom[I, T any](pg paging.Page[I], err error, conv func(I) T) (picker[T], error) {
	if err != nil {
		return picker[T]{}, err
	}
	out := picker[T]{Options: make([]T, 0, len(pg.Items)), Typed: pg.Next != ""}
	for _, it := range pg.Items {
		out.Options = append(out.Options, conv(it))
	}
	return out, nil
}

// everyMemberPicker is the choice of every member of the federation, each with the admin
// role a federation admin acts with. One statement.
func (p *Portal) everyMemberPicker(ctx context.Context) (memberPicker, error) {
	pg, err := islands.MemberPage(ctx, p.pool, islands.MemberFilter{}, paging.Request{Limit: pickerMax})
	return pickFrom(pg, err, func(m islands.Member) identity.MemberRef {
		return identity.MemberRef{ID: m.ID, Slug: m.Slug, Name: m.Name, Role: identity.RoleAdmin}
	})
}

// everyIslandPicker is the choice of every island. One statement.
func (p *Portal) everyIslandPicker(ctx context.Context) (islandPicker, error) {
	pg, err := islands.IslandPage(ctx, p.pool, islands.IslandFilter{}, paging.Request{Limit: pickerMax})
	return pickFrom(pg, err, func(i islands.Island) islands.Island { return i })
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
