package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/chatons/archipelago/deploy/image"
	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/restic"
)

// composeFile is the part of the Compose specification compose.yaml uses, decoded strictly: a
// key this struct does not know (a typo, or a feature added without thought) fails the test.
type composeFile struct {
	Name         string                    `yaml:"name"`
	XArchipelago map[string]any            `yaml:"x-archipelago"` // the anchor merged into serve, worker, migrate
	Services     map[string]composeService `yaml:"services"`
	Secrets      map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes  map[string]any `yaml:"volumes"`
	Networks map[string]any `yaml:"networks"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	User        string            `yaml:"user"`
	ReadOnly    bool              `yaml:"read_only"`
	CapDrop     []string          `yaml:"cap_drop"`
	SecurityOpt []string          `yaml:"security_opt"`
	Restart     string            `yaml:"restart"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	MemLimit    string            `yaml:"mem_limit"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Networks yaml.Node `yaml:"networks"` // a list, or a map with ipv4_address
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c composeFile
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml does not decode strictly: %v", err)
	}
	return c
}

// knownVariable reports whether Archipelago reads name: a variable of internal/config, the
// _FILE form of one of its secrets, or the restic binary's location.
func knownVariable(name string) bool {
	if name == restic.EnvBinary {
		return true
	}
	for _, v := range config.Vars {
		if name == v.Name || (v.Secret && name == v.Name+"_FILE") {
			return true
		}
	}
	return false
}

// pinned: an image with an explicit version tag (not latest, not a bare name), or Archipelago's
// own image whose version the operator must name (${VAR:?…}: no silent default).
var (
	pinnedTag   = regexp.MustCompile(`^[a-z0-9./_-]+:v?[0-9]+(\.[0-9]+){1,2}(-[a-z0-9.]+)?$`)
	requiredTag = regexp.MustCompile(`^archipelago:\$\{ARCHIPELAGO_VERSION:\?[^}]+\}$`)
)

func TestComposeFile(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)

	arch := map[string]composeService{} // services running the archipelago image
	var garages []string
	for name, s := range c.Services {
		switch {
		case requiredTag.MatchString(s.Image):
			arch[name] = s
		case strings.HasPrefix(s.Image, "dxflrs/garage:"):
			garages = append(garages, name)
		}
		if !pinnedTag.MatchString(s.Image) && !requiredTag.MatchString(s.Image) {
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		}
		for _, sec := range s.Secrets {
			f, ok := c.Secrets[sec]
			if !ok {
				t.Errorf("service %s: secret %s is not declared", name, sec)
			} else if !strings.HasPrefix(f.File, "./secrets/") {
				t.Errorf("secret %s: file %q outside ./secrets (ignored by git)", sec, f.File)
			}
		}
		// Every *_FILE names a secret the service mounts (/run/secrets/<name>).
		for k, v := range s.Environment {
			if !strings.HasSuffix(k, "_FILE") {
				continue
			}
			sec, ok := strings.CutPrefix(v, "/run/secrets/")
			if !ok || !slices.Contains(s.Secrets, sec) {
				t.Errorf("service %s: %s=%s is not one of its secrets %v", name, k, v, s.Secrets)
			}
		}
		// A dependency's condition must be one the dependency can meet.
		for dep, d := range s.DependsOn {
			ds, ok := c.Services[dep]
			switch {
			case !ok:
				t.Errorf("service %s depends on unknown %s", name, dep)
			case d.Condition == "service_healthy" && ds.Healthcheck == nil:
				t.Errorf("service %s waits for %s to be healthy, which has no health check", name, dep)
			case d.Condition == "service_completed_successfully" && ds.Restart != "no":
				t.Errorf("service %s waits for %s to complete, which restarts (%q)", name, dep, ds.Restart)
			}
		}
	}
	for _, want := range []string{"postgres", "migrate", "serve", "worker"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	if h := c.Services["postgres"].Healthcheck; h == nil || !slices.Contains(h.Test, "pg_isready") {
		t.Errorf("postgres: health check %+v, want pg_isready", h)
	}

	for name, s := range arch {
		for k := range s.Environment {
			if strings.HasPrefix(k, "ARCHIPELAGO_") && !knownVariable(k) {
				t.Errorf("service %s: %s is not a variable Archipelago reads (internal/config)", name, k)
			}
		}
		if s.User != "65532:65532" || !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("service %s: user %q, read_only %v, cap_drop %v, security_opt %v: want the image's non-root user, a read-only root, no capabilities",
				name, s.User, s.ReadOnly, s.CapDrop, s.SecurityOpt)
		}
		if !slices.ContainsFunc(s.Volumes, func(v string) bool { return v == "/tmp" || strings.HasSuffix(v, ":/tmp") }) || s.Environment["TMPDIR"] != "/tmp" {
			t.Errorf("service %s: no writable /tmp (TMPDIR) on its read-only root: volumes %v", name, s.Volumes)
		}
		for _, v := range []string{"ARCHIPELAGO_DATABASE_URL_FILE", "ARCHIPELAGO_MASTER_KEY_FILE"} {
			if s.Environment[v] == "" {
				t.Errorf("service %s: %s not set", name, v)
			}
		}
		if name != "migrate" {
			if d := s.DependsOn["migrate"]; d.Condition != "service_completed_successfully" {
				t.Errorf("service %s starts before the migration completed (%+v)", name, d)
			}
		}
	}
	if got := arch["migrate"].Command; !slices.Equal(got, []string{"migrate", "up"}) {
		t.Errorf("migrate runs %v", got)
	}
	if d := arch["migrate"].DependsOn["postgres"]; d.Condition != "service_healthy" {
		t.Errorf("migrate does not wait for a healthy PostgreSQL: %+v", d)
	}
	if s := arch["serve"]; !slices.Equal(s.Command, []string{"serve"}) || s.Environment["ARCHIPELAGO_RUN_WORKERS"] != "false" ||
		!strings.HasPrefix(s.Environment["ARCHIPELAGO_LISTEN"], "0.0.0.0:") {
		t.Errorf("serve: command %v, env %v: want serve on 0.0.0.0 without workers (worker runs them)", s.Command, s.Environment)
	}
	if s := arch["worker"]; !slices.Equal(s.Command, []string{"worker"}) {
		t.Errorf("worker runs %v", s.Command)
	}
	// serve and worker are checked by the binary itself (the image has no shell), with the
	// subcommand that checks that kind of process.
	for _, name := range []string{"serve", "worker"} {
		h := arch[name].Healthcheck
		if want := []string{"CMD", image.BinaryPath, "healthcheck", name}; h == nil || !slices.Equal(h.Test, want) {
			t.Errorf("%s: health check %+v, want %v", name, h, want)
		}
	}

	// The Garage island: three nodes, each with its own configuration file whose
	// rpc_public_addr is the node's address on the island network.
	if len(garages) != 3 {
		t.Fatalf("Garage services %v, want 3", garages)
	}
	var rf []string
	for _, name := range garages {
		s := c.Services[name]
		if s.Healthcheck == nil {
			t.Errorf("%s: no health check", name)
		}
		var cfgFile string
		for _, v := range s.Volumes {
			if src, ok := strings.CutSuffix(v, ":/etc/garage.toml:ro"); ok {
				cfgFile = src
			}
		}
		if cfgFile == "" {
			t.Errorf("%s: no garage.toml mounted read-only at /etc/garage.toml", name)
			continue
		}
		toml, err := os.ReadFile(filepath.Join("compose", cfgFile))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var nets map[string]struct {
			IPv4 string `yaml:"ipv4_address"`
		}
		if err := s.Networks.Decode(&nets); err != nil || nets["island"].IPv4 == "" {
			t.Errorf("%s: no fixed address on the island network (%v)", name, err)
			continue
		}
		if want := `rpc_public_addr = "` + nets["island"].IPv4 + `:3901"`; !strings.Contains(string(toml), want) {
			t.Errorf("%s: %s lacks %s", name, cfgFile, want)
		}
		for key, sec := range map[string]string{"rpc_secret_file": "garage-rpc-secret", "admin_token_file": "garage-admin-token"} {
			want := key + ` = "/run/secrets/` + sec + `"`
			if !strings.Contains(string(toml), want) || !slices.Contains(s.Secrets, sec) {
				t.Errorf("%s: %s lacks %s, or the service does not mount secret %s", name, cfgFile, want, sec)
			}
		}
		rf = append(rf, regexp.MustCompile(`(?m)^replication_factor = \d+$`).FindString(string(toml)))
	}
	if rf[0] != "replication_factor = 3" || rf[1] != rf[0] || rf[2] != rf[0] {
		t.Errorf("replication factors %q: Garage needs the same one on every node, 3 for a 3-zone island", rf)
	}
	// The file and the docs say Garage is not exercised by the tests.
	for _, f := range []string{"compose/compose.yaml", "compose/README.md", "../docs/deploy.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?i)not exercised by the tests`).Match(b) {
			t.Errorf("%s does not say that the compose deployment (Garage) is not exercised by the tests", f)
		}
	}
}
