// Package helm holds the test of the Helm chart in archipelago/. It is a module of its own
// (deploy/helm/go.mod) so that Helm and the Kubernetes API modules stay out of Archipelago's
// go.mod; `make test` runs it.
//
// The test lints the chart and renders it with Helm's own Go library (helm.sh/helm/v4, the code
// behind `helm lint` and `helm template`), decodes every rendered manifest, hooks included,
// strictly into the Kubernetes API types (an unknown or misspelt field fails), and checks what a
// user relies on: non-root pods with a read-only root filesystem, the probes, the secret wiring,
// the scratch space, the migration hook. The environment variable names the chart sets are
// checked against internal/config by the root module's deploy/compose_test.go.
package helm

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

const (
	chartDir  = "archipelago"
	relName   = "fed"
	namespace = "backup"
	fullname  = "fed-archipelago"
	// The image's user (docs/deploy.md, "Container image").
	imageUID = 65532
)

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the chart renders
// (k8s.io/api has no type for it). It is decoded strictly like the rest: a field the chart
// renders must be declared here with the name the Prometheus Operator's CRD gives it
// (spec.endpoints[].authorization is SafeAuthorization: type and a SecretKeySelector).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Authorization *struct {
				Type        string                   `json:"type"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is one `helm template`: the release's objects and its hooks, decoded.
type rendered struct {
	objects []runtime.Object // the release's manifest
	hooks   map[string]*release.Hook
	hookObj map[string]runtime.Object // by hook name
	notes   string
}

// kubeVersion is the Kubernetes version rendered for (client-only Helm assumes 1.20, below the
// chart's kubeVersion constraint).
func kubeVersion(t *testing.T) *common.KubeVersion {
	t.Helper()
	v, err := common.ParseKubeVersion("v1.33.0")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return ch
}

// decode decodes one manifest strictly into its Kubernetes API type.
func decode(t *testing.T, source, doc string) runtime.Object {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		t.Fatalf("%s: not YAML: %v\n%s", source, err, doc)
	}
	var obj runtime.Object
	if tm.APIVersion == "monitoring.coreos.com/v1" && tm.Kind == "ServiceMonitor" {
		obj = &serviceMonitor{}
	} else {
		o, err := scheme.Scheme.New(schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind))
		if err != nil {
			t.Fatalf("%s: %s %s is not a Kubernetes API type: %v", source, tm.APIVersion, tm.Kind, err)
		}
		obj = o
	}
	if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
		t.Fatalf("%s: %s does not decode strictly: %v\n%s", source, tm.Kind, err, doc)
	}
	return obj
}

// DeepCopyObject lets serviceMonitor be a runtime.Object.
func (s *serviceMonitor) DeepCopyObject() runtime.Object { c := *s; return &c }

// render is `helm template fed ./archipelago -n backup` with vals, through action.Install in
// client-only dry-run mode (no cluster): hooks are separated by Helm itself.
func render(t *testing.T, vals map[string]any) (*rendered, error) {
	t.Helper()
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = relName
	inst.Namespace = namespace
	inst.Replace = true
	inst.KubeVersion = kubeVersion(t)
	rel, err := inst.RunWithContext(context.Background(), loadChart(t), vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("install returned %T, want *release.Release", rel)
	}
	out := &rendered{hooks: map[string]*release.Hook{}, hookObj: map[string]runtime.Object{}, notes: r.Info.Notes}
	docs := releaseutil.SplitManifests(r.Manifest)
	for _, k := range slices.Sorted(maps.Keys(docs)) {
		if strings.TrimSpace(docs[k]) == "" {
			continue
		}
		out.objects = append(out.objects, decode(t, k, docs[k]))
	}
	for _, h := range r.Hooks {
		out.hooks[h.Name] = h
		out.hookObj[h.Name] = decode(t, h.Path, h.Manifest)
	}
	return out, nil
}

func mustRender(t *testing.T, vals map[string]any) *rendered {
	t.Helper()
	r, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// find returns the release object of type T named name (nil when absent).
func find[T interface {
	runtime.Object
	GetName() string
}](r *rendered, name string) T {
	var zero T
	for _, o := range r.objects {
		if v, ok := o.(T); ok && v.GetName() == name {
			return v
		}
	}
	return zero
}

func kinds(r *rendered) []string {
	var ks []string
	for _, o := range r.objects {
		ks = append(ks, fmt.Sprintf("%T", o))
	}
	sort.Strings(ks)
	return ks
}

// allOn turns every toggle of the chart on.
func allOn() map[string]any {
	return map[string]any{
		"publicURL": "",
		"worker":    map[string]any{"enabled": true, "replicas": 3, "podDisruptionBudget": map[string]any{"enabled": true}},
		"serve":     map[string]any{"replicas": 2, "goMemLimitPercent": 80, "podDisruptionBudget": map[string]any{"enabled": true}},
		"ingress": map[string]any{"enabled": true, "className": "nginx",
			"hosts": []any{map[string]any{"host": "archipelago.example.org", "paths": []any{map[string]any{"path": "/", "pathType": "Prefix"}}}},
			"tls":   []any{map[string]any{"secretName": "archipelago-tls", "hosts": []any{"archipelago.example.org"}}}},
		"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
		"secret": map[string]any{"create": true, "values": map[string]any{
			"databaseURL": "postgres://archipelago:pw@postgres:5432/archipelago", "masterKey": strings.Repeat("ab", 32),
			"metricsToken": "0123456789abcdef0123"}},
		"oidc": map[string]any{"enabled": true, "issuer": "https://id.example.org/realms/chatons", "clientID": "archipelago",
			"existingSecret": "archipelago-oidc"},
		"serviceAccount":   map[string]any{"annotations": map[string]any{"example.org/owner": "federation"}},
		"imagePullSecrets": []any{map[string]any{"name": "registry"}},
		"extraEnv": []any{map[string]any{"name": "ARCHIPELAGO_SMTP_PASSWORD",
			"valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "smtp", "key": "password"}}}},
	}
}

func TestChartLints(t *testing.T) {
	for name, vals := range map[string]map[string]any{"defaults": nil, "every toggle on": allOn()} {
		t.Run(name, func(t *testing.T) {
			l := action.NewLint()
			l.Strict = true
			l.Namespace = namespace
			l.KubeVersion = kubeVersion(t)
			res := l.Run([]string{chartDir}, vals)
			for _, m := range res.Messages {
				t.Logf("lint: %s", m.Error())
			}
			if res.TotalChartsLinted != 1 || len(res.Errors) > 0 || action.HasWarningsOrErrors(res) {
				t.Fatalf("helm lint: %d charts linted, errors %v", res.TotalChartsLinted, res.Errors)
			}
		})
	}
}

// checkPod checks the properties every pod the chart runs (serve, worker, the migration Job) must
// have.
func checkPod(t *testing.T, what string, pod corev1.PodSpec, wantSecret string) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != imageUID ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v: want runAsNonRoot, runAsUser %d, seccomp RuntimeDefault", what, psc, imageUID)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("%s: the pod mounts a service account token; Archipelago does not talk to Kubernetes", what)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", what, len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.Image != "archipelago:0.1.0" {
		t.Errorf("%s: image %q, want archipelago:<appVersion>", what, c.Image)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != imageUID ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: container securityContext %+v: want read-only root, no privilege escalation, non-root %d, capabilities drop ALL",
			what, sc, imageUID)
	}
	if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
		t.Errorf("%s: no memory limit (restic children must be bounded)", what)
	}
	// /tmp: the only writable place, an emptyDir with a size limit.
	var tmp *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("%s: mount %s names no volume of the pod", what, m.Name)
		}
		if m.MountPath == "/tmp" {
			tmp = &c.VolumeMounts[i]
		}
		if m.MountPath != "/tmp" && !m.ReadOnly {
			t.Errorf("%s: %s is mounted writable", what, m.MountPath)
		}
	}
	if tmp == nil {
		t.Errorf("%s: nothing mounted at /tmp (TMPDIR, restore scratch) on a read-only root filesystem", what)
	} else if v := volumes[tmp.Name]; v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.IsZero() {
		t.Errorf("%s: /tmp is volume %+v, want an emptyDir with a sizeLimit", what, v.VolumeSource)
	}
	// Every *_FILE variable names a file of a mounted secret volume, projected from the expected
	// Secret under a key named in values.
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("%s: %s set twice", what, e.Name)
		}
		env[e.Name] = e
		if !strings.HasSuffix(e.Name, "_FILE") {
			continue
		}
		dir, file := path.Split(e.Value)
		var found bool
		for _, m := range c.VolumeMounts {
			v := volumes[m.Name]
			if path.Clean(m.MountPath) != path.Clean(dir) || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == file {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s: %s=%s is no file of a mounted secret volume", what, e.Name, e.Value)
		}
	}
	if e, ok := env["ARCHIPELAGO_DATABASE_URL_FILE"]; !ok || e.Value == "" {
		t.Errorf("%s: ARCHIPELAGO_DATABASE_URL_FILE not set", what)
	}
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Name == "secrets" && v.Secret.SecretName != wantSecret {
			t.Errorf("%s: secret volume reads Secret %q, want %q", what, v.Secret.SecretName, wantSecret)
		}
	}
	sv, ok := volumes["secrets"]
	if !ok || sv.Secret == nil {
		t.Fatalf("%s: no secret volume", what)
	}
	keyOf := map[string]string{}
	for _, it := range sv.Secret.Items {
		keyOf[it.Path] = it.Key
	}
	if keyOf["database-url"] != "database-url" {
		t.Errorf("%s: database-url comes from key %q, want the one named in secret.keys.databaseURL", what, keyOf["database-url"])
	}
}

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func checkDeployment(t *testing.T, r *rendered, d *appsv1.Deployment, wantSecret string) {
	t.Helper()
	checkPod(t, d.Name, d.Spec.Template.Spec, wantSecret)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("%s: selector %v does not match its pods' labels %v (%v)", d.Name, d.Spec.Selector, d.Spec.Template.Labels, err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || find[*corev1.ConfigMap](r, c.EnvFrom[0].ConfigMapRef.Name) == nil {
		t.Errorf("%s: envFrom %+v does not name the release's ConfigMap", d.Name, c.EnvFrom)
	}
	if sa := d.Spec.Template.Spec.ServiceAccountName; find[*corev1.ServiceAccount](r, sa) == nil {
		t.Errorf("%s: service account %q is not rendered", d.Name, sa)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Errorf("%s: no checksum/config annotation: a config change would not roll the pods", d.Name)
	}
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 20 {
		t.Errorf("%s: terminationGracePeriodSeconds %v: want more than the 20 s shutdown timeout", d.Name, g)
	}
}

// checkServe checks the serve Deployment: probes on /healthz and /readyz, the port, the
// Service pointing at it.
func checkServe(t *testing.T, r *rendered, wantSecret, wantRunWorkers string) *appsv1.Deployment {
	t.Helper()
	d := find[*appsv1.Deployment](r, fullname+"-serve")
	if d == nil {
		t.Fatalf("no serve Deployment among %v", kinds(r))
	}
	checkDeployment(t, r, d, wantSecret)
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("serve: args %v", c.Args)
	}
	if got := envOf(c)["ARCHIPELAGO_RUN_WORKERS"]; got != wantRunWorkers {
		t.Errorf("serve: ARCHIPELAGO_RUN_WORKERS=%q, want %q", got, wantRunWorkers)
	}
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
			t.Errorf("serve: %s probe %+v, want GET %s on port http", name, p, path)
			return
		}
		if p.TimeoutSeconds < 1 || p.PeriodSeconds < p.TimeoutSeconds || p.FailureThreshold < 1 {
			t.Errorf("serve: %s probe timings %+v", name, p)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	// /readyz bounds its database check to 3 s: a shorter probe timeout would fail a healthy
	// but slow database.
	if c.ReadinessProbe != nil && c.ReadinessProbe.TimeoutSeconds <= 3 {
		t.Errorf("serve: readiness timeout %d s is not above /readyz's own 3 s", c.ReadinessProbe.TimeoutSeconds)
	}
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("serve: ports %+v, want http 8080", c.Ports)
	}
	cm := find[*corev1.ConfigMap](r, fullname)
	if cm == nil || cm.Data["ARCHIPELAGO_LISTEN"] != "0.0.0.0:8080" || cm.Data["ARCHIPELAGO_RESTIC"] == "" ||
		cm.Data["TMPDIR"] != "/tmp" || !strings.HasPrefix(cm.Data["ARCHIPELAGO_SCRATCH_DIR"], "/tmp/") || cm.Data["ARCHIPELAGO_AUTO_MIGRATE"] != "false" {
		t.Errorf("ConfigMap %+v: want LISTEN on 0.0.0.0:8080, RESTIC, TMPDIR=/tmp, the scratch under /tmp, no auto-migration", cm)
	}
	svc := find[*corev1.Service](r, fullname)
	if svc == nil {
		t.Fatalf("no Service")
	}
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service selector %v does not select serve's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" || svc.Spec.Ports[0].Name != "http" {
		t.Errorf("Service ports %+v", svc.Spec.Ports)
	}
	return d
}

// checkMigration checks the migration Job: a pre-install and pre-upgrade hook running
// `migrate up`, reading the database URL from the expected Secret.
func checkMigration(t *testing.T, r *rendered, wantSecret string) *release.Hook {
	t.Helper()
	h := r.hooks[fullname+"-migrate"]
	if h == nil {
		t.Fatalf("no migration hook among %v", slices.Collect(maps.Keys(r.hooks)))
	}
	if h.Kind != "Job" || !slices.Contains(h.Events, release.HookPreInstall) || !slices.Contains(h.Events, release.HookPreUpgrade) {
		t.Errorf("migration hook: %s on %v, want a Job on pre-install and pre-upgrade", h.Kind, h.Events)
	}
	if !slices.Contains(h.DeletePolicies, release.HookBeforeHookCreation) {
		t.Errorf("migration hook: delete policies %v: without before-hook-creation the next upgrade fails on the old Job", h.DeletePolicies)
	}
	if find[*batchv1.Job](r, h.Name) != nil {
		t.Errorf("the migration Job is also an ordinary release object: it would run after the pods")
	}
	j, ok := r.hookObj[h.Name].(*batchv1.Job)
	if !ok {
		t.Fatalf("migration hook decodes to %T", r.hookObj[h.Name])
	}
	checkPod(t, "migration Job", j.Spec.Template.Spec, wantSecret)
	c := j.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"migrate", "up"}) {
		t.Errorf("migration Job: args %v, want migrate up", c.Args)
	}
	if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || j.Spec.BackoffLimit == nil || j.Spec.ActiveDeadlineSeconds == nil {
		t.Errorf("migration Job: restartPolicy %s, backoffLimit %v, activeDeadlineSeconds %v", j.Spec.Template.Spec.RestartPolicy,
			j.Spec.BackoffLimit, j.Spec.ActiveDeadlineSeconds)
	}
	// It runs before the release's own objects exist: it must not need them.
	if len(c.EnvFrom) > 0 {
		t.Errorf("migration Job reads %+v, which does not exist yet at pre-install", c.EnvFrom)
	}
	if sa := j.Spec.Template.Spec.ServiceAccountName; sa != "" && find[*corev1.ServiceAccount](r, sa) != nil {
		t.Errorf("migration Job uses ServiceAccount %s, created only after the hook", sa)
	}
	return h
}

func TestChartDefaults(t *testing.T) {
	r := mustRender(t, nil)
	want := []string{"*v1.ConfigMap", "*v1.Deployment", "*v1.Service", "*v1.ServiceAccount"}
	if got := kinds(r); !slices.Equal(got, want) {
		t.Errorf("objects %v, want %v", got, want)
	}
	if len(r.hooks) != 1 {
		t.Errorf("hooks %v, want the migration Job only", slices.Collect(maps.Keys(r.hooks)))
	}
	d := checkServe(t, r, fullname, "true")
	checkMigration(t, r, fullname)
	c := d.Spec.Template.Spec.Containers[0]
	// 50 % of the default 1Gi limit: restic children share the limit.
	if got := envOf(c)["GOMEMLIMIT"]; got != "512MiB" {
		t.Errorf("serve: GOMEMLIMIT=%q, want 512MiB (50%% of 1Gi)", got)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "tmp" && (v.EmptyDir == nil || v.EmptyDir.SizeLimit.Cmp(resource.MustParse("10Gi")) != 0) {
			t.Errorf("serve: scratch %+v, want the default 10Gi sizeLimit", v.VolumeSource)
		}
	}
	if e := envOf(c); e["ARCHIPELAGO_MASTER_KEY_FILE"] == "" || e["ARCHIPELAGO_METRICS_TOKEN_FILE"] == "" {
		t.Errorf("serve: master key or metrics token not wired: %v", e)
	}
	if !strings.Contains(r.notes, "publicURL is not set") || !strings.Contains(r.notes, "kubectl -n backup create secret generic fed-archipelago") {
		t.Errorf("NOTES.txt does not warn about the unset public URL and the Secret to create:\n%s", r.notes)
	}
}

func TestChartEveryToggle(t *testing.T) {
	r := mustRender(t, allOn())
	want := []string{"*helm.serviceMonitor", "*v1.ConfigMap", "*v1.Deployment", "*v1.Deployment", "*v1.Ingress",
		"*v1.PodDisruptionBudget", "*v1.PodDisruptionBudget", "*v1.Service", "*v1.ServiceAccount"}
	if got := kinds(r); !slices.Equal(got, want) {
		t.Errorf("objects %v, want %v", got, want)
	}
	serve := checkServe(t, r, fullname, "false")
	job := checkMigration(t, r, fullname)
	if got := envOf(serve.Spec.Template.Spec.Containers[0])["GOMEMLIMIT"]; got != "819MiB" {
		t.Errorf("serve: GOMEMLIMIT=%q, want 819MiB (80%% of 1Gi)", got)
	}
	if *serve.Spec.Replicas != 2 {
		t.Errorf("serve replicas %d, want 2", *serve.Spec.Replicas)
	}

	w := find[*appsv1.Deployment](r, fullname+"-worker")
	if w == nil {
		t.Fatalf("no worker Deployment")
	}
	checkDeployment(t, r, w, fullname)
	wc := w.Spec.Template.Spec.Containers[0]
	if !slices.Equal(wc.Args, []string{"worker"}) || *w.Spec.Replicas != 3 || envOf(wc)["ARCHIPELAGO_RESTORE_WORKERS"] != "2" {
		t.Errorf("worker: args %v, replicas %d, env %v", wc.Args, *w.Spec.Replicas, envOf(wc))
	}
	// The worker serves no HTTP: its probes run the binary itself (no shell in the image),
	// which reads the heartbeat the worker writes.
	for name, p := range map[string]*corev1.Probe{"startup": wc.StartupProbe, "liveness": wc.LivenessProbe} {
		if p == nil || p.Exec == nil || !slices.Equal(p.Exec.Command, []string{"/usr/bin/archipelago", "healthcheck", "worker", "--max-age", "90s"}) {
			t.Errorf("worker: %s probe %+v, want exec /usr/bin/archipelago healthcheck worker --max-age 90s", name, p)
		} else if p.TimeoutSeconds < 5 || p.PeriodSeconds < 10 {
			t.Errorf("worker: %s probe timings %+v", name, p)
		}
	}
	sel, _ := metav1.LabelSelectorAsSelector(serve.Spec.Selector)
	if sel.Matches(labels.Set(w.Spec.Template.Labels)) {
		t.Errorf("serve's selector also selects worker pods: the Service would send requests to workers")
	}

	// The Secret rendered from values is a hook that comes before the migration Job.
	sh := r.hooks[fullname]
	if sh == nil || sh.Kind != "Secret" {
		t.Fatalf("secret.create: no Secret hook among %v", slices.Collect(maps.Keys(r.hooks)))
	}
	if sh.Weight >= job.Weight || !slices.Contains(sh.Events, release.HookPreInstall) || !slices.Contains(sh.Events, release.HookPreUpgrade) {
		t.Errorf("Secret hook weight %d on %v: the migration Job (weight %d) would start before its Secret exists", sh.Weight, sh.Events, job.Weight)
	}
	sec := r.hookObj[sh.Name].(*corev1.Secret)
	for _, k := range []string{"database-url", "master-key", "metrics-token"} {
		if sec.StringData[k] == "" {
			t.Errorf("rendered Secret lacks %s", k)
		}
	}
	if serve.Spec.Template.Annotations["checksum/secret"] == "" {
		t.Errorf("serve: no checksum/secret annotation with secret.create")
	}

	ing := find[*networkingv1.Ingress](r, fullname)
	if ing == nil || len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "archipelago.example.org" ||
		ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name != fullname || ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port.Name != "http" ||
		len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "archipelago-tls" || ing.Spec.IngressClassName == nil {
		t.Errorf("Ingress %+v", ing)
	}
	if cm := find[*corev1.ConfigMap](r, fullname); cm.Data["ARCHIPELAGO_PUBLIC_URL"] != "https://archipelago.example.org" {
		t.Errorf("ARCHIPELAGO_PUBLIC_URL=%q, want https://archipelago.example.org from the TLS ingress host", cm.Data["ARCHIPELAGO_PUBLIC_URL"])
	}

	sm := find[*serviceMonitor](r, fullname)
	if sm == nil || len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor %+v", sm)
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Path != "/metrics" || ep.Port != "http" || ep.Authorization == nil || ep.Authorization.Type != "Bearer" ||
		ep.Authorization.Credentials.Name != fullname || ep.Authorization.Credentials.Key != "metrics-token" {
		t.Errorf("ServiceMonitor endpoint %+v, want /metrics on http with the bearer token from %s/metrics-token", ep, fullname)
	}
	smSel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if svc := find[*corev1.Service](r, fullname); err != nil || !smSel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not select the Service %v", sm.Spec.Selector, svc.Labels)
	}
	if sm.Labels["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack serviceMonitor.labels", sm.Labels)
	}

	for _, d := range []*appsv1.Deployment{serve, w} {
		pdb := find[*policyv1.PodDisruptionBudget](r, d.Name)
		if pdb == nil {
			t.Errorf("no PodDisruptionBudget for %s", d.Name)
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || pdb.Spec.MaxUnavailable == nil {
			t.Errorf("PodDisruptionBudget %s: selector %v does not cover %s's pods, or no maxUnavailable", pdb.Name, pdb.Spec.Selector, d.Name)
		}
	}

	// OIDC: the client secret is a file from its own Secret.
	e := envOf(serve.Spec.Template.Spec.Containers[0])
	if e["ARCHIPELAGO_OIDC_ISSUER"] != "https://id.example.org/realms/chatons" || e["ARCHIPELAGO_OIDC_CLIENT_ID"] != "archipelago" ||
		e["ARCHIPELAGO_OIDC_CLIENT_SECRET_FILE"] == "" {
		t.Errorf("serve: OIDC not wired: %v", e)
	}
	var oidcSecret string
	for _, v := range serve.Spec.Template.Spec.Volumes {
		if v.Name == "oidc" && v.Secret != nil {
			oidcSecret = v.Secret.SecretName
		}
	}
	if oidcSecret != "archipelago-oidc" {
		t.Errorf("serve: the OIDC client secret comes from %q, want oidc.existingSecret", oidcSecret)
	}
	// extraEnv reaches every Archipelago container.
	for _, c := range []corev1.Container{serve.Spec.Template.Spec.Containers[0], wc} {
		var ok bool
		for _, ev := range c.Env {
			ok = ok || (ev.Name == "ARCHIPELAGO_SMTP_PASSWORD" && ev.ValueFrom != nil && ev.ValueFrom.SecretKeyRef.Name == "smtp")
		}
		if !ok {
			t.Errorf("%s: extraEnv missing", c.Name)
		}
	}
}

// With existingSecret, the chart renders no Secret and every reference names the given one
// under the keys named in values.
func TestChartExistingSecret(t *testing.T) {
	r := mustRender(t, map[string]any{
		"publicURL":      "https://archipelago.example.org",
		"worker":         map[string]any{"enabled": true},
		"serviceMonitor": map[string]any{"enabled": true},
		"secret": map[string]any{"existingSecret": "archipelago-secrets",
			"keys": map[string]any{"databaseURL": "DATABASE_URL", "masterKey": "MASTER_KEY", "metricsToken": "SCRAPE"}},
	})
	for _, o := range r.objects {
		if _, ok := o.(*corev1.Secret); ok {
			t.Errorf("a Secret is rendered although existingSecret is given")
		}
	}
	for name, o := range r.hookObj {
		if _, ok := o.(*corev1.Secret); ok {
			t.Errorf("hook %s is a Secret although existingSecret is given", name)
		}
	}
	for _, d := range []string{fullname + "-serve", fullname + "-worker"} {
		dep := find[*appsv1.Deployment](r, d)
		if dep == nil {
			t.Fatalf("no %s", d)
		}
		// checkPod insists on database-url coming from key "database-url": here it must come
		// from DATABASE_URL, so check the items directly.
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name != "secrets" {
				continue
			}
			got := map[string]string{}
			for _, it := range v.Secret.Items {
				got[it.Path] = it.Key
			}
			want := map[string]string{"database-url": "DATABASE_URL", "master-key": "MASTER_KEY", "metrics-token": "SCRAPE"}
			if v.Secret.SecretName != "archipelago-secrets" || !maps.Equal(got, want) {
				t.Errorf("%s: secret volume %s items %v, want archipelago-secrets %v", d, v.Secret.SecretName, got, want)
			}
		}
	}
	j := r.hookObj[fullname+"-migrate"].(*batchv1.Job)
	for _, v := range j.Spec.Template.Spec.Volumes {
		if v.Secret != nil && (v.Secret.SecretName != "archipelago-secrets" || len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "DATABASE_URL") {
			t.Errorf("migration Job: secret volume %+v, want archipelago-secrets/DATABASE_URL only", v.Secret)
		}
	}
	sm := find[*serviceMonitor](r, fullname)
	if c := sm.Spec.Endpoints[0].Authorization.Credentials; c.Name != "archipelago-secrets" || c.Key != "SCRAPE" {
		t.Errorf("ServiceMonitor token from %s/%s, want archipelago-secrets/SCRAPE", c.Name, c.Key)
	}
	if strings.Contains(r.notes, "create secret generic") {
		t.Errorf("NOTES.txt asks to create a Secret that exists:\n%s", r.notes)
	}
}

// A change of configuration changes the pods' checksum annotation, which rolls them.
func TestChartConfigChecksum(t *testing.T) {
	sum := func(level string) string {
		r := mustRender(t, map[string]any{"config": map[string]any{"ARCHIPELAGO_LOG_LEVEL": level}})
		return find[*appsv1.Deployment](r, fullname+"-serve").Spec.Template.Annotations["checksum/config"]
	}
	if a, b := sum("info"), sum("debug"); a == b {
		t.Errorf("checksum/config %s unchanged when ARCHIPELAGO_LOG_LEVEL changes", a)
	}
}

// Values the chart refuses, each with a message naming what to fix.
func TestChartRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"existing and created secret", map[string]any{"secret": map[string]any{"existingSecret": "s", "create": true,
			"values": map[string]any{"databaseURL": "x", "masterKey": "y", "metricsToken": "z"}}}, "keep one"},
		{"created secret without a master key", map[string]any{"secret": map[string]any{"create": true,
			"values": map[string]any{"databaseURL": "x", "metricsToken": "z"}}}, "masterKey is required"},
		{"ServiceMonitor without a scrape token", map[string]any{"serviceMonitor": map[string]any{"enabled": true},
			"secret": map[string]any{"keys": map[string]any{"metricsToken": ""}}}, "metricsToken"},
		{"fractional memory limit", map[string]any{"serve": map[string]any{"resources": map[string]any{"limits": map[string]any{"memory": "1.5Gi"}}}},
			"GOMEMLIMIT is derived"},
		{"a secret in config", map[string]any{"config": map[string]any{"ARCHIPELAGO_DATABASE_URL": "postgres://x"}}, "is a secret"},
		{"a chart-managed variable in config", map[string]any{"config": map[string]any{"ARCHIPELAGO_LISTEN": ":9000"}}, "set by the chart"},
		{"OIDC without its Secret", map[string]any{"oidc": map[string]any{"enabled": true, "issuer": "https://id", "clientID": "a"}}, "oidc.existingSecret"},
		{"no scratch limit", map[string]any{"scratch": map[string]any{"sizeLimit": ""}}, "scratch.sizeLimit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
