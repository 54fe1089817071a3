package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/chatons/archipelago/internal/quota"
)

// Resource is one kind of API object the command line can get, describe and create. Paths
// may hold "{parent}" (the object it lives under, e.g. a key's vault) and "{id}".
type Resource struct {
	Name    string // plural, the command name: vaults
	Summary string
	// Parent names the flag that chooses the object this one lives under ("vault" for keys);
	// empty for top-level resources.
	Parent   string
	ListPath string
	ListKey  string
	GetPath  string
	// Filters are the list's query parameters offered as flags (--member, --status…).
	Filters []Filter
	Columns []Column
	// Related are shown by describe after the object.
	Related []Related
	// Create is nil when the command line cannot create this resource.
	Create *Create
}

// Filter is a list query parameter offered as a flag.
type Filter struct {
	Flag, Query, Usage string
}

// Related is a list or object shown by describe: Path with "{id}" replaced by the object's id.
type Related struct {
	Title   string
	Path    string
	ListKey string // empty: an object
	Limit   int
	Columns []Column
}

// Create says how to create a resource: the path to POST to and the flags that fill the body.
type Create struct {
	Path   string
	Fields []BodyField
	// SecretNote is printed (to stderr) after a creation whose answer holds a once-shown secret.
	SecretNote string
}

// Kind is how a flag's text becomes a JSON value.
type Kind int

// Kinds of body fields.
const (
	String Kind = iota
	Int
	Size // 50GB, 1.5TB, 10GiB or a number of bytes
	File // the field's value is read from the named file (secrets never on the command line)
)

// BodyField is one flag of a create command and the JSON field it fills.
type BodyField struct {
	Flag, JSON string
	Kind       Kind
	Required   bool
	Usage      string
}

