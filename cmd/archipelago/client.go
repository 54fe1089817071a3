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
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/chatons/archipelago/internal/client"
	"github.com/chatons/archipelago/internal/i18n"
)

// defaultAPIURL is where the client commands look for a server without ARCHIPELAGO_API_URL:
// the sandbox's address.
const defaultAPIURL = "http://127.0.0.1:8080"

// resourceCommand is the client command of one API resource: get, describe, create, its
// help and table headers in the session's language (the catalog's client.* texts).
func resourceCommand(r client.Resource, p *i18n.Printer) command {
	r = localized(r, p)
	verbs := p.T("client.usage.verbs_short")
	if r.Create != nil {
		verbs = p.T("client.usage.verbs_create")
	}
	return command{
		summary: r.Summary + " (" + verbs + ")",
		usage:   resourceUsage(r, p),
		run: func(ctx context.Context, env *cliEnv, args []string) error {
			return runResource(ctx, env, r, args)
		},
	}
}

// localized is r with its texts (summary, flag help, once-shown secret note, table headers)
// in p's language. Related objects keep their titles: they are keys of describe's JSON.
func localized(r client.Resource, p *i18n.Printer) client.Resource {
	if p == nil {
		return r
	}
	key := "client." + r.Name + "."
	r.Summary = p.T(key + "summary")
	r.Filters = slices.Clone(r.Filters)
	for i, f := range r.Filters {
		r.Filters[i].Usage = p.T(key + "filter." + f.Flag)
	}
	r.Columns = localizedColumns(r.Columns, p)
	if r.Create != nil {
		c := *r.Create
		c.Fields = slices.Clone(c.Fields)
		for i, f := range c.Fields {
			c.Fields[i].Usage = p.T(key + "create." + f.Flag)
		}
		if c.SecretNote != "" {
			c.SecretNote = p.T(key + "secret_note")
		}
		r.Create = &c
	}
	return r
}

// localizedColumns translates table headers: "ACCESS KEY" is client.column.access_key ("ID"
// is client.column.identifier: go-i18n reserves the key "id").
func localizedColumns(cols []client.Column, p *i18n.Printer) []client.Column {
	out := slices.Clone(cols)
	for i, c := range out {
		k := strings.ToLower(strings.ReplaceAll(c.Header, " ", "_"))
		if k == "id" {
			k = "identifier"
		}
		out[i].Header = p.T("client.column." + k)
	}
	return out
}

