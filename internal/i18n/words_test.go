package i18n

import (
	"strings"
	"testing"
)

// One French word for one thing: the canary file is « canari » everywhere (the portal's
// « Fichier canari », the verifier's reasons, the command line), never « témoin » in some
// texts and « canari » in others.
func TestFrenchSaysCanaryOneWay(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	fr := c.Printer(French)
	for _, id := range c.IDs(French) {
		if s := fr.T(id); strings.Contains(strings.ToLower(s), "témoin") {
			t.Errorf("%s says « témoin »: the French catalogs say « canari»: %s", id, s)
		}
	}
}