// Resources is every resource of the command line, in the order help lists them.
func Resources() []Resource {
	return []Resource{
		{
			Name: "vaults", Summary: "vaults (buckets) of your members", ListPath: "/v1/vaults", ListKey: "vaults", GetPath: "/v1/vaults/{id}",
			Filters: []Filter{{"member", "member", "a member's id or slug"}, {"island-id", "island_id", "an island's id"}, {"status", "status", "pending, active or deleting"}},
			Columns: []Column{{"ID", "id"}, {"MEMBER", "member_slug"}, {"NAME", "name"}, {"ISLAND", "island_name"}, {"STATUS", "status"},
				{"QUOTA", "quota_bytes"}, {"USED", "usage_bytes"}, {"LEVEL", "usage_level"}},
			Related: []Related{
				{Title: "Keys", Path: "/v1/vaults/{id}/keys", ListKey: "keys", Columns: keyColumns},
				{Title: "Restic repositories", Path: "/v1/repositories?vault_id={id}", ListKey: "repositories", Limit: 50, Columns: repositoryColumns},
				{Title: "Protection", Path: "/v1/vaults/{id}/protection"},
			},
			Create: &Create{Path: "/v1/vaults", Fields: []BodyField{
				{"member", "member", String, true, "the member's id or slug"},
				{"name", "name", String, true, "bucket name: 3-63 lower-case letters, digits, hyphens and dots"},
				{"quota", "quota_bytes", Size, true, "quota, e.g. 500GB, 1TB or 10GiB"},
				{"island-id", "island_id", Int, false, "island to place it on (default: automatic placement)"},
				{"max-objects", "max_objects", Int, false, "maximum number of objects"},
				{"idempotency-key", "idempotency_key", String, false, "a repeated create with the same key returns the first vault"},
			}},
		},
		{
			Name: "keys", Summary: "S3 keys of a vault (secrets are shown once, at creation)", Parent: "vault",
			ListPath: "/v1/vaults/{parent}/keys", ListKey: "keys", GetPath: "/v1/vaults/{parent}/keys/{id}", Columns: keyColumns,
			Create: &Create{Path: "/v1/vaults/{parent}/keys", Fields: []BodyField{
				{"name", "name", String, true, "a name for the key (e.g. the machine that backs up)"},
				{"expires-at", "expires_at", String, false, "expiry time (RFC 3339)"},
			}, SecretNote: "The secret access key above is shown once: Archipelago does not keep it."},
		},
		{
			Name: "repositories", Summary: "restic repositories whose restores are tested", ListPath: "/v1/repositories", ListKey: "repositories",
			GetPath: "/v1/repositories/{id}",
			Filters: []Filter{{"member", "member", "a member's id or slug"}, {"vault-id", "vault_id", "a vault's id"}},
			Columns: repositoryColumns,
			Related: []Related{{Title: "Recent restore tests", Path: "/v1/restore-tests?repository_id={id}", ListKey: "runs", Limit: 10, Columns: testColumns}},
			Create: &Create{Path: "/v1/repositories", Fields: []BodyField{
				{"vault-id", "vault_id", Int, true, "the vault holding the repository"},
				{"name", "name", String, true, "a name for the repository"},
				{"path", "path", String, true, "prefix in the bucket, such as restic/web01"},
				{"mode", "mode", String, false, "blind (default), attested or full (see docs/restore-tests.md)"},
				{"password-file", "password", File, false, "file holding the repository password (full mode only)"},
				{"full-mode-consent", "full_mode_consent", String, false, "full mode only: the version of the statement you accept (GET /v1/full-mode-statement)"},
			}},
		},
		{
			Name: "tests", Summary: "restore tests (runs); create starts one now", ListPath: "/v1/restore-tests", ListKey: "runs",
			GetPath: "/v1/restore-tests/{id}",
			Filters: []Filter{{"member", "member", "a member's id or slug"}, {"repository-id", "repository_id", "a repository's id"},
				{"status", "status", "queued, running, passed, failed, error…"}},
			Columns: testColumns,
			Create:  &Create{Path: "/v1/repositories/{parent}/tests"},
		},
		{
			Name: "reports", Summary: "restore-test reports", ListPath: "/v1/reports", ListKey: "reports", GetPath: "/v1/reports/{id}",
			Filters: []Filter{{"member", "member", "a member's id or slug"}, {"scope", "scope", "member or federation"}},
			Columns: []Column{{"ID", "id"}, {"SCOPE", "scope"}, {"MEMBER", "member_slug"}, {"PERIOD", "period"},
				{"START", "period_start"}, {"END", "period_end"}, {"GENERATED", "generated_at"}},
			Create: &Create{Path: "/v1/reports", Fields: []BodyField{
				{"scope", "scope", String, false, "member or federation"},
				{"member", "member", String, false, "the member's id or slug (member reports)"},
				{"period", "period", String, false, "weekly, monthly or custom"},
				{"start", "start", String, false, "start of a custom period (RFC 3339)"},
				{"end", "end", String, false, "end of a custom period (RFC 3339)"},
			}},
		},
		{
			Name: "members", Summary: "member organisations", ListPath: "/v1/members", ListKey: "members", GetPath: "/v1/members/{id}",
			Filters: []Filter{{"q", "q", "substring of the slug or name"}},
			Columns: []Column{{"ID", "id"}, {"SLUG", "slug"}, {"NAME", "name"}, {"WEBSITE", "website"}},
		},
		{
			Name: "islands", Summary: "Garage islands", ListPath: "/v1/islands", ListKey: "islands", GetPath: "/v1/islands/{id}",
			Columns: []Column{{"ID", "id"}, {"NAME", "name"}, {"STATUS", "status"}, {"REPLICATION", "replication_factor"}, {"POLLED", "last_polled_at"}},
		},
	}
}

var (
	keyColumns = []Column{{"ID", "id"}, {"NAME", "name"}, {"ACCESS KEY", "access_key_id"}, {"STATE", "state"},
		{"CREATED", "created_at"}, {"EXPIRES", "expires_at"}}
	repositoryColumns = []Column{{"ID", "id"}, {"NAME", "name"}, {"VAULT", "vault_name"}, {"PATH", "path"}, {"MODE", "mode"},
		{"LAST", "last.status"}, {"FINISHED", "last.finished_at"}, {"NEXT", "next_run_at"}}
	testColumns = []Column{{"ID", "id"}, {"REPOSITORY", "repository_id"}, {"STATUS", "status"}, {"TRIGGER", "trigger"},
		{"QUEUED", "queued_at"}, {"FINISHED", "finished_at"}, {"REASON", "reason"}}
)

