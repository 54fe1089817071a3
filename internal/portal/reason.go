package portal

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// A test's reason can be a wall of restic text (pack hashes, scratch paths). Pages show
// its short title — the first sentence or clause, at most reasonTitleMax characters — with
// the action to take (by outcome, in the templates' "reason" block), and the whole text
// behind a click (<details>) when there is more.

const reasonTitleMax = 120

// reasonView is a reason as pages show it.
type reasonView struct {
	Title, Detail, Status string
}

// reasonOf splits a reason into its title and, when the title does not say it all, the
// full text.
func reasonOf(status, reason string) reasonView {
	reason = strings.TrimSpace(reason)
	// Reasons read "<level>: <what happened>: <restic's words>": the title is the level and
	// what happened, up to the first clause break.
	title, rest, _ := strings.Cut(reason, ": ")
	if rest != "" && utf8.RuneCountInString(title) <= 40 && !strings.ContainsAny(title, ".;\n") {
		head, _, _ := strings.Cut(rest, ": ")
		title += ": " + head
	} else {
		title = reason
	}
	for _, sep := range []string{"\n", "; ", ". ", " — ", " ("} {
		if i := strings.Index(title, sep); i > 0 {
			title = title[:i]
		}
	}
	if utf8.RuneCountInString(title) > reasonTitleMax {
		r := []rune(title)
		title = strings.TrimSpace(string(r[:reasonTitleMax])) + "…"
	}
	// A French reason puts a (narrow no-break) space before « : » and « ; ».
	v := reasonView{Title: strings.TrimRightFunc(title, func(r rune) bool { return strings.ContainsRune(".:;", r) || unicode.IsSpace(r) }),
		Status: status}
	if v.Title != strings.TrimRight(reason, ".") {
		v.Detail = reason
	}
	return v
}
