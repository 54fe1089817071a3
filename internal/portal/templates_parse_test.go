package portal

import "testing"

// TestTemplatesParse: every page template parses with the portal's functions.
func TestTemplatesParse(t *testing.T) {
	t.Parallel()
	if _, err := New(Deps{}); err != nil {
		t.Fatal(err)
	}
}
