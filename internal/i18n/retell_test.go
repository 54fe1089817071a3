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

// An approval's effect that holds English lists (the protection and approval-rule changes,
// a token replacement's other settings) is said in French part by part, settings' names
// kept, joined with « et »; an unknown part leaves the whole list as stored.
func TestRetellSaysListsPartByPart(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	fr := c.Printer(French)
	for _, x := range []struct{ in, want string }{
		{"Protection settings: shorten the protected-copy deletion grace period from 30 days to 7 days and stop giving new vaults a protected copy by default (with the rest of the change: copy_by_default=false and deletion_grace_seconds=604800).",
			"Réglages de protection\u202f: raccourcir le délai de grâce de suppression de la copie protégée de 30\u00a0jours à 7\u00a0jours et ne plus donner de copie protégée par défaut aux nouveaux coffres (avec le reste du changement\u202f: copy_by_default=false et deletion_grace_seconds=604800)."},
		{"Change the approval rules (now: 2 approvals from other organisations, approval window 7 days, execution window 3 days, cooling-off 72 h) to: 3 approvals, only admins of members [1 4] may approve, cooling-off 4 days and protect quota cuts: true.",
			"Changer les règles d’approbation (aujourd’hui\u202f: 2 approbations d’autres organisations, fenêtre d’approbation 7\u00a0jours, fenêtre d’exécution 3\u00a0jours, délai de réflexion 72 h) en\u202f: 3 approbations, seuls les admins des membres [1 4] peuvent approuver, délai de réflexion 4\u00a0jours et protéger les réductions de quota\u202f: oui."},
		{"content-hash integrity: 2 unexpected object(s) in the repository: notes.txt (not in a restic folder (data/, index/, snapshots/, keys/, locks/)), data/zz (not a restic object name (64 hex digits)); 10 objects (1.5 GB) hashed, all matching their names; this cycle (3d4h): 10 of 20 objects, 1.5 GB of 3.0 GB",
			"intégrité par empreinte\u202f: 2 objet(s) inattendu(s) dans le dépôt\u202f: notes.txt (hors d’un dossier restic (data/, index/, snapshots/, keys/, locks/)), data/zz (pas un nom d’objet restic (64 chiffres hexadécimaux))\u202f; 10 objets (1,5\u00a0Go) hachés, tous conformes à leur nom\u202f; ce cycle (3\u00a0j 4\u00a0h)\u202f: 10 objets sur 20, 1,5\u00a0Go sur 3\u00a0Go"},
		{"Change the approval rules (now: 2 approvals from other organisations, approval window 1 day, execution window 1 days, cooling-off 72 h) to: no change.",
			"Changer les règles d’approbation (aujourd’hui\u202f: 2 approbations d’autres organisations, fenêtre d’approbation 1\u00a0jour, fenêtre d’exécution 1\u00a0jour, délai de réflexion 72 h) en\u202f: aucun changement."},
		{"Protection settings: mystery step and stop giving new vaults a protected copy by default (with the rest of the change: copy_by_default=false).",
			"Réglages de protection\u202f: mystery step and stop giving new vaults a protected copy by default (avec le reste du changement\u202f: copy_by_default=false)."},
	} {
		if got := fr.Retell(x.in); got != x.want {
			t.Errorf("Retell(%q)\n got %q\nwant %q", x.in, got, x.want)
		}
	}
}

// The other stored English details a page shows — a pledge's state, a vault's protection
// notes, the quota formulas — are said in French, sizes, ratios and times included.
func TestRetellSaysStoredDetailsInFrench(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	fr := c.Printer(French)
	for _, x := range []struct{ in, want string }{
		{"unreachable since 2026-12-06T02:18:26Z", "injoignable depuis le 6 déc. 2026 à 02:18 UTC"},
		{"the layout gives the node 200000000000 bytes, 300000000000 pledged",
			"la disposition donne au nœud 200\u202f000\u202f000\u202f000 octets, 300\u202f000\u202f000\u202f000 engagés"},
		{`vault bucket libre-nuage-backups on island "Île Rhin" had rule "cleanup" (Enabled): expire objects 1 days old; removed`,
			"le bucket du coffre libre-nuage-backups sur l’île \"Île Rhin\" avait la règle \"cleanup\" (Enabled)\u202f: faire expirer les objets de plus de 1\u00a0jour\u202f; retirée"},
		{`vault bucket libre-nuage-backups on island "Île Rhin" had rule "cleanup" (Enabled): expire objects 1 day old; removed`,
			"le bucket du coffre libre-nuage-backups sur l’île \"Île Rhin\" avait la règle \"cleanup\" (Enabled)\u202f: faire expirer les objets de plus de 1\u00a0jour\u202f; retirée"},
		{`rule "old" (Enabled): abort multipart uploads after 3 days`,
			"la règle \"old\" (Enabled)\u202f: abandonner les envois en plusieurs parties après 3\u00a0jours"},
		{"33.33 GB = 1.0 × 400 GB pledged ÷ 3 − 100 GB already allocated", "33,33\u00a0Go = 1,0 × 400\u00a0Go engagés ÷ 3 − 100\u00a0Go déjà alloués"},
		{"59.99 GB = 200 GB usable (600 GB layout ÷ 3) × 1.0 overcommit − 140.01 GB allocated",
			"59,99\u00a0Go = 200\u00a0Go utilisables (600\u00a0Go de disposition ÷ 3) × 1,0 de surengagement − 140,01\u00a0Go alloués"},
	} {
		if got := fr.Retell(x.in); got != x.want {
			t.Errorf("Retell(%q)\n got %q\nwant %q", x.in, got, x.want)
		}
	}
}
