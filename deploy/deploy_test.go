// Package deploy holds the monitoring configuration shipped with Archipelago (Prometheus
// alert rules, a Grafana dashboard); its test checks them with Prometheus's own parsers.
package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/common/model"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// exported lists the metric names internal/metrics and the HTTP middleware export.
var exported = regexp.MustCompile(`^archipelago_(restore_(last_success_timestamp_seconds|snapshot_age_seconds|rpo_seconds|rto_seconds|projected_full_restore_seconds|last_outcome|last_test_timestamp_seconds|repositories)|member_(repositories|repositories_stale|restore_oldest_success_age_seconds|vault_usage_bytes|vault_quota_bytes|vaults_over_ratio)|island_(repositories|vault_usage_bytes|vault_quota_bytes|vaults|pledges)|vault_(usage_ratio|usage_bytes|quota_bytes)|pledge_status|job_queue_depth|notify_(deliveries|oldest_pending_seconds)|metrics_collect_success|member_(copy_lag_max_seconds|vaults_copy_behind|copy_pending_deletions|vaults_frozen|lifecycle_tripped_timestamp_seconds|vault_multipart_bytes)|vault_(copy_lag_seconds|copy_behind|copy_pending_deletions|frozen|lifecycle_tripped_timestamp_seconds|multipart_bytes)|protection_collect_success|coordinator_backup_(configured|last_success_age_seconds|last_run_failed|interval_seconds)|member_agents_stale|agents_stale)$`)

// perObject lists the names exported only with ARCHIPELAGO_METRICS_PER_OBJECT: the shipped
// rules and dashboard must not depend on them.
var perObject = regexp.MustCompile(`^archipelago_(restore_(last_success_timestamp_seconds|snapshot_age_seconds|rpo_seconds|rto_seconds|projected_full_restore_seconds|last_outcome|last_test_timestamp_seconds)|vault_(usage_ratio|usage_bytes|quota_bytes|copy_lag_seconds|copy_behind|copy_pending_deletions|frozen|lifecycle_tripped_timestamp_seconds|multipart_bytes)|pledge_status)$`)

func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	e, err := parser.ParseExpr(strings.ReplaceAll(expr, "${datasource}", "x"))
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return
	}
	for _, sel := range parser.ExtractSelectors(e) {
		for _, m := range sel {
			if m.Name == "__name__" && !exported.MatchString(m.Value) {
				t.Errorf("%s: %q uses %s, which Archipelago does not export", where, expr, m.Value)
			}
			if m.Name == "__name__" && perObject.MatchString(m.Value) {
				t.Errorf("%s: %q uses %s, exported only with ARCHIPELAGO_METRICS_PER_OBJECT=true", where, expr, m.Value)
			}
		}
	}
}

// checkOncePerFederation fails an alert expression that reads a federation-wide series
// without first taking one value over the serve replicas that all export it (`max without
// (instance, pod)`): with three replicas it would fire three times, and a sum would triple.
// The collection rules (…_collect_success) are about each replica and stay per replica.
func checkOncePerFederation(t *testing.T, where, expr string) {
	t.Helper()
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return // checkExpr says so
	}
	parser.Inspect(e, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || strings.HasSuffix(vs.Name, "_collect_success") {
			return nil
		}
		for _, p := range path {
			if a, ok := p.(*parser.AggregateExpr); ok && a.Without && slices.Contains(a.Grouping, "instance") && slices.Contains(a.Grouping, "pod") {
				return nil
			}
		}
		t.Errorf("%s: %s is read per replica: wrap it in max without (instance, pod) (…)", where, vs.Name)
		return nil
	})
}

// ruleFile mirrors Prometheus's rule file format (model/rulefmt), decoded strictly: an
// unknown or misspelt key fails, as it does in Prometheus. (rulefmt itself does not build
// against this module's prometheus/common; promql/parser, which checks the expressions,
// does.)
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval,omitempty"`
		Rules    []struct {
			Record      string            `yaml:"record,omitempty"`
			Alert       string            `yaml:"alert,omitempty"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for,omitempty"`
			Labels      map[string]string `yaml:"labels,omitempty"`
			Annotations map[string]string `yaml:"annotations,omitempty"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRulesLoad checks the rule file as Prometheus validates one: known keys only,
// unique group names, each rule an alert or a record with an expression that parses,
// durations that parse, and templates in annotations that are well formed.
func TestAlertRulesLoad(t *testing.T) {
	t.Parallel()
	f, err := os.Open("prometheus/archipelago-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var groups ruleFile
	if err := dec.Decode(&groups); err != nil {
		t.Fatalf("not a Prometheus rule file: %v", err)
	}
	if len(groups.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	alerts, names := map[string]bool{}, map[string]bool{}
	for _, g := range groups.Groups {
		if g.Name == "" || names[g.Name] {
			t.Errorf("group name %q empty or repeated", g.Name)
		}
		names[g.Name] = true
		for _, r := range g.Rules {
			if (r.Alert == "") == (r.Record == "") {
				t.Errorf("group %s: a rule must be either an alert or a record", g.Name)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			for k, v := range r.Annotations {
				// Prometheus defines these variables and functions for alert templates.
				const defs = `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}`
				fm := template.FuncMap{"humanize": fmt.Sprint, "humanizeDuration": fmt.Sprint, "humanizePercentage": fmt.Sprint}
				if _, err := template.New(k).Funcs(fm).Parse(defs + v); err != nil {
					t.Errorf("%s: annotation %s: %v", r.Alert, k, err)
				}
			}
			alerts[r.Alert] = true
			checkExpr(t, r.Alert, r.Expr)
			checkOncePerFederation(t, r.Alert, r.Expr)
			if r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("%s: needs a summary and a severity", r.Alert)
			}
		}
	}
	for _, want := range []string{"ArchipelagoRestoreTestFailed", "ArchipelagoSnapshotStale", "ArchipelagoVaultFull", "ArchipelagoPledgeDown",
		"ArchipelagoJobQueueBacklog", "ArchipelagoAgentStale", "ArchipelagoCoordinatorBackupStale", "ArchipelagoCoordinatorBackupFailing"} {
		if !alerts[want] {
			t.Errorf("missing alert %s", want)
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("grafana/archipelago-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || len(d.Panels) < 5 {
		t.Fatalf("dashboard %q has %d panels", d.Title, len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, p.Title, tg.Expr)
		}
	}
}