func resourceUsage(r client.Resource, p *i18n.Printer) string {
	var b strings.Builder
	parent := ""
	if r.Parent != "" {
		parent = " --" + r.Parent + " ID"
	}
	line := func(id string, args ...any) { b.WriteString(p.T(id, args...) + "\n") }
	line("client.usage.get", "Name", r.Name, "Parent", parent)
	line("client.usage.describe", "Name", r.Name, "Parent", parent)
	if r.Create != nil {
		cp := parent
		if cp == "" && strings.Contains(r.Create.Path, "{parent}") {
			cp = " --repository ID"
		}
		line("client.usage.create", "Name", r.Name, "Parent", cp)
	}
	fmt.Fprintf(&b, "\n%s.\n\n", upperFirst(r.Summary))
	line("client.usage.verbs")
	b.WriteString("\n")
	line("client.usage.common", "URL", defaultAPIURL)
	if r.Parent != "" {
		fmt.Fprintf(&b, "  --%-19s %s\n", r.Parent+" ID", p.T("client.usage.parent", "Parent", r.Parent))
	}
	if len(r.Filters) > 0 {
		b.WriteString("\n")
		line("client.usage.filters")
		for _, f := range r.Filters {
			fmt.Fprintf(&b, "  --%-19s %s\n", f.Flag+" V", f.Usage)
		}
	}
	if r.Create != nil {
		b.WriteString("\n")
		line("client.usage.create_head")
		if r.Parent == "" && strings.Contains(r.Create.Path, "{parent}") {
			line("client.usage.create_repository")
		}
		for _, f := range r.Create.Fields {
			req := ""
			if f.Required {
				req = p.T("client.usage.required")
			}
			fmt.Fprintf(&b, "  --%-19s %s%s\n", f.Flag+" V", f.Usage, req)
		}
		line("client.usage.set")
	}
	b.WriteString("\n" + p.T("client.usage.token"))
	return b.String()
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runResource(ctx context.Context, env *cliEnv, r client.Resource, args []string) error {
	if len(args) == 0 {
		return errors.New(env.t("client.need_verb"))
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
		return errors.New(env.t("client.see_help", "Error", err.Error(), "Name", r.Name))
	}
	switch output {
	case "table", "json", "yaml":
	default:
		return errors.New(env.t("client.bad_output", "Value", strconv.Quote(output)))
	}
	c, err := newClient(env, *apiURL, *tokenFile)
	if err != nil {
		return err
	}
	switch verb {
	case "get", "list", "ls":
		if len(pos) > 1 {
			return errors.New(env.t("client.get_one_id", "Args", strconv.Quote(strings.Join(pos, " "))))
		}
		if len(pos) == 1 {
			o, err := c.GetOne(ctx, r, parent, pos[0])
			if err != nil {
				return parentMissing(env, err, parentFlag, r.Name)
			}
			if output == "table" {
				return client.Render(env.stdout, env.p, output, []client.Object{o}, r.Columns)
			}
			return client.Render(env.stdout, env.p, output, o, nil)
		}
		q := url.Values{}
		for k, v := range filters {
			if *v != "" {
				q.Set(k, *v)
			}
		}
		if *limit < 0 {
			return errors.New(env.t("client.bad_limit"))
		}
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(min(*limit, 500)))
		}
		items, more, err := c.ListAll(ctx, r, parent, q, *limit)
		if err != nil {
			return parentMissing(env, err, parentFlag, r.Name)
		}
		if err := client.Render(env.stdout, env.p, output, items, r.Columns); err != nil {
			return err
		}
		if more {
			fmt.Fprintln(env.stderr, env.t("client.more", "Name", r.Name))
		}
		return nil
	case "describe", "show":
		if len(pos) != 1 {
			return errors.New(env.t("client.describe_one_id"))
		}
		o, err := c.Describe(ctx, r, parent, pos[0])
		if err != nil {
			return err
		}
		return client.Render(env.stdout, env.p, output, o, nil)
	case "create":
		if r.Create == nil {
			return errors.New(env.t("client.not_creatable", "Name", r.Name))
		}
		if len(pos) != 0 {
			return errors.New(env.t("client.create_flags_only", "Args", strconv.Quote(strings.Join(pos, " "))))
		}
		body := client.Object{}
		for _, f := range r.Create.Fields {
			text := *fields[f.Flag]
			if text == "" {
				if f.Required {
					return errors.New(env.t("client.field_required", "Flag", f.Flag, "Usage", f.Usage))
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
				return errors.New(env.t("client.bad_set", "Value", strconv.Quote(s)))
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
			return parentMissing(env, err, parentFlag, r.Name)
		}
		if err := client.Render(env.stdout, env.p, output, o, nil); err != nil {
			return err
		}
		if r.Create.SecretNote != "" {
			fmt.Fprintln(env.stderr, r.Create.SecretNote)
		}
		return nil
	}
	return errors.New(env.t("client.unknown_verb", "Verb", strconv.Quote(verb)))
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
// parentMissing says client.ErrParentMissing, and an API error's field, in the session's
// language (the API's message already is: the client sends Accept-Language).
func parentMissing(env *cliEnv, err error, flag, name string) error {
	if errors.Is(err, client.ErrParentMissing) {
		return errors.New(env.t("client.parent_missing", "Flag", flag, "Name", name))
	}
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Field != "" {
		return errors.New(env.t("client.api_error_field", "Status", ae.Status, "Code", ae.Code, "Message", ae.Message, "Field", ae.Field))
	}
	return err
}

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
			return nil, fmt.Errorf("%s", env.t("client.token_file", "Error", err.Error()))
		}
		token = string(b)
	}
	if strings.TrimSpace(token) == "" {
		return nil, errors.New(env.t("client.no_token"))
	}
	c, err := client.New(apiURL, token)
	if c != nil && env.p != nil {
		c.Language = string(env.p.Lang()) // the server's messages in the session's language
	}
	return c, err
}
