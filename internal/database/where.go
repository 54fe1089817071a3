package database

import (
	"strconv"
	"strings"
)

// Where builds the WHERE clause of a list query from the conditions that apply, so that a
// query holds no "($1 = 0 OR …)" switches: PostgreSQL plans such switches once for every
// value (a generic plan after a few executions) and cannot seek an index through them, which
// made a keyset page cost a scan of everything before it. Parameters are written ? in a
// condition and numbered $1, $2, … in the order they are added.
type Where struct {
	conds []string
	// Args are the parameters, in order, to pass with the query.
	Args []any
}

// And adds a condition; each ? in it takes the next of args.
func (w *Where) And(cond string, args ...any) {
	var b strings.Builder
	i := 0
	for _, r := range cond {
		if r == '?' && i < len(args) {
			b.WriteString(w.Arg(args[i]))
			i++
			continue
		}
		b.WriteRune(r)
	}
	w.conds = append(w.conds, b.String())
}

// Arg adds a parameter and returns its placeholder, for use outside the conditions (LIMIT).
func (w *Where) Arg(v any) string {
	w.Args = append(w.Args, v)
	return "$" + strconv.Itoa(len(w.Args))
}

// String is " WHERE c1 AND c2 …", or "" without conditions.
func (w *Where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// Contains is an ILIKE pattern matching s anywhere, with LIKE's wildcards in s (% and _)
// and the escape character taken literally: a search for "50%" finds "50%", not "500".
func Contains(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}
