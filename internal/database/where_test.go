package database

import (
	"reflect"
	"testing"
)

func TestWhereNumbersParametersInOrder(t *testing.T) {
	t.Parallel()
	var w Where
	if w.String() != "" {
		t.Fatalf("empty: %q", w.String())
	}
	w.And("v.member_id = ANY(?)", []int64{1})
	w.And("v.status <> 'deleted'")
	w.And("m.slug >= ? AND (m.slug, v.name) > (?, ?)", "a", "a", "b")
	limit := w.Arg(51)
	want := " WHERE v.member_id = ANY($1) AND v.status <> 'deleted' AND m.slug >= $2 AND (m.slug, v.name) > ($3, $4)"
	if w.String() != want || limit != "$5" || !reflect.DeepEqual(w.Args, []any{[]int64{1}, "a", "a", "b", 51}) {
		t.Fatalf("%q %q %v", w.String(), limit, w.Args)
	}
}