// ResourceByName finds a resource by its command name.
func ResourceByName(name string) (Resource, bool) {
	for _, r := range Resources() {
		if r.Name == name {
			return r, true
		}
	}
	return Resource{}, false
}

// ErrParentMissing is returned when a resource living under another is used without it.
var ErrParentMissing = errors.New("parent missing")

// expand fills {parent} and {id} (path-escaped).
func expand(path, parent, id string) string {
	path = strings.ReplaceAll(path, "{parent}", url.PathEscape(parent))
	return strings.ReplaceAll(path, "{id}", url.PathEscape(id))
}

// splitQuery separates a path's own query ("/v1/x?a={id}") so it is encoded properly.
func splitQuery(path string) (string, url.Values) {
	p, q, ok := strings.Cut(path, "?")
	if !ok {
		return path, url.Values{}
	}
	v, _ := url.ParseQuery(q)
	return p, v
}

// ListAll lists a resource with filters (query parameter → value), every page unless max > 0.
func (c *Client) ListAll(ctx context.Context, r Resource, parent string, filters url.Values, max int) ([]Object, bool, error) {
	if r.Parent != "" && parent == "" {
		return nil, false, fmt.Errorf("%w: --%s is required for %s", ErrParentMissing, r.Parent, r.Name)
	}
	return c.List(ctx, expand(r.ListPath, parent, ""), r.ListKey, filters, max)
}

// GetOne reads one object of a resource.
func (c *Client) GetOne(ctx context.Context, r Resource, parent, id string) (Object, error) {
	if r.Parent != "" && parent == "" {
		return nil, fmt.Errorf("%w: --%s is required for %s", ErrParentMissing, r.Parent, r.Name)
	}
	return c.Get(ctx, expand(r.GetPath, parent, id), nil)
}

// Describe reads one object and its related lists and objects, under "related".
func (c *Client) Describe(ctx context.Context, r Resource, parent, id string) (Object, error) {
	o, err := c.GetOne(ctx, r, parent, id)
	if err != nil {
		return nil, err
	}
	rel := Object{}
	for _, x := range r.Related {
		path, q := splitQuery(expand(x.Path, parent, id))
		if x.ListKey == "" {
			obj, err := c.Get(ctx, path, q)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", x.Title, err)
			}
			rel[x.Title] = obj
			continue
		}
		if x.Limit > 0 {
			q.Set("limit", strconv.Itoa(x.Limit))
		}
		items, _, err := c.List(ctx, path, x.ListKey, q, x.Limit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.Title, err)
		}
		list := make([]any, len(items))
		for i, it := range items {
			list[i] = it
		}
		rel[x.Title] = list
	}
	if len(rel) > 0 {
		o["related"] = rel
	}
	return o, nil
}

// CreateOne posts a new object; values are the flags' texts by JSON field, already converted.
func (c *Client) CreateOne(ctx context.Context, r Resource, parent string, body Object) (Object, error) {
	if r.Create == nil {
		return nil, fmt.Errorf("%s cannot be created from the command line", r.Name)
	}
	if r.Create.Path != "" && strings.Contains(r.Create.Path, "{parent}") && parent == "" {
		flag := r.Parent
		if flag == "" {
			flag = "repository"
		}
		return nil, fmt.Errorf("%w: --%s is required to create %s", ErrParentMissing, flag, r.Name)
	}
	var b any
	if len(body) > 0 || len(r.Create.Fields) > 0 {
		b = body
	}
	o, _, err := c.Post(ctx, expand(r.Create.Path, parent, ""), b)
	return o, err
}

// ParseValue converts a flag's text into the JSON value of its field kind.
func ParseValue(f BodyField, text string, readFile func(string) ([]byte, error)) (any, error) {
	switch f.Kind {
	case Int:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a whole number", f.Flag, text)
		}
		return n, nil
	case Size:
		n, err := quota.ParseBytes(text)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", f.Flag, err)
		}
		return n, nil
	case File:
		b, err := readFile(text)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", f.Flag, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return text, nil
}
