// Package i18n speaks to people in their language: it picks the language of a request, a
// member or a command (English or French), holds the message catalogs of every user-facing
// text, and formats dates, numbers and sizes the way the reader's locale writes them.
//
// Catalogs are go-i18n message files (github.com/nicksnyder/go-i18n/v2) embedded from
// locales/<lang>.yaml: one file per language, nested keys joined with dots
// ("nav.dashboard"), plural forms (one/other) chosen by CLDR rules, arguments as named
// template fields ({{.Name}}). See docs/i18n.md for why this library and how to add a text.
package i18n

import (
	"strings"

	"golang.org/x/text/language"
)

// Lang is a language Archipelago speaks, by its ISO 639-1 code.
type Lang string

// The languages of the catalogs. English is the language of the source texts.
const (
	English Lang = "en"
	French  Lang = "fr"
)

// Langs are the supported languages, the source language first.
var Langs = []Lang{English, French}

var tags = []language.Tag{language.English, language.French}

var matcher = language.NewMatcher(tags)

// Parse reads a language setting ("fr", "fr-FR", "en_GB.UTF-8", "FR"): the supported
// language it names, false for an empty or unsupported one.
func Parse(s string) (Lang, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ".@"); i >= 0 { // POSIX locales: fr_FR.UTF-8, fr_FR@euro
		s = s[:i]
	}
	if s == "" || s == "C" || s == "POSIX" {
		return "", false
	}
	t, err := language.Parse(strings.ReplaceAll(s, "_", "-"))
	if err != nil {
		return "", false
	}
	base, _ := t.Base()
	for _, l := range Langs {
		if base.String() == string(l) {
			return l, true
		}
	}
	return "", false
}

// Negotiate is the language to answer in: the person's own setting when it is a supported
// language, else the best supported match of an Accept-Language header, else fallback.
func Negotiate(setting, acceptLanguage string, fallback Lang) Lang {
	if l, ok := Parse(setting); ok {
		return l
	}
	if l, ok := FromAcceptLanguage(acceptLanguage); ok {
		return l
	}
	return fallback
}

// FromAcceptLanguage is the supported language an Accept-Language header prefers, false when
// it names none of them (or is empty or malformed).
func FromAcceptLanguage(header string) (Lang, bool) {
	if strings.TrimSpace(header) == "" {
		return "", false
	}
	prefs, _, err := language.ParseAcceptLanguage(header)
	if err != nil || len(prefs) == 0 {
		return "", false
	}
	_, i, conf := matcher.Match(prefs...)
	if conf == language.No {
		return "", false
	}
	return Langs[i], true
}

// FromEnv is the language of a command-line session from its locale variables, in POSIX
// order (LC_ALL, LC_MESSAGES, LANG); getenv is os.Getenv in production.
func FromEnv(getenv func(string) string, fallback Lang) Lang {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := getenv(v); s != "" {
			if l, ok := Parse(s); ok {
				return l
			}
			return fallback // the first one set decides, as POSIX says
		}
	}
	return fallback
}

func (l Lang) tag() language.Tag {
	if l == French {
		return language.French
	}
	return language.English
}

// Name is the language's name in itself, for a language picker.
func (l Lang) Name() string {
	if l == French {
		return "Français"
	}
	return "English"
}
