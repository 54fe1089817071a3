package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestHelmChartVariables checks that every ARCHIPELAGO_* variable the Helm chart
// (helm/archipelago) names, in its templates and values, is one Archipelago reads. The chart
// itself is rendered and validated by the test of the nested module deploy/helm, which cannot
// import internal/config.
func TestHelmChartVariables(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("helm/archipelago/templates/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no chart templates (%v)", err)
	}
	files = append(files, "helm/archipelago/values.yaml")
	name := regexp.MustCompile(`\bARCHIPELAGO_[A-Z0-9_]+`)
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range name.FindAllString(string(b), -1) {
			if strings.HasSuffix(v, "_") { // a prefix in prose (ARCHIPELAGO_OIDC_*)
				continue
			}
			seen++
			if !knownVariable(v) {
				t.Errorf("%s names %s, which Archipelago does not read (internal/config)", f, v)
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d variable names found in the chart: is the glob right?", seen)
	}
	// The keys of values.yaml's config map go into the ConfigMap as they are.
	b, err := os.ReadFile("helm/archipelago/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var vals struct {
		Config map[string]string `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &vals); err != nil {
		t.Fatal(err)
	}
	if len(vals.Config) == 0 {
		t.Errorf("values.yaml has no config map")
	}
	for k := range vals.Config {
		if !knownVariable(k) {
			t.Errorf("values.yaml config.%s is not a variable Archipelago reads", k)
		}
	}
}
