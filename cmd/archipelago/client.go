package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/chatons/archipelago/internal/client"
)

// defaultAPIURL is where the client commands look for a server without ARCHIPELAGO_API_URL:
// the sandbox's address.
const defaultAPIURL = "http://127.0.0.1:8080"

// resourceCommand is the client command of one API resource: get, describe, create.
func resourceCommand(r client.Resource) command {
	return command{
		summary: r.Summary + " (get, describe" + map[bool]string{true: ", create", false: ""}[r.Create != nil] + ")",
		usage:   resourceUsage(r),
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			return runResource(ctx, env, r, args)
		},
	}
}

func resourceUsage(r client.Resource) string {
	var b strings.Builder
	parent := ""
	if r.Parent != "" {
		parent = " --" + r.Parent + " ID"
	}
	fmt.Fprintf(&b, "Usage: archipelago %s get [ID]%s [-o table|json|yaml] [--limit N] [filters]\n", r.Name, parent)
	fmt.Fprintf(&b, "       archipelago %s describe ID%s [-o table|json|yaml]\n", r.Name, parent)
	if r.Create != nil {
		cp := parent
		if cp == "" && strings.Contains(r.Create.Path, "{parent}") {
			cp = " --repository ID"
		}
		fmt.Fprintf(&b, "       archipelago %s create%s [flags] [--set FIELD=VALUE …]\n", r.Name, cp)
	}
	fmt.Fprintf(&b, "\n%s.\n\n", upperFirst(r.Summary))
	b.WriteString("get lists every page (or shows one object with an ID); describe adds related objects.\n\n")
	b.WriteString("Common flags:\n")
	b.WriteString("  -o, --output FORMAT   table (default), json or yaml\n")
	b.WriteString("  --limit N             get: at most N objects (default 0: all pages)\n")
	b.WriteString("  --api-url URL         the server (default $ARCHIPELAGO_API_URL, else " + defaultAPIURL + ")\n")
	b.WriteString("  --token-file FILE     a file holding an API token (default $ARCHIPELAGO_API_TOKEN or $ARCHIPELAGO_API_TOKEN_FILE)\n")
	if r.Parent != "" {
		fmt.Fprintf(&b, "  --%-19s the %s this object belongs to (required)\n", r.Parent+" ID", r.Parent)
	}
	if len(r.Filters) > 0 {
		b.WriteString("\nFilters (get):\n")
		for _, f := range r.Filters {
			fmt.Fprintf(&b, "  --%-19s %s\n", f.Flag+" V", f.Usage)
		}
	}
	if r.Create != nil {
		b.WriteString("\nCreate:\n")
		if r.Parent == "" && strings.Contains(r.Create.Path, "{parent}") {
			b.WriteString("  --repository ID       the repository to test now (required)\n")
		}
		for _, f := range r.Create.Fields {
			req := ""
			if f.Required {
				req = " (required)"
			}
			fmt.Fprintf(&b, "  --%-19s %s%s\n", f.Flag+" V", f.Usage, req)
		}
		b.WriteString("  --set FIELD=VALUE     any other field of the request body (VALUE as JSON when it parses, else text)\n")
	}
	b.WriteString("\nThe API token is created in the portal (Account → API tokens) or with POST /v1/tokens.")
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runResource(ctx context.Context, env *cliEnv, r client.Resource, args []string) error {
	if len(args) == 0 {
		return errors.New("a verb is needed: get, describe or create (see --help)")
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet(r.Name+" "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var output string
	fs.StringVar(&output, "o", "table", "")
	fs.StringVar(&output, "output", "table", "")
	limit := fs.Int("limit", 0, "")
	apiURL := fs.String("api-url", "", "")
	tokenFile := fs.String("token-file", "", "")
	parentFlag := r.Parent
	if parentFlag == "" && r.Create != nil && strings.Contains(r.Create.Path, "{parent}") {
		parentFlag = "repository"
	}
	var parent string
	if parentFlag != "" {
		fs.StringVar(&parent, parentFlag, "", "")
	}
	// A flag may be both a filter of get and a field of create (--member): defined once.
	texts := map[string]*string{}
	text := func(name string) *string {
		if p, ok := texts[name]; ok {
			return p
		}
		texts[name] = fs.String(name, "", "")
		return texts[name]
	}
	filters := map[string]*string{}
	for _, f := range r.Filters {
		filters[f.Query] = text(f.Flag)
	}
	fields := map[string]*string{}
	var sets multiFlag
	if r.Create != nil {
		for _, f := range r.Create.Fields {
			fields[f.Flag] = text(f.Flag)
		}
		fs.Var(&sets, "set", "")
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return fmt.Errorf("%w (see archipelago %s --help)", err, r.Name)
	}
	switch output {
	case "table", "json", "yaml":
	default:
		return fmt.Errorf("-o %q: want table, json or yaml", output)
	}
	c, err := newClient(env, *apiURL, *tokenFile)
	if err != nil {
		return err
	}
	switch verb {
	case "get", "list", "ls":
		if len(pos) > 1 {
			return fmt.Errorf("get takes at most one ID, got %q", strings.Join(pos, " "))
		}
		if len(pos) == 1 {
			o, err := c.GetOne(ctx, r, parent, pos[0])
			if err != nil {
				return err
			}
			if output == "table" {
				return client.Render(env.stdout, output, []client.Object{o}, r.Columns)
			}
			return client.Render(env.stdout, output, o, nil)
		}
		q := url.Values{}
		for k, v := range filters {
			if *v != "" {
				q.Set(k, *v)
			}
		}
		if *limit < 0 {
			return errors.New("--limit: must be 0 (all) or more")
		}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(min(*limit, 500)))
		}
		items, more, err := c.ListAll(ctx, r, parent, q, *limit)
		if err != nil {
			return err
		}
		if err := client.Render(env.stdout, output, items, r.Columns); err != nil {
			return err
		}
		if more {
			fmt.Fprintf(env.stderr, "(more %s exist: --limit 0 lists them all)\n", r.Name)
		}
		return nil
	case "describe", "show":
		if len(pos) != 1 {
			return errors.New("describe takes one ID")
		}
		o, err := c.Describe(ctx, r, parent, pos[0])
		if err != nil {
			return err
		}
		return client.Render(env.stdout, output, o, nil)
	case "create":
		if r.Create == nil {
			return fmt.Errorf("%s cannot be created from the command line (use the portal or the API)", r.Name)
		}
		if len(pos) != 0 {
			return fmt.Errorf("create takes flags only, not %q", strings.Join(pos, " "))
		}
		body := client.Object{}
		for _, f := range r.Create.Fields {
			text := *fields[f.Flag]
			if text == "" {
				if f.Required {
					return fmt.Errorf("--%s is required: %s", f.Flag, f.Usage)
				}
				continue
			}
			v, err := client.ParseValue(f, text, os.ReadFile)
			if err != nil {
				return err
			}
			body[f.JSON] = v
		}
		for _, s := range sets {
			k, v, ok := strings.Cut(s, "=")
			if !ok || k == "" {
				return fmt.Errorf("--set %q: want FIELD=VALUE", s)
			}
			var j any
			if json.Unmarshal([]byte(v), &j) == nil {
				body[k] = j
			} else {
				body[k] = v
			}
		}
		o, err := c.CreateOne(ctx, r, parent, body)
		if err != nil {
			return err
		}
		if err := client.Render(env.stdout, output, o, nil); err != nil {
			return err
		}
		if r.Create.SecretNote != "" {
			fmt.Fprintln(env.stderr, r.Create.SecretNote)
		}
		return nil
	}
	return fmt.Errorf("unknown verb %q: want get, describe or create", verb)
}

// parseInterspersed parses flags that may come before or after positional arguments
// (`vaults get 12 -o json`), and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newClient builds the API client from flags, then ARCHIPELAGO_API_URL and
// ARCHIPELAGO_API_TOKEN / ARCHIPELAGO_API_TOKEN_FILE.
func newClient(env *cliEnv, apiURL, tokenFile string) (*client.Client, error) {
	if apiURL == "" {
		apiURL, _ = env.getenv("ARCHIPELAGO_API_URL")
	}
	if apiURL == "" {
		apiURL = defaultAPIURL
	}
	if tokenFile == "" {
		tokenFile, _ = env.getenv("ARCHIPELAGO_API_TOKEN_FILE")
	}
	token, _ := env.getenv("ARCHIPELAGO_API_TOKEN")
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("API token file: %w", err)
		}
		token = string(b)
	}
	return client.New(apiURL, token)
}
