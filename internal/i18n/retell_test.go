package i18n

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Stored English domain texts are said again in French, their arguments too (numbers
// grouped, sizes and durations rewritten, known sub-sentences retold), restic's own words
// kept; a text no format knows is shown as stored; English is left alone.
func TestRetellSaysStoredDomainTextsInTheReadersLanguage(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	en, fr := c.Printer(English), c.Printer(French)
	for _, x := range []struct{ in, want string }{
		{"restic check (data subset 2/5) found damaged data: broken pack 5f3ae1c2, 77aa0b1c and 2 more; the files whose data is in it cannot be restored — run `restic repair packs` and make a new backup",
			"restic check (sous-ensemble de données 2/5) a trouvé des données endommagées\u202f: pack cassé 5f3ae1c2, 77aa0b1c et 2 de plus\u202f; les fichiers dont les données y sont ne peuvent pas être restaurés — lancez `restic repair packs` et faites une nouvelle sauvegarde"},
		{"restore a sample of snapshot 1a2b3c4d: the repository is damaged: Fatal: blob 99 is damaged; giving up",
			"restaurer un échantillon de l’instantané 1a2b3c4d\u202f: le dépôt est endommagé\u202f: Fatal: blob 99 is damaged; giving up"},
		{"full restore of 1.5 GB (12345 files) verified in 3d4h",
			"restauration complète de 1,5\u00a0Go (12\u202f345 fichiers) vérifiée en 3\u00a0j 4\u00a0h"},
		{"newest snapshot 1a2b3c4d is 2h05m old (target 26h); no snapshot to restore",
			"le dernier instantané 1a2b3c4d date de 2\u00a0h 05\u00a0min (objectif 26\u00a0h)\u202f; aucun instantané à restaurer"},
		{"attempt 2 of 3: the island could not be reached (this says nothing about the backup): dial tcp 127.0.0.1:9: connection refused",
			"tentative 2 sur 3\u202f: l’île n’a pas pu être jointe (cela ne dit rien de la sauvegarde)\u202f: dial tcp 127.0.0.1:9: connection refused"},
		{"Delete island north (id 7), which holds 12 vaults.", "Supprimer l’île north (id 7), qui contient 12 coffres."},
		{"entry 41: does not match its recorded leaf hash: edited, reordered, replaced or forged",
			"entrée 41\u202f: ne correspond pas à son empreinte de feuille enregistrée\u202f: modifiée, déplacée, remplacée ou forgée"},
		{"something this binary never wrote", "something this binary never wrote"},
	} {
		if got := fr.Retell(x.in); got != x.want {
			t.Errorf("Retell(%q)\n got %q\nwant %q", x.in, got, x.want)
		}
		if got := en.Retell(x.in); got != x.in {
			t.Errorf("English Retell(%q) = %q, want it as stored", x.in, got)
		}
	}
}

// Every retold format compiles, and its translation uses the same verbs in the same order
// (Retell applies the same arguments to it).
func TestRetoldFormatsKeepTheirArguments(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	verbs := regexp.MustCompile(`%[a-z]`)
	n := 0
	for _, id := range c.IDs(English) {
		for _, sec := range RetellSections {
			format, ok := strings.CutPrefix(id, sec)
			if !ok {
				continue
			}
			n++
			if _, err := compileFormat(id, format); err != nil {
				t.Error(err)
			}
			for _, v := range verbs.FindAllString(format, -1) {
				if !slices.Contains([]string{"%s", "%d", "%q"}, v) {
					t.Errorf("%q: verb %s (Retell reads back %%s, %%d and %%q)", id, v)
				}
			}
			tr := c.Printer(French).T(id)
			if a, b := verbs.FindAllString(format, -1), verbs.FindAllString(tr, -1); !slices.Equal(a, b) {
				t.Errorf("%q: the French uses %v, the English %v", id, b, a)
			}
			if tr == format {
				t.Errorf("%q is not translated", id)
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d retold formats", n)
	}
}
