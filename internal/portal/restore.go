package portal

import (
	"context"
	"fmt"
	"github.com/chatons/archipelago/internal/i18n"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/identity"
	"github.com/chatons/archipelago/internal/islands"
	"github.com/chatons/archipelago/internal/verify"
)

// Restore tests pages: the members × repositories matrix with the register form, a
// repository's page (charts, canary, history, password, run now) and a run's page (levels,
// live progress, log). Reads go through internal/verify's read functions, changes through
// its service (which seals passwords and writes the audit); authz decides, as in the API.

// outcomeClass maps a run status to the state badge class. An error ("we could not judge":
// not the member's fault) is styled apart from a failure (the backup is bad).
func outcomeClass(status string) string {
	switch status {
	case verify.StatusPassed:
		return "good"
	case verify.StatusWarning, verify.StatusQueued, verify.StatusRunning, verify.StatusPostponed, verify.StatusRetrying:
		return "warn"
	case verify.StatusFailed:
		return "bad"
	case verify.StatusError:
		return "unjudged"
	}
	return ""
}

// humanDuration formats seconds as "3 d 4 h", "5 h 12 min", "42 s".
func humanDuration(sec int64) string {
	d := time.Duration(sec) * time.Second
	switch {
	case sec < 0:
		return "—"
	case d < time.Minute:
		return fmt.Sprintf("%d s", sec)
	case d < time.Hour:
		return fmt.Sprintf("%d min", sec/60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", sec/3600, (sec%3600)/60)
	}
	return fmt.Sprintf("%d d %d h", sec/86400, (sec%86400)/3600)
}

func optDuration(p *int64) string {
	if p == nil {
		return "—"
	}
	return humanDuration(*p)
}

// matrixCell is one repository in the matrix.
type matrixCell struct {
	Repo        verify.Repository
	Class       string // good / warn / bad / "" (never tested)
	Outcome     string
	Reason      string
	SnapshotAge string
	SnapshotAt  *time.Time // when the tested snapshot was taken (its age grows on the page)
	AgeClass    string
	RTO         string
	RTOClass    string
	RTOTarget   string
	LastAt      *time.Time // when the last test finished
}

// matrixMember is one member's line of the matrix.
type matrixMember struct {
	ID    int64
	Slug  string
	Name  string
	Cells []matrixCell
}

type registerForm struct {
	VaultID, Name, Path, Mode string
}

type restoreTestsData struct {
	// Grid is the federation's members × repositories grid, for those who read every member
	// (grid.go); Members the matrix of tiles otherwise.
	Grid    *gridView
	Members []matrixMember
	Counts  map[string]int
	// Vaults the user may register repositories in (admin of their member).
	Vaults []verify.VaultChoice
	Form   registerForm
	// What full mode implies, shown beside the consent box.
	Statement, StatementVersion string
}

func cellOf(r verify.Repository) matrixCell {
	c := matrixCell{Repo: r, Outcome: "not tested yet", SnapshotAge: "—", RTO: "—", RTOTarget: humanDuration(r.Effective.RTOSeconds)}
	if l := r.Last; l != nil {
		c.Class, c.Outcome, c.Reason = outcomeClass(l.Status), l.Status, l.Reason
		c.SnapshotAge, c.RTO = optDuration(l.SnapshotAgeSeconds), optDuration(l.RTOEstimateSeconds)
		if a := l.SnapshotAgeSeconds; a != nil {
			if l.FinishedAt != nil {
				at := l.FinishedAt.Add(-time.Duration(*a) * time.Second)
				c.SnapshotAt = &at
			}
			c.AgeClass = "good"
			switch {
			case *a > r.Effective.RPOSeconds:
				c.AgeClass = "bad"
			case *a*5 > r.Effective.RPOSeconds*4:
				c.AgeClass = "warn"
			}
		}
		if e := l.RTOEstimateSeconds; e != nil {
			c.RTOClass = "good"
			if *e > r.Effective.RTOSeconds {
				c.RTOClass = "warn"
			}
		}
		c.LastAt = l.FinishedAt
	}
	return c
}

// visibleMemberIDs is what u may read (nil: every member; empty: none).
func visibleMemberIDs(u *identity.Principal) []int64 {
	if s := authz.ReadScope(u); !s.All {
		return s.MemberIDs
	}
	return nil
}

// RestoreTests shows the matrix of the repositories the user may see and the form to
// register one.
func (p *Portal) RestoreTests(w http.ResponseWriter, r *http.Request) {
	p.renderRestoreTests(w, r, http.StatusOK, Page{Flash: restoreFlashes.in(r, p.l(r))}, registerForm{Mode: verify.ModeBlind})
}

// restoreFlashes are the messages shown after a form, by the done= of the redirect.
var restoreFlashes = flashes{
	"registered":           "portal.restore.flash.registered",
	"registered-unchecked": "portal.restore.flash.registered_unchecked",
	"deleted":              "portal.restore.flash.deleted",
	"password":             "portal.restore.flash.password",
	"password-removed":     "portal.restore.flash.password_removed",
	"mode":                 "portal.restore.flash.mode",
	"policy":               "portal.restore.flash.policy",
	"agent-key":            "portal.restore.flash.agent_key",
	"agent-key-revoked":    "portal.restore.flash.agent_key_revoked",
	"agent-schedule":       "portal.restore.flash.agent_schedule",
	"queued":               "portal.restore.flash.queued",
	"already":              "portal.restore.flash.already",
}

func (p *Portal) renderRestoreTests(w http.ResponseWriter, r *http.Request, status int, page Page, form registerForm) {
	u := user(r)
	ids := visibleMemberIDs(u)
	counts, err := verify.OutcomeCounts(r.Context(), p.pool, ids) // over every page
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data := restoreTestsData{Counts: counts, Form: form, Statement: verify.FullModeStatement, StatementVersion: verify.FullModeStatementVersion}
	if authz.ReadScope(u).All {
		// Every member: the grid, a line per member.
		f, msg := gridRequest(r, ids)
		if msg != "" {
			p.render(w, r, http.StatusBadRequest, "error", Page{Title: p.l(r).T("portal.nav.restore_tests"), Error: p.l(r).T(msg)})
			return
		}
		gp, err := verify.GridPage(r.Context(), p.pool, f, pageRequest(r))
		members, ok := pageItems(p, w, r, &page, gp, err)
		if !ok {
			return
		}
		g := newGridView(r, p.l(r), p.viewerZone(r), f, members)
		data.Grid = &g
		p.renderRestoreTestsData(w, r, status, page, data)
		return
	}
	rp, err := verify.RepositoryPage(r.Context(), p.pool, verify.RepositoryFilter{MemberIDs: ids}, pageRequest(r))
	repos, ok := pageItems(p, w, r, &page, rp, err)
	if !ok {
		return
	}
	byID := map[int64]*matrixMember{}
	var order []int64
	for _, m := range u.Members {
		byID[m.ID] = &matrixMember{ID: m.ID, Slug: m.Slug, Name: m.Name}
		order = append(order, m.ID)
	}
	for _, repo := range repos {
		mm := byID[repo.MemberID]
		if mm == nil {
			mm = &matrixMember{ID: repo.MemberID}
			byID[repo.MemberID] = mm
			order = append(order, repo.MemberID)
		}
		mm.Cells = append(mm.Cells, cellOf(repo))
	}
	var unnamed []int64
	for _, id := range order {
		if byID[id].Slug == "" {
			unnamed = append(unnamed, id)
		}
	}
	names, err := p.memberNames(r, unnamed)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	for _, id := range order {
		mm := byID[id]
		if mm.Slug == "" {
			mm.Slug, mm.Name = names[id][0], names[id][1]
		}
		data.Members = append(data.Members, *mm)
	}
	p.renderRestoreTestsData(w, r, status, page, data)
}

// renderRestoreTestsData adds the register form's vaults (those of the members u is an
// admin of) and renders the page.
func (p *Portal) renderRestoreTestsData(w http.ResponseWriter, r *http.Request, status int, page Page, data restoreTestsData) {
	u := user(r)
	var err error
	var adminOf []int64
	for _, m := range u.Members {
		if authz.Check(u, authz.MemberWrite, authz.Member(m.ID)) == nil {
			adminOf = append(adminOf, m.ID)
		}
	}
	if len(adminOf) > 0 {
		if data.Vaults, err = verify.VaultChoices(r.Context(), p.pool, adminOf); err != nil {
			p.fail(w, r, err)
			return
		}
	}
	page.Title, page.Nav, page.Data = p.l(r).T("portal.nav.restore_tests"), "restore-tests", data
	p.render(w, r, status, "restore_tests", page)
}

// memberNames reads the slug and name of members (for a federation admin's matrix).
func (p *Portal) memberNames(r *http.Request, ids []int64) (map[int64][2]string, error) {
	ms, err := islands.MembersByID(r.Context(), p.pool, ids)
	if err != nil {
		return nil, err
	}
	out := map[int64][2]string{}
	for _, id := range ids {
		m, ok := ms[id]
		if !ok {
			return nil, fmt.Errorf("read member %d: %w", id, islands.ErrNotFound)
		}
		out[id] = [2]string{m.Slug, m.Name}
	}
	return out, nil
}

// RepositoryRegister handles the register form.
func (p *Portal) RepositoryRegister(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	form := registerForm{VaultID: r.PostFormValue("vault"), Name: r.PostFormValue("name"), Path: r.PostFormValue("path"),
		Mode: r.PostFormValue("mode")}
	password := r.PostFormValue("password")
	bad := func(msg string) {
		p.renderRestoreTests(w, r, http.StatusBadRequest, Page{Error: msg}, form)
	}
	vaultID, _ := strconv.ParseInt(form.VaultID, 10, 64)
	member, err := verify.VaultOwner(r.Context(), p.pool, vaultID)
	if err != nil || authz.Check(u, authz.MemberWrite, authz.Member(member)) != nil {
		bad(p.l(r).T("portal.restore.go.choose_vault"))
		return
	}
	switch form.Mode {
	case verify.ModeFull:
		if password == "" {
			bad(p.l(r).T("portal.restore.go.full_needs_password"))
			return
		}
	case verify.ModeBlind, verify.ModeAttested:
		password = ""
	default:
		bad(p.l(r).T("portal.restore.go.choose_mode"))
		return
	}
	repo, err := p.verify.RepositoryCreate(r.Context(), verify.RepositoryInput{MemberID: member, VaultID: vaultID,
		Name: form.Name, Path: form.Path, Mode: form.Mode, Password: password, FullModeConsent: r.PostFormValue("full_mode_consent")})
	if err != nil {
		p.refuse(w, r, err, nil, func(_ int, msg string) { bad(msg) })
		return
	}
	done := "registered"
	if repo.Notice != "" {
		done = "registered-unchecked"
	}
	http.Redirect(w, r, fmt.Sprintf("/restore-tests/repositories/%d?done=%s", repo.ID, done), http.StatusSeeOther)
}

// chartPoint is one finished run on the repository's charts.
type chartPoint struct {
	At    time.Time
	Value float64
	Class string
	Title string
}

// RunChart is a server-rendered SVG chart of one measure over the repository's runs.
type RunChart struct {
	Title, Unit      string
	Width, Height    int
	Left, Right, Top int
	PlotW, PlotH     int
	Line             string
	Dots             []chartDot
	YLabels, XLabels []chartLabel
	TargetY          float64
	HasTarget        bool
	TargetLabel      string
	Empty            bool
	Summary          string
}

type chartDot struct {
	X, Y  float64
	Class string
	Title string
}

// runChart draws points (oldest first) with an optional target line.
func runChart(l *i18n.Printer, title, unit string, pts []chartPoint, target float64, format func(float64) string, loc *time.Location) RunChart {
	c := RunChart{Title: title, Unit: unit, Width: 340, Height: 170, Left: 62, Right: 10, Top: 10, PlotH: 120}
	c.PlotW = c.Width - c.Left - c.Right
	if len(pts) == 0 {
		c.Empty, c.Summary = true, l.T("portal.restore.chart.empty")
		return c
	}
	start, end := pts[0].At, pts[len(pts)-1].At
	span := end.Sub(start).Seconds()
	if span <= 0 {
		span = 1
	}
	top := target
	for _, pt := range pts {
		top = max(top, pt.Value)
	}
	if top <= 0 {
		top = 1
	}
	top *= 1.1
	x := func(t time.Time) float64 {
		if len(pts) == 1 {
			return float64(c.Left) + float64(c.PlotW)/2
		}
		return float64(c.Left) + float64(c.PlotW)*t.Sub(start).Seconds()/span
	}
	y := func(v float64) float64 { return float64(c.Top) + float64(c.PlotH)*(1-v/top) }
	var sb strings.Builder
	for _, pt := range pts {
		fmt.Fprintf(&sb, "%.1f,%.1f ", x(pt.At), y(pt.Value))
		c.Dots = append(c.Dots, chartDot{X: x(pt.At), Y: y(pt.Value), Class: pt.Class, Title: pt.Title})
	}
	c.Line = strings.TrimSpace(sb.String())
	if target > 0 {
		c.HasTarget, c.TargetY, c.TargetLabel = true, y(target), l.T("portal.restore.chart.target", "Value", durationIn(l, format(target)))
	}
	for _, f := range []float64{0, 0.5, 1} {
		v := top / 1.1 * f
		c.YLabels = append(c.YLabels, chartLabel{X: float64(c.Left - 6), Y: y(v) + 4, Text: format(v)})
	}
	c.XLabels = append(c.XLabels, chartLabel{X: float64(c.Left + 16), Y: float64(c.Top + c.PlotH + 16), Text: shortDayIn(l, start, loc)})
	if len(pts) > 1 {
		c.XLabels = append(c.XLabels, chartLabel{X: float64(c.Left + c.PlotW - 16), Y: float64(c.Top + c.PlotH + 16), Text: shortDayIn(l, end, loc)})
	}
	last := pts[len(pts)-1]
	c.Summary = l.T("portal.restore.chart.summary", "Title", title, "Tests", l.Number(int64(len(pts))), "Latest", durationIn(l, format(last.Value)))
	return c
}

// formatSeconds is a compact duration for chart axes ("26 h", "90 s").
func formatSeconds(v float64) string {
	switch sec := int64(v + 0.5); {
	case sec < 120:
		return fmt.Sprintf("%d s", sec)
	case sec < 2*3600:
		return fmt.Sprintf("%d min", sec/60)
	case sec < 72*3600:
		return fmt.Sprintf("%.3g h", v/3600)
	default:
		return fmt.Sprintf("%.3g d", v/86400)
	}
}

// rateIn writes a rate in lp's language (« 23,2 Mo/s »).
func rateIn(lp *i18n.Printer) func(float64) string {
	return func(v float64) string { return sizer(lp)(int64(v)) + "/s" }
}

// secondsIn is formatSeconds in lp's language (« 1,5 h », « 3 j »).
func secondsIn(lp *i18n.Printer) func(float64) string {
	return func(v float64) string {
		s := formatSeconds(v)
		if lp.Lang() == i18n.French {
			s = strings.ReplaceAll(s, ".", ",")
		}
		return durationIn(lp, s)
	}
}

// runRow is one run in a history table.
type runRow struct {
	Run      verify.Run
	Class    string
	When     string
	Duration string
	Age      string
	RTO      string
}

func rowOf(t verify.Run) runRow {
	row := runRow{Run: t, Class: outcomeClass(t.Status), When: t.QueuedAt.UTC().Format("2006-01-02 15:04"),
		Age: optDuration(t.SnapshotAgeSeconds), RTO: optDuration(t.RTOEstimateSeconds), Duration: "—"}
	if t.StartedAt != nil {
		row.When = t.StartedAt.UTC().Format("2006-01-02 15:04")
	}
	if t.DurationMS != nil {
		row.Duration = humanDuration((*t.DurationMS + 500) / 1000)
	}
	return row
}

type repositoryData struct {
	Repo       verify.Repository
	Cell       matrixCell
	CanChange  bool
	Endpoint   string // s3:… URL of the repository, for the restic instructions
	Policy     []policyLine
	NextRun    string
	NextRunAt  *time.Time // when the next test is due; nil: NextRun says why not
	Active     *runRow    // a test waiting or running
	Percent    string
	Runs       []runRow
	Charts     []RunChart
	Ranges     []chartRange // the charts' range picker
	Range      chartRange
	Timeline   Timeline // the snapshots seen in the range
	CanaryFile string
	Form       policyForm // the policy form: the member's own values, blank where the default applies
	Agent      agentData  // what the member's agent attested (internal/portal/agent.go)
	// Mode: what the federation can and cannot see; the evidence and who produced it; the
	// full-mode statement for the consent box.
	ModeMeaning                 string
	Evidence                    []verify.Evidence
	Statement, StatementVersion string
}

type policyLine struct{ Name, Value string }

// policyForm is the policy form's fields as text: what the member set, or what it just
// posted when the form is shown again with an error. Blank means the federation's default.
type policyForm struct {
	Schedule, RPOHours, RTOMinutes, SampleFiles, FullRestoreDays, CanaryPath string
	Paused                                                                   bool
	Target                                                                   string // "", source or copy
}

// policyFormOf fills the form from the repository's own policy.
func policyFormOf(repo verify.Repository) policyForm {
	f := policyForm{Paused: repo.Paused}
	p := repo.Policy
	if p.Schedule != nil {
		f.Schedule = *p.Schedule
	}
	if p.RPOSeconds != nil {
		f.RPOHours = strconv.FormatFloat(float64(*p.RPOSeconds)/3600, 'f', -1, 64)
	}
	if p.RTOSeconds != nil {
		f.RTOMinutes = strconv.FormatFloat(float64(*p.RTOSeconds)/60, 'f', -1, 64)
	}
	if p.SampleFiles != nil {
		f.SampleFiles = strconv.Itoa(*p.SampleFiles)
	}
	if p.FullRestoreDays != nil {
		f.FullRestoreDays = strconv.Itoa(*p.FullRestoreDays)
	}
	if p.CanaryPath != nil {
		f.CanaryPath = *p.CanaryPath
	}
	if p.Target != nil {
		f.Target = *p.Target
	}
	return f
}

// formError is a form field that does not parse; its text names the field.
type formError string

func (e formError) Error() string { return string(e) }

// policyFields names the form's fields for messages, by the policy field they set.
var policyFields = map[string]string{
	"policy.schedule": "portal.restore.policy.schedule", "policy.rpo_seconds": "portal.restore.policy.rpo", "policy.rto_seconds": "portal.restore.policy.rto",
	"policy.sample_files": "portal.restore.policy.sample_files", "policy.full_restore_days": "portal.restore.policy.full_restore_every", "policy.canary_path": "portal.restore.policy.canary",
	"policy.target": "portal.restore.policy.tested_side",
}

// policy reads the form into the repository's policy: the fields the form shows replace
// the member's values (blank: back to the default), the others are kept.
func (f policyForm) policy(base verify.Policy) (verify.Policy, error) {
	p := base
	text := func(v string) *string {
		if v = strings.TrimSpace(v); v == "" {
			return nil
		}
		return &v
	}
	// number parses a positive amount of unit seconds (hours, minutes) or a count (unit 1).
	number := func(v, label string, unit float64) (*int64, error) {
		if v = strings.TrimSpace(v); v == "" {
			return nil, nil
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || x < 0 || x*unit > 1<<50 || (unit == 1 && x != float64(int64(x))) {
			return nil, &keyError{Key: "portal.restore.go.bad_number", Field: label}
		}
		n := int64(x * unit)
		return &n, nil
	}
	toInt := func(n *int64) *int {
		if n == nil {
			return nil
		}
		i := int(*n)
		return &i
	}
	p.Schedule, p.CanaryPath, p.Target = text(f.Schedule), text(f.CanaryPath), text(f.Target)
	var errs [4]error
	p.RPOSeconds, errs[0] = number(f.RPOHours, "portal.restore.policy.rpo_hours", 3600)
	p.RTOSeconds, errs[1] = number(f.RTOMinutes, "portal.restore.policy.rto_minutes", 60)
	n, err := number(f.SampleFiles, "portal.restore.policy.sample_files", 1)
	p.SampleFiles, errs[2] = toInt(n), err
	n, err = number(f.FullRestoreDays, "portal.restore.policy.full_restore_days", 1)
	p.FullRestoreDays, errs[3] = toInt(n), err
	for _, err := range errs {
		if err != nil {
			return p, err
		}
	}
	return p, nil
}

// repositoryFor loads the path's repository if u may read it.
func (p *Portal) repositoryFor(w http.ResponseWriter, r *http.Request) (verify.Repository, bool) {
	return loadByID(p, w, r, "id", func(ctx context.Context, id int64) (verify.Repository, error) {
		return verify.RepositoryGetByID(ctx, p.pool, id)
	}, mayRead(r, func(repo verify.Repository) int64 { return repo.MemberID }))
}

// Repository shows one repository: state, canary, live test, charts, history and changes.
func (p *Portal) Repository(w http.ResponseWriter, r *http.Request) {
	repo, ok := p.repositoryFor(w, r)
	if !ok {
		return
	}
	p.renderRepository(w, r, http.StatusOK, Page{Flash: restoreFlashes.in(r, p.l(r))}, repo)
}

func (p *Portal) renderRepository(w http.ResponseWriter, r *http.Request, status int, page Page, repo verify.Repository) {
	p.renderRepositoryForm(w, r, status, page, repo, policyFormOf(repo))
}

// renderRepositoryForm renders the repository page with the policy form as given (as
// posted, when shown again with an error).
func (p *Portal) renderRepositoryForm(w http.ResponseWriter, r *http.Request, status int, page Page, repo verify.Repository, form policyForm) {
	u := user(r)
	runs, err := verify.RunList(r.Context(), p.pool, verify.RunFilter{RepositoryID: repo.ID, Limit: 60})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	e := repo.Effective
	data := repositoryData{Repo: repo, Cell: cellOf(repo), CanChange: authz.Check(u, authz.MemberWrite, authz.Member(repo.MemberID)) == nil,
		NextRun: "—", CanaryFile: e.CanaryPath, Form: form}
	data.ModeMeaning, data.Statement, data.StatementVersion = verify.ModeMeaning(repo.Mode), verify.FullModeStatement, verify.FullModeStatementVersion
	if data.Evidence, err = p.verify.EvidenceList(r.Context(), repo); err != nil {
		p.fail(w, r, err)
		return
	}
	if !strings.HasPrefix(data.CanaryFile, "/") {
		data.CanaryFile = "/srv/" + data.CanaryFile
	}
	if data.Agent, err = p.agentDataOf(r, repo); err != nil {
		p.fail(w, r, err)
		return
	}
	if vs, err := verify.VaultChoices(r.Context(), p.pool, []int64{repo.MemberID}); err == nil {
		for _, v := range vs {
			if v.ID == repo.VaultID {
				data.Endpoint = resticURL(v, repo.Path)
			}
		}
	}
	lp := p.l(r)
	if repo.Paused {
		data.NextRun = lp.T("portal.restore.go.paused")
	} else if repo.NextRunAt != nil {
		data.NextRunAt = repo.NextRunAt
	}
	full := lp.T("portal.restore.policy.never")
	if e.FullRestoreDays != nil {
		full = lp.N("portal.restore.policy.every_days", *e.FullRestoreDays)
	}
	window := lp.T("portal.restore.policy.any_time")
	if e.WindowMinutes > 0 {
		window = lp.T("portal.restore.policy.window", "Start", fmt.Sprintf("%02d:%02d", e.WindowStartMinute/60, e.WindowStartMinute%60),
			"Length", durationIn(lp, humanDuration(int64(e.WindowMinutes)*60)))
	}
	data.Policy = []policyLine{{lp.T("portal.restore.policy.schedule"), lp.T("portal.restore.policy.schedule_line", "Schedule", e.Schedule, "Window", window,
		"Jitter", durationIn(lp, humanDuration(int64(e.JitterSeconds))))},
		{lp.T("portal.restore.policy.rpo"), durationIn(lp, humanDuration(e.RPOSeconds))}, {lp.T("portal.restore.policy.rto"), durationIn(lp, humanDuration(e.RTOSeconds))},
		{lp.T("portal.restore.policy.sample_restore"), lp.T("portal.restore.policy.sample_line", "Files", lp.Number(int64(e.SampleFiles)), "Bytes", sizer(lp)(e.SampleBytes))},
		{lp.T("portal.restore.policy.integrity"), lp.T("portal.restore.policy.integrity_line", "Runs", e.CheckEveryRuns, "Subsets", e.CheckSubsets)},
		{lp.T("portal.restore.policy.full_restore"), full}, {lp.T("portal.restore.policy.canary"), e.CanaryPath}, {lp.T("portal.restore.policy.tested_side"), testedSide(lp, e.Target)}}
	for _, t := range runs {
		if !t.Final() && data.Active == nil {
			row := rowOf(t)
			data.Active = &row
			data.Percent = fmt.Sprintf("%.0f", min(100, max(0, t.Progress.Percent)))
		}
	}
	// The charts and the snapshot timeline show the chosen range.
	now := time.Now()
	data.Range, data.Ranges = rangeOf(p.l(r), r.URL.Query())
	since := now.AddDate(0, 0, -data.Range.Days)
	chartRuns, err := verify.RunList(r.Context(), p.pool, verify.RunFilter{RepositoryID: repo.ID, Since: &since, Limit: chartRunLimit})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	snaps, more, err := verify.SnapshotTimeline(r.Context(), p.pool, repo.ID, since, snapshotLimit)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	loc := p.viewerZone(r)
	data.Timeline = snapshotTimeline(p.l(r), snaps, more, since, now, loc)
	var dur, rate, age []chartPoint
	for i := len(chartRuns) - 1; i >= 0; i-- {
		t := chartRuns[i]
		row := rowOf(t)
		if !t.Final() || t.FinishedAt == nil {
			continue
		}
		cls := outcomeClass(t.Status)
		title := func(v string) string {
			return lp.T("portal.restore.chart.point", "When", exactIn(lp, *t.FinishedAt, loc), "Outcome", enumIn(lp)(t.Status), "Value", v)
		}
		if t.DurationMS != nil {
			dur = append(dur, chartPoint{At: *t.FinishedAt, Value: float64(*t.DurationMS) / 1000, Class: cls, Title: title(durationIn(lp, row.Duration))})
		}
		if t.ThroughputBps != nil {
			rate = append(rate, chartPoint{At: *t.FinishedAt, Value: *t.ThroughputBps, Class: cls, Title: title(rateIn(lp)(*t.ThroughputBps))})
		}
		if t.SnapshotAgeSeconds != nil {
			age = append(age, chartPoint{At: *t.FinishedAt, Value: float64(*t.SnapshotAgeSeconds), Class: cls, Title: title(durationIn(lp, row.Age))})
		}
	}
	for _, t := range runs {
		data.Runs = append(data.Runs, rowOf(t))
	}
	data.Charts = []RunChart{
		runChart(lp, lp.T("portal.restore.chart.duration"), "s", dur, 0, secondsIn(lp), loc),
		runChart(lp, lp.T("portal.restore.chart.throughput"), "B/s", rate, 0, rateIn(lp), loc),
		runChart(lp, lp.T("portal.restore.chart.snapshot_age"), "s", age, float64(e.RPOSeconds), secondsIn(lp), loc),
	}
	page.Title, page.Nav, page.Data = repo.Name, "restore-tests", data
	p.render(w, r, status, "restore_repository", page)
}

// resticURL is the RESTIC_REPOSITORY of a path in a vault.
func resticURL(v verify.VaultChoice, path string) string {
	ep := strings.TrimSuffix(v.S3Endpoint, "/")
	if !strings.Contains(ep, "://") {
		ep = "https://" + ep
	}
	return "s3:" + ep + "/" + v.BucketName + "/" + path
}

// repositoryChange loads the path's repository for a change by u (404 when hidden, 403
// for a viewer).
func (p *Portal) repositoryChange(w http.ResponseWriter, r *http.Request) (verify.Repository, bool) {
	repo, ok := p.repositoryFor(w, r)
	if !ok {
		return repo, false
	}
	if authz.Check(user(r), authz.MemberWrite, authz.Member(repo.MemberID)) != nil {
		p.render(w, r, http.StatusForbidden, "error", Page{Title: p.l(r).T("portal.common.not_allowed"),
			Error: p.l(r).T("portal.restore.go.not_admin")})
		return repo, false
	}
	return repo, true
}

func repoURL(id int64, done string) string {
	return fmt.Sprintf("/restore-tests/repositories/%d?done=%s", id, done)
}

// RepositoryRunNow handles the "run now" button.
func (p *Portal) RepositoryRunNow(w http.ResponseWriter, r *http.Request) {
	repo, ok := p.repositoryChange(w, r)
	if !ok {
		return
	}
	run, created, err := p.verify.RunNow(r.Context(), repo.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	switch {
	case created:
		http.Redirect(w, r, fmt.Sprintf("/restore-tests/runs/%d", run.ID), http.StatusSeeOther)
	case !run.Final():
		http.Redirect(w, r, repoURL(repo.ID, "already"), http.StatusSeeOther)
	default:
		// The test that just finished is still held by the queue for a moment.
		p.renderRepository(w, r, http.StatusConflict, Page{Error: p.l(r).T("portal.restore.go.just_finished")}, repo)
	}
}

// RepositoryPassword handles the replace-password form.
func (p *Portal) RepositoryPassword(w http.ResponseWriter, r *http.Request) {
	repo, ok := p.repositoryChange(w, r)
	if !ok {
		return
	}
	_, err := p.verify.PasswordSet(r.Context(), repo.ID, r.PostFormValue("password"), r.PostFormValue("full_mode_consent"))
	p.repositoryOutcome(w, r, err, repo, nil, repoURL(repo.ID, "password"))
}

// RepositoryMode handles the switch between blind and attested mode (leaving full mode
// erases the password).
func (p *Portal) RepositoryMode(w http.ResponseWriter, r *http.Request) {
	if p.gate(w, r, p.planRepositoryModeChange) { // leaving full mode erases the password: protected like its removal
		return
	}
	repo, ok := p.repositoryChange(w, r)
	if !ok {
		return
	}
	_, err := p.verify.ModeSet(r.Context(), repo.ID, r.PostFormValue("mode"))
	p.repositoryOutcome(w, r, err, repo, map[string]string{"mode": "portal.restore.go.mode_not_changed"}, repoURL(repo.ID, "mode"))
}

// RepositoryPolicy handles the policy form: schedule, targets, sample size, full restores,
// canary file and pause. Blank fields take the federation's defaults.
func (p *Portal) RepositoryPolicy(w http.ResponseWriter, r *http.Request) {
	repo, ok := p.repositoryChange(w, r)
	if !ok {
		return
	}
	form := policyForm{Schedule: r.PostFormValue("schedule"), RPOHours: r.PostFormValue("rpo_hours"), RTOMinutes: r.PostFormValue("rto_minutes"),
		SampleFiles: r.PostFormValue("sample_files"), FullRestoreDays: r.PostFormValue("full_restore_days"),
		CanaryPath: r.PostFormValue("canary_path"), Paused: r.PostFormValue("paused") != "", Target: r.PostFormValue("target")}
	policy, err := form.policy(repo.Policy)
	if err == nil {
		_, err = p.verify.PolicyUpdate(r.Context(), repo.ID, nil, policy, &form.Paused)
	}
	if err != nil {
		err = inFormUnits(err, p.l(r).T("portal.restore.go.between_minute_year"), "policy.rpo_seconds", "policy.rto_seconds")
		p.refuse(w, r, err, policyFields, func(status int, msg string) { p.renderRepositoryForm(w, r, status, Page{Error: msg}, repo, form) })
		return
	}
	http.Redirect(w, r, repoURL(repo.ID, "policy"), http.StatusSeeOther)
}

// RepositoryPasswordRemove handles the remove-password button.
func (p *Portal) RepositoryPasswordRemove(w http.ResponseWriter, r *http.Request) {
	load := func() (verify.Repository, bool) { return p.repositoryChange(w, r) }
	gatedOn(p, w, r, load, p.approvals.PlanRepositoryPasswordRemove, func(repo verify.Repository) {
		if !p.confirmed(w, r, confirmAsk{Kind: "password-erase", Name: repo.Name, Back: fmt.Sprintf("/restore-tests/repositories/%d", repo.ID)}) {
			return
		}
		_, err := p.verify.PasswordRemove(r.Context(), repo.ID)
		p.repositoryOutcome(w, r, err, repo, map[string]string{"password": "portal.restore.go.not_removed"}, repoURL(repo.ID, "password-removed"))
	})
}

// RepositoryDelete handles the delete button.
func (p *Portal) RepositoryDelete(w http.ResponseWriter, r *http.Request) {
	load := func() (verify.Repository, bool) { return p.repositoryChange(w, r) }
	gatedOn(p, w, r, load, p.approvals.PlanRepositoryDelete, func(repo verify.Repository) {
		if !p.confirmed(w, r, confirmAsk{Kind: "repository-delete", Name: repo.Name, Back: fmt.Sprintf("/restore-tests/repositories/%d", repo.ID)}) {
			return
		}
		err := p.verify.RepositoryDelete(r.Context(), repo.ID)
		p.repositoryOutcome(w, r, err, repo, nil, "/restore-tests?done=deleted")
	})
}

// repositoryOutcome answers a form of the repository page: its refusal shown on the page
// (see refuse; labels name the fields), or the redirect to done.
func (p *Portal) repositoryOutcome(w http.ResponseWriter, r *http.Request, err error, repo verify.Repository, labels map[string]string, done string) {
	if err != nil {
		p.refuse(w, r, err, labels, func(status int, msg string) { p.renderRepository(w, r, status, Page{Error: msg}, repo) })
		return
	}
	http.Redirect(w, r, done, http.StatusSeeOther)
}

type runData struct {
	Row       runRow
	Levels    []levelRow
	Log       string
	Percent   string
	CanChange bool
}

type levelRow struct {
	verify.LevelResult
	Class    string
	Duration string
}

// RestoreRun shows one run: outcome, per-level results, live progress and restic's log.
func (p *Portal) RestoreRun(w http.ResponseWriter, r *http.Request) {
	u := user(r)
	run, ok := loadByID(p, w, r, "id", func(ctx context.Context, id int64) (verify.Run, error) {
		return verify.RunGetByID(ctx, p.pool, id)
	}, mayRead(r, func(run verify.Run) int64 { return run.MemberID }))
	if !ok {
		return
	}
	log, err := verify.RunLog(r.Context(), p.pool, run.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	data := runData{Row: rowOf(run), Log: log, Percent: fmt.Sprintf("%.0f", min(100, max(0, run.Progress.Percent))),
		CanChange: authz.Check(u, authz.MemberWrite, authz.Member(run.MemberID)) == nil}
	for _, l := range run.Levels {
		cls := outcomeClass(l.Outcome)
		if l.Outcome == verify.OutcomeSkipped {
			cls = ""
		}
		data.Levels = append(data.Levels, levelRow{LevelResult: l, Class: cls, Duration: humanDuration((l.DurationMS + 500) / 1000)})
	}
	p.render(w, r, http.StatusOK, "restore_run", Page{Title: p.l(r).T("portal.restore.go.run_title", "ID", run.ID, "Name", run.RepositoryName),
		Nav: "restore-tests", Data: data})
}
