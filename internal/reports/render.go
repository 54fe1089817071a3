package reports

import (
	"bytes"
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"

	"github.com/chatons/archipelago/internal/i18n"
	"github.com/chatons/archipelago/internal/paging"
	"github.com/chatons/archipelago/web"
)

//go:embed templates
var templatesFS embed.FS

// CSS is the report stylesheet, web/static/report.css: the portal links it and standalone
// files inline it, so both show a report with the same rules.
var CSS = func() string {
	b, err := web.Static.ReadFile("static/report.css")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// tmpl is parsed once with the functions of an English rendering; each rendering clones
// it with the functions of its reader's language (language.go).
var tmpl = template.Must(template.New("report").Funcs(speaker{}.funcs()).ParseFS(templatesFS, "templates/body.html", "templates/standalone.html"))

// View is what the HTML templates receive: the report and, once stored, its id, hash and
// audit entry; and who reads it: the language (Printer; nil for English) and the time zone
// (Location; nil for UTC) its texts, dates and sizes are written in.
type View struct {
	R        Report
	ID       int64
	SHA256   string
	AuditSeq int64
	CSS      template.CSS
	Printer  *i18n.Printer
	Location *time.Location
	// members is the page of a v2 federation report's members table the view shows
	// (PageMembers); nil: every member (the standalone file, the exports).
	members []MemberLine
}

// PageMembers limits the members table of a v2 federation report's body to one page of req
// (a cursor after a position in the document's order, worst first) and returns the cursor of
// the next page ("" on the last). The stored document never changes, so a position is a
// stable cursor; one that is not a position of this report is paging.ErrBadCursor.
func (v *View) PageMembers(req paging.Request) (string, error) {
	size, err := req.Size()
	if err != nil {
		return "", err
	}
	start := 0
	var after int
	if ok, err := req.Keys(&after); err != nil {
		return "", err
	} else if ok {
		if after < 0 || after >= len(v.R.Members)-1 {
			return "", paging.ErrBadCursor
		}
		start = after + 1
	}
	end := min(start+size, len(v.R.Members))
	v.members = v.R.Members[start:end:end]
	if v.members == nil {
		v.members = []MemberLine{}
	}
	if end < len(v.R.Members) {
		return paging.Encode(end - 1), nil
	}
	return "", nil
}

// MemberLines is what the members table shows: the page PageMembers chose, else every line.
func (v View) MemberLines() []MemberLine {
	if v.members != nil {
		return v.members
	}
	return v.R.Members
}

// execute renders the named template of v in v's language.
func execute(w io.Writer, name string, v View) error {
	t, err := tmpl.Clone()
	if err != nil {
		return err
	}
	return t.Funcs(speakerOf(v).funcs()).ExecuteTemplate(w, name, v)
}

// federationV2 is the shape of a v2 federation document: no record per repository (no
// repositories, vaults, pledges, key events or matrix), a line of counts per member.
type federationV2 struct {
	Schema      string            `json:"schema"`
	Scope       string            `json:"scope"`
	Member      *MemberRef        `json:"member"` // null
	Period      Period            `json:"period"`
	GeneratedAt time.Time         `json:"generated_at"`
	Checkpoint  Checkpoint        `json:"checkpoint"`
	Summary     Summary           `json:"summary"`
	Totals      *FederationTotals `json:"totals"`
	Members     []MemberLine      `json:"members"`
	Islands     []Island          `json:"islands"`
	Incidents   []Incident        `json:"incidents"`
}

// Encode returns the report's JSON document, exactly as stored and hashed: a v1 report
// (member reports, and federation reports stored before v2) with every v1 field, a v2
// federation report in its own shape.
func Encode(r Report) ([]byte, error) {
	var doc any = r
	if r.Schema == SchemaV2 {
		if r.Totals == nil {
			r.Totals = &FederationTotals{}
		}
		if r.Members == nil {
			r.Members = []MemberLine{}
		}
		doc = federationV2{Schema: r.Schema, Scope: r.Scope, Member: r.Member, Period: r.Period, GeneratedAt: r.GeneratedAt,
			Checkpoint: r.Checkpoint, Summary: r.Summary, Totals: r.Totals, Members: r.Members, Islands: r.Islands, Incidents: r.Incidents}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode reads a stored document of either version. The lists a version does not carry are
// empty, not null, so templates and tables need no special case.
func Decode(doc []byte) (Report, error) {
	var r Report
	if err := json.Unmarshal(doc, &r); err != nil {
		return r, fmt.Errorf("decode report: %w", err)
	}
	if r.Schema == SchemaV2 {
		r.Repositories, r.Vaults, r.Pledges, r.KeyEvents, r.Matrix = []Repository{}, []Vault{}, []Pledge{}, []KeyEvent{}, []MatrixRow{}
		if r.Totals == nil {
			r.Totals = &FederationTotals{}
		}
		if r.Members == nil {
			r.Members = []MemberLine{}
		}
	}
	return r, nil
}

// BodyHTML renders the report as an HTML fragment (for the portal's viewer).
func BodyHTML(v View) (template.HTML, error) {
	var buf bytes.Buffer
	if err := execute(&buf, "body", v); err != nil {
		return "", fmt.Errorf("render report: %w", err)
	}
	return template.HTML(buf.String()), nil
}

// StandaloneHTML renders the report as one self-contained, printable HTML file (styles
// inlined, charts as inline SVG, no script, no external resource).
func StandaloneHTML(w io.Writer, v View) error {
	v.CSS = template.CSS(CSS)
	var buf bytes.Buffer
	if err := execute(&buf, "standalone.html", v); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Tables lists the CSV tables of each scope's new reports; the first is the default.
var Tables = map[string][]string{
	ScopeMember:     {"repositories", "failures", "tests", "vaults", "pledges", "key_events"},
	ScopeFederation: {"members", "islands", "incidents"},
}

// tablesV1Federation are the CSV tables of a federation report stored as v1.
var tablesV1Federation = []string{"matrix", "repositories", "islands", "incidents"}

// TablesFor lists the CSV tables of a report of this scope and schema; the first is the default.
func TablesFor(scope, schema string) []string {
	if scope == ScopeFederation && schema == SchemaV1 {
		return tablesV1Federation
	}
	return Tables[scope]
}

func tstr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func istr(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func fstr(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

func bstr(p *bool) string {
	if p == nil {
		return ""
	}
	return strconv.FormatBool(*p)
}

// ErrNoTable means the CSV table asked for does not exist for the report's scope.
type ErrNoTable struct{ Table, Scope string }

func (e ErrNoTable) Error() string {
	return fmt.Sprintf("a %s report has no table %q", e.Scope, e.Table)
}

// CSV writes one table of the report (Tables lists them; "" is the scope's first), its
// header row in English.
func CSV(w io.Writer, r Report, table string) error { return CSVIn(w, r, table, nil) }

// CSVIn is CSV with the header row in p's language (nil: English); values stay
// machine-friendly whatever the language (RFC 3339 times in UTC, plain numbers, codes).
func CSVIn(w io.Writer, r Report, table string, p *i18n.Printer) error {
	tables := TablesFor(r.Scope, r.Schema)
	if len(tables) == 0 {
		return ErrNoTable{table, r.Scope}
	}
	if table == "" {
		table = tables[0]
	}
	cw := csv.NewWriter(w)
	var rows [][]string
	add := func(rec ...string) { rows = append(rows, rec) }
	switch table {
	case "repositories":
		add("member", "repository_id", "repository", "vault", "island", "mode", "status", "last_outcome", "last_test_at", "last_success_at",
			"tests", "passed", "warning", "failed", "error", "pass_rate", "rpo_seconds", "worst_snapshot_age_seconds", "rpo_met",
			"rto_seconds", "projected_restore_seconds", "rto_met", "size_bytes", "deletions_seen")
		repos := r.Repositories
		if r.Scope == ScopeFederation {
			repos = nil
			for _, row := range r.Matrix {
				for _, c := range row.Repositories {
					repos = append(repos, Repository{ID: c.ID, Name: c.Name, Member: row.Member.Slug, Mode: c.Mode, Status: c.Status, LastTestAt: c.LastTestAt})
				}
			}
		}
		for _, x := range repos {
			add(x.Member, strconv.FormatInt(x.ID, 10), x.Name, x.Vault, x.Island, x.Mode, x.Status, x.LastOutcome, tstr(x.LastTestAt),
				tstr(x.LastSuccessAt), strconv.Itoa(x.Tests.Total), strconv.Itoa(x.Tests.Passed), strconv.Itoa(x.Tests.Warning),
				strconv.Itoa(x.Tests.Failed), strconv.Itoa(x.Tests.Error), fstr(x.Tests.PassRate), strconv.FormatInt(x.RPOSeconds, 10),
				istr(x.WorstSnapshotAgeSeconds), bstr(x.RPOMet), strconv.FormatInt(x.RTOSeconds, 10), istr(x.ProjectedRestoreSeconds),
				bstr(x.RTOMet), istr(x.SizeBytes), strconv.Itoa(x.DeletionsSeen))
		}
	case "failures":
		add("repository", "run_id", "at", "outcome", "reason")
		for _, x := range r.Repositories {
			for _, f := range x.Failures {
				add(x.Name, strconv.FormatInt(f.RunID, 10), f.At.Format(time.RFC3339), f.Outcome, f.Reason)
			}
		}
	case "tests":
		add("repository", "run_id", "at", "outcome", "duration_seconds", "restore_seconds", "throughput_bps", "snapshot_age_seconds")
		for _, x := range r.Repositories {
			for _, p := range x.Trend {
				add(x.Name, strconv.FormatInt(p.RunID, 10), p.At.Format(time.RFC3339), p.Outcome, fstr(p.DurationSeconds), fstr(p.RestoreSeconds),
					fstr(p.ThroughputBps), istr(p.SnapshotAgeSeconds))
			}
		}
	case "vaults":
		add("vault_id", "vault", "island", "status", "quota_bytes", "usage_bytes", "usage_ratio", "level")
		for _, v := range r.Vaults {
			add(strconv.FormatInt(v.ID, 10), v.Name, v.Island, v.Status, strconv.FormatInt(v.QuotaBytes, 10), istr(v.UsageBytes), fstr(v.UsageRatio), v.Level)
		}
	case "pledges":
		add("pledge_id", "island", "node_id", "zone", "capacity_bytes", "layout_capacity_bytes", "status", "status_detail", "since")
		for _, p := range r.Pledges {
			add(strconv.FormatInt(p.ID, 10), p.Island, p.NodeID, p.Zone, strconv.FormatInt(p.CapacityBytes, 10), istr(p.LayoutCapacityBytes),
				p.Status, p.StatusDetail, p.Since.UTC().Format(time.RFC3339))
		}
	case "key_events":
		add("at", "vault", "key", "access_key_id", "event")
		for _, k := range r.KeyEvents {
			add(k.At.UTC().Format(time.RFC3339), k.Vault, k.Key, k.AccessKeyID, k.Event)
		}
	case "matrix":
		add("member", "member_name", "repository_id", "repository", "mode", "status", "last_test_at")
		for _, row := range r.Matrix {
			if len(row.Repositories) == 0 {
				add(row.Member.Slug, row.Member.Name, "", "", "", "", "")
			}
			for _, c := range row.Repositories {
				add(row.Member.Slug, row.Member.Name, strconv.FormatInt(c.ID, 10), c.Name, c.Mode, c.Status, tstr(c.LastTestAt))
			}
		}
	case "members":
		add("member", "member_name", "repositories", "green", "amber", "red", "grey", "tests", "passed", "warning", "failed", "error",
			"pass_rate", "rpo_missed", "rto_missed", "deletions_seen", "repositories_with_deletions", "attention")
		for _, l := range r.Members {
			add(l.Member.Slug, l.Member.Name, strconv.Itoa(l.Repositories), strconv.Itoa(l.Green), strconv.Itoa(l.Amber), strconv.Itoa(l.Red),
				strconv.Itoa(l.Grey), strconv.Itoa(l.Tests.Total), strconv.Itoa(l.Tests.Passed), strconv.Itoa(l.Tests.Warning),
				strconv.Itoa(l.Tests.Failed), strconv.Itoa(l.Tests.Error), fstr(l.Tests.PassRate), strconv.Itoa(l.RPOMissed),
				strconv.Itoa(l.RTOMissed), strconv.Itoa(l.DeletionsSeen), strconv.Itoa(l.RepositoriesWithDeletions), strconv.FormatBool(l.Attention))
		}
	case "islands":
		head := []string{"island_id", "island", "status", "replication_factor", "pledged_bytes", "layout_bytes", "allocated_bytes", "used_bytes", "pledges_down"}
		if r.Schema == SchemaV2 {
			head = append(head, "repositories", "green", "amber", "red", "grey")
		}
		add(head...)
		for _, i := range r.Islands {
			rec := []string{strconv.FormatInt(i.ID, 10), i.Name, i.Status, strconv.Itoa(i.ReplicationFactor), strconv.FormatInt(i.PledgedBytes, 10),
				istr(i.LayoutBytes), strconv.FormatInt(i.AllocatedBytes, 10), strconv.FormatInt(i.UsedBytes, 10), strconv.Itoa(i.PledgesDown)}
			if r.Schema == SchemaV2 {
				var c StatusCounts
				if i.Repositories != nil {
					c = *i.Repositories
				}
				rec = append(rec, strconv.Itoa(c.Repositories), strconv.Itoa(c.Green), strconv.Itoa(c.Amber), strconv.Itoa(c.Red), strconv.Itoa(c.Grey))
			}
			add(rec...)
		}
	case "incidents":
		add("at", "member", "kind", "severity", "subject", "title")
		for _, x := range r.Incidents {
			add(x.At.UTC().Format(time.RFC3339), x.Member, x.Kind, x.Severity, x.Subject, x.Title)
		}
	default:
		return ErrNoTable{table, r.Scope}
	}
	if !contains(tables, table) {
		return ErrNoTable{table, r.Scope}
	}
	if len(rows) > 0 && p != nil && p.Lang() != i18n.English {
		s := speaker{p: p}
		for i, col := range rows[0] {
			if tr := s.t("csv." + col); tr != "report.csv."+col {
				rows[0][i] = tr
			}
		}
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	return cw.Error()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
