package reports

import (
	"cmp"
	"math"
	"slices"
	"sort"
	"time"
)

// Schemas name the JSON document's version. Fields are only ever added within a version.
// Member reports are v1; federation reports are v2 since December 2026 (per-member counts
// instead of a cell per repository). Stored v1 federation reports stay readable as stored:
// Report keeps every v1 field, and Encode writes a v1 report exactly as it was written.
const (
	SchemaV1 = "archipelago.report/v1"
	SchemaV2 = "archipelago.report/v2"
	// Schema is the version of new member reports.
	Schema = SchemaV1
)

// Scopes.
const (
	ScopeMember     = "member"
	ScopeFederation = "federation"
)

// Periods.
const (
	PeriodWeekly  = "weekly"
	PeriodMonthly = "monthly"
	PeriodCustom  = "custom"
)

// Repository statuses in the red/green matrix.
const (
	StatusGreen = "green" // the latest test passed
	StatusAmber = "amber" // the latest test passed with a warning
	StatusRed   = "red"   // the latest test failed, or could not run
	StatusGrey  = "grey"  // never tested yet
)

// Report is the document. Every field is always present (empty lists as []), so
// consumers need no special cases; sections that do not apply to the scope are empty.
type Report struct {
	Schema       string       `json:"schema"`
	Scope        string       `json:"scope"`
	Member       *MemberRef   `json:"member"` // null for the federation
	Period       Period       `json:"period"`
	GeneratedAt  time.Time    `json:"generated_at"`
	Checkpoint   Checkpoint   `json:"checkpoint"`
	Summary      Summary      `json:"summary"`
	Repositories []Repository `json:"repositories"`
	Vaults       []Vault      `json:"vaults"`
	Pledges      []Pledge     `json:"pledges"`
	KeyEvents    []KeyEvent   `json:"key_events"`
	Islands      []Island     `json:"islands"`
	Matrix       []MatrixRow  `json:"matrix"` // v1 federation reports only
	Incidents    []Incident   `json:"incidents"`
	// Totals and Members: v2 federation reports only (absent from v1 documents).
	Totals  *FederationTotals `json:"totals,omitempty"`
	Members []MemberLine      `json:"members,omitempty"`
}

// StatusCounts counts repositories by the status of their latest test up to the period's end.
type StatusCounts struct {
	Repositories int `json:"repositories"`
	Green        int `json:"green"`
	Amber        int `json:"amber"`
	Red          int `json:"red"`
	Grey         int `json:"grey"`
}

// MemberLine is one member's line of a v2 federation report: what its own member report of
// the same period says, counted (every count is defined on that report's repositories).
type MemberLine struct {
	Member MemberRef `json:"member"`
	StatusCounts
	// Tests of the period by outcome, over all its repositories.
	Tests TestStats `json:"tests"`
	// RPOMissed: repositories whose worst snapshot age in the period passed their RPO
	// (rpo_met false); RTOMissed: whose projected full restore passes their RTO (rto_met false).
	RPOMissed int `json:"rpo_missed"`
	RTOMissed int `json:"rto_missed"`
	// DeletionsSeen: snapshots that disappeared in the period, in RepositoriesWithDeletions repositories.
	DeletionsSeen             int `json:"deletions_seen"`
	RepositoriesWithDeletions int `json:"repositories_with_deletions"`
	// Attention: the member needs attention (a red, untested or amber repository, an RPO or
	// RTO missed, snapshots that disappeared); members are listed worst first.
	Attention bool `json:"attention"`
}

// FederationTotals is a v2 federation report's counts over every member.
type FederationTotals struct {
	Members                   int `json:"members"`                     // every member
	MembersWithRepositories   int `json:"members_with_repositories"`   // members with at least one repository
	MembersNeedingAttention   int `json:"members_needing_attention"`   // members whose line says attention
	RPOMissed                 int `json:"rpo_missed"`                  // repositories
	RTOMissed                 int `json:"rto_missed"`                  // repositories
	DeletionsSeen             int `json:"deletions_seen"`              // snapshots
	RepositoriesWithDeletions int `json:"repositories_with_deletions"` // repositories
	Passed                    int `json:"passed"`                      // tests by outcome (Summary.Tests is their total)
	Warning                   int `json:"warning"`
	Failed                    int `json:"failed"`
	Error                     int `json:"error"`
}

// MemberRef names a member.
type MemberRef struct {
	ID   int64  `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// Period is the half-open interval [start, end) the report covers.
type Period struct {
	Kind  string    `json:"kind"` // weekly, monthly, custom
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Checkpoint is the audit log's signed tree head when the report was generated: save
// Note to a file and check it with `archipelago audit verify --remote URL --checkpoint FILE`.
type Checkpoint struct {
	Origin      string `json:"origin"`
	TreeSize    int64  `json:"tree_size"`
	RootHash    string `json:"root_hash"` // base64, as in the note
	Note        string `json:"note"`
	VerifierKey string `json:"verifier_key"`
}

// Summary is the report at a glance.
type Summary struct {
	Repositories int      `json:"repositories"`
	Green        int      `json:"green"`
	Amber        int      `json:"amber"`
	Red          int      `json:"red"`
	Grey         int      `json:"grey"`
	Tests        int      `json:"tests"`
	PassRate     *float64 `json:"pass_rate"` // (passed + warning) ÷ tests; null without tests
	Attention    []string `json:"attention"` // what needs attention, one sentence each
}

// TestStats counts a repository's finished tests in the period by outcome.
type TestStats struct {
	Total    int      `json:"total"`
	Passed   int      `json:"passed"`
	Warning  int      `json:"warning"`
	Failed   int      `json:"failed"`
	Error    int      `json:"error"`
	PassRate *float64 `json:"pass_rate"` // (passed + warning) ÷ total; null without tests
}

// Repository is one restic repository's record in the period.
type Repository struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Member string `json:"member"` // slug
	Vault  string `json:"vault"`
	Island string `json:"island"`
	Mode   string `json:"mode"` // blind, attested or full
	// Evidence is what the latest test up to the period's end established, and who did.
	Evidence                []Evidence   `json:"evidence"`
	Status                  string       `json:"status"`
	LastOutcome             string       `json:"last_outcome"` // of the latest test up to the period's end; "" if none
	LastTestAt              *time.Time   `json:"last_test_at"`
	LastSuccessAt           *time.Time   `json:"last_success_at"`
	Tests                   TestStats    `json:"tests"`
	RPOSeconds              int64        `json:"rpo_seconds"`
	WorstSnapshotAgeSeconds *int64       `json:"worst_snapshot_age_seconds"`
	RPOMet                  *bool        `json:"rpo_met"`
	RTOSeconds              int64        `json:"rto_seconds"`
	ProjectedRestoreSeconds *int64       `json:"projected_restore_seconds"` // full restore at the measured throughput
	RTOMet                  *bool        `json:"rto_met"`
	SizeBytes               *int64       `json:"size_bytes"`
	DeletionsSeen           int          `json:"deletions_seen"`
	Failures                []Failure    `json:"failures"`
	Trend                   []TrendPoint `json:"trend"`

	lastFailureReason string // of the newest failed run (federation reports have no Failures)
}

// Evidence is one level of the latest test (skipped ones left out) and who produced it:
// "federation" for the verifier's own levels (internal/verify.Evidence), and "member" for the
// latest signed attestation of the member's agent before the period's end (kind "attestation").
type Evidence struct {
	Kind     string `json:"kind"`
	Producer string `json:"producer"`
	Outcome  string `json:"outcome"`
}

// Failure is a test that failed or could not run, with its reason.
type Failure struct {
	RunID   int64     `json:"run_id"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"` // failed or error
	Reason  string    `json:"reason"`
}

// TrendPoint is one finished test, for the duration and throughput charts.
type TrendPoint struct {
	RunID              int64     `json:"run_id"`
	At                 time.Time `json:"at"`
	Outcome            string    `json:"outcome"`
	DurationSeconds    *float64  `json:"duration_seconds"`     // the whole test
	RestoreSeconds     *float64  `json:"restore_seconds"`      // the sample restore
	ThroughputBps      *float64  `json:"throughput_bps"`       // bytes per second of the sample restore
	SnapshotAgeSeconds *int64    `json:"snapshot_age_seconds"` // newest snapshot's age at the test
}

// Vault is a vault's usage against its quota.
type Vault struct {
	ID         int64        `json:"id"`
	Name       string       `json:"name"`
	Island     string       `json:"island"`
	Status     string       `json:"status"`
	QuotaBytes int64        `json:"quota_bytes"`
	UsageBytes *int64       `json:"usage_bytes"`
	UsageRatio *float64     `json:"usage_ratio"`
	Level      string       `json:"level"` // ok, 80, 95, full, unknown
	History    []UsagePoint `json:"history"`
}

// UsagePoint is one usage observation.
type UsagePoint struct {
	At    time.Time `json:"at"`
	Bytes int64     `json:"bytes"`
}

// Pledge is a pledge's status.
type Pledge struct {
	ID                  int64     `json:"id"`
	Island              string    `json:"island"`
	NodeID              string    `json:"node_id"`
	Zone                string    `json:"zone"`
	CapacityBytes       int64     `json:"capacity_bytes"`
	LayoutCapacityBytes *int64    `json:"layout_capacity_bytes"`
	Status              string    `json:"status"`
	StatusDetail        string    `json:"status_detail"`
	Since               time.Time `json:"since"`
}

// KeyEvent is a vault key created, rotated, revoked or expired in the period.
type KeyEvent struct {
	At          time.Time `json:"at"`
	Vault       string    `json:"vault"`
	Key         string    `json:"key"`
	AccessKeyID string    `json:"access_key_id"`
	Event       string    `json:"event"` // created, rotated, revoked, expired
}

// Island is an island's capacity.
type Island struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	Status            string `json:"status"`
	ReplicationFactor int    `json:"replication_factor"`
	PledgedBytes      int64  `json:"pledged_bytes"`   // live pledges
	LayoutBytes       *int64 `json:"layout_bytes"`    // Garage's applied layout (raw)
	AllocatedBytes    int64  `json:"allocated_bytes"` // vault quotas
	UsedBytes         int64  `json:"used_bytes"`      // vault usage
	PledgesDown       int    `json:"pledges_down"`
	// Repositories on the island's vaults by status: v2 federation reports only.
	Repositories *StatusCounts `json:"repositories,omitempty"`
}

// MatrixRow is one member's line of the red/green matrix.
type MatrixRow struct {
	Member       MemberRef    `json:"member"`
	Repositories []MatrixCell `json:"repositories"`
}

// MatrixCell is one repository in the matrix.
type MatrixCell struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Mode       string     `json:"mode"`
	Status     string     `json:"status"`
	LastTestAt *time.Time `json:"last_test_at"`
}

// Incident is a warning or critical event of the period.
type Incident struct {
	At       time.Time `json:"at"`
	Member   string    `json:"member"` // slug; "" for the federation
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"`
	Subject  string    `json:"subject"`
	Title    string    `json:"title"` // in English, as the event was recorded
	// Detail: the event's facts its line is said from in a reader's language
	// (notify.TitleKeys only); absent in reports made before it was kept.
	Detail map[string]any `json:"detail,omitempty"`
}

// Input is what Build computes a report from, read by Gather (or written by tests).
type Input struct {
	Scope       string
	Member      *MemberRef
	Period      Period
	GeneratedAt time.Time
	Checkpoint  Checkpoint
	Members     []MemberRef // federation: every member
	// Lines: each member's counts, computed in SQL (federation reports); IslandRepositories:
	// repositories per island by status.
	Lines              []MemberLine
	IslandRepositories map[int64]StatusCounts
	Repositories       []RepoInput
	Vaults             []VaultInput
	Pledges            []Pledge
	KeyEvents          []KeyEvent
	Islands            []Island
	Incidents          []Incident
}

// RepoInput is a repository with its finished runs up to the period's end.
type RepoInput struct {
	ID                     int64
	Name, Vault, Island    string
	Member                 MemberRef
	Mode                   string
	RPOSeconds, RTOSeconds int64
	// Evidence of the latest run (see Repository.Evidence).
	Evidence []Evidence
	// Runs: finished runs (not cancelled) in the period, oldest first (member reports).
	Runs []RunInput
	// Latest is the newest finished run up to the period's end (in the period or before).
	Latest *RunInput
	// LastSuccessAt is the newest passed or warning run up to the period's end.
	LastSuccessAt *time.Time
}

// RunInput is a finished test run.
type RunInput struct {
	ID                 int64
	Status             string // passed, warning, failed, error
	Reason             string
	FinishedAt         time.Time
	DurationMS         *int64
	SnapshotAgeSeconds *int64
	DeletedSnapshots   int
	RestoreSeconds     *float64
	ThroughputBps      *float64
	RepoSizeBytes      *int64
	RTOEstimateSeconds *int64
}

// VaultInput is a vault with its usage in the period.
type VaultInput struct {
	ID           int64
	Name, Island string
	Status       string
	QuotaBytes   int64
	UsageBytes   *int64
	History      []UsagePoint
}

// maxTrendPoints and maxUsagePoints bound the series kept in a report.
const (
	maxTrendPoints = 60
	maxUsagePoints = 60
)

func statusOf(outcome string) string {
	switch outcome {
	case "passed":
		return StatusGreen
	case "warning":
		return StatusAmber
	case "failed", "error":
		return StatusRed
	}
	return StatusGrey
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := math.Round(float64(n)/float64(d)*10000) / 10000
	return &r
}

func ptr[T any](v T) *T { return &v }

// RunTotals is what a repository's finished runs of the period amount to, as a member
// report computes it (totalsOf). A v2 federation report counts the same definitions in SQL
// (gatherCounts), and a test proves each member's line agrees with its member report.
type RunTotals struct {
	Tests                   TestStats // PassRate left nil: computed by buildRepository
	WorstSnapshotAgeSeconds *int64
	DeletionsSeen           int
	SizeBytes               *int64   // the newest run's that measured it
	RTOEstimateSeconds      *int64   // the newest run's projection
	MedianThroughputBps     *float64 // of the runs that measured one (the upper median)
	LastFailureReason       string   // the newest failed or error run's reason
}

// totalsOf computes a repository's RunTotals from its runs (oldest first).
func totalsOf(runs []RunInput) RunTotals {
	var t RunTotals
	var throughputs []float64
	for _, run := range runs {
		t.Tests.Total++
		switch run.Status {
		case "passed":
			t.Tests.Passed++
		case "warning":
			t.Tests.Warning++
		case "failed":
			t.Tests.Failed++
		case "error":
			t.Tests.Error++
		}
		if run.Status == "failed" || run.Status == "error" {
			t.LastFailureReason = run.Reason
		}
		if run.SnapshotAgeSeconds != nil && (t.WorstSnapshotAgeSeconds == nil || *run.SnapshotAgeSeconds > *t.WorstSnapshotAgeSeconds) {
			t.WorstSnapshotAgeSeconds = ptr(*run.SnapshotAgeSeconds)
		}
		t.DeletionsSeen += run.DeletedSnapshots
		if run.RepoSizeBytes != nil {
			t.SizeBytes = ptr(*run.RepoSizeBytes)
		}
		if run.RTOEstimateSeconds != nil {
			t.RTOEstimateSeconds = ptr(*run.RTOEstimateSeconds)
		}
		if run.ThroughputBps != nil && *run.ThroughputBps > 0 {
			throughputs = append(throughputs, *run.ThroughputBps)
		}
	}
	if len(throughputs) > 0 {
		slices.Sort(throughputs)
		t.MedianThroughputBps = ptr(throughputs[len(throughputs)/2])
	}
	return t
}

// buildRepository computes one repository's record from its runs (member reports).
func buildRepository(in RepoInput) Repository {
	r := Repository{ID: in.ID, Name: in.Name, Member: in.Member.Slug, Vault: in.Vault, Island: in.Island, Mode: in.Mode,
		RPOSeconds: in.RPOSeconds, RTOSeconds: in.RTOSeconds, LastSuccessAt: utcPtr(in.LastSuccessAt),
		Failures: []Failure{}, Trend: []TrendPoint{}, Evidence: append([]Evidence{}, in.Evidence...)}
	if in.Latest != nil {
		r.LastOutcome, r.LastTestAt = in.Latest.Status, ptr(in.Latest.FinishedAt.UTC())
	}
	r.Status = statusOf(r.LastOutcome)
	t := totalsOf(in.Runs)
	r.Tests, r.WorstSnapshotAgeSeconds, r.DeletionsSeen, r.SizeBytes = t.Tests, t.WorstSnapshotAgeSeconds, t.DeletionsSeen, t.SizeBytes
	r.lastFailureReason = t.LastFailureReason
	for _, run := range in.Runs {
		if run.Status == "failed" || run.Status == "error" {
			r.Failures = append(r.Failures, Failure{RunID: run.ID, At: run.FinishedAt.UTC(), Outcome: run.Status, Reason: run.Reason})
		}
		p := TrendPoint{RunID: run.ID, At: run.FinishedAt.UTC(), Outcome: run.Status, RestoreSeconds: run.RestoreSeconds,
			ThroughputBps: run.ThroughputBps, SnapshotAgeSeconds: run.SnapshotAgeSeconds}
		if run.DurationMS != nil {
			p.DurationSeconds = ptr(float64(*run.DurationMS) / 1000)
		}
		r.Trend = append(r.Trend, p)
	}
	if len(r.Trend) > maxTrendPoints {
		r.Trend = r.Trend[len(r.Trend)-maxTrendPoints:]
	}
	r.Tests.PassRate = ratio(r.Tests.Passed+r.Tests.Warning, r.Tests.Total)
	if r.WorstSnapshotAgeSeconds != nil {
		r.RPOMet = ptr(*r.WorstSnapshotAgeSeconds <= r.RPOSeconds)
	}
	// Projected full restore: the verifier's own projection from the latest measuring run,
	// else the repository's size at the median throughput of the period.
	if t.RTOEstimateSeconds != nil {
		r.ProjectedRestoreSeconds = ptr(*t.RTOEstimateSeconds)
	} else if r.SizeBytes != nil && t.MedianThroughputBps != nil {
		r.ProjectedRestoreSeconds = ptr(int64(math.Ceil(float64(*r.SizeBytes) / *t.MedianThroughputBps)))
	}
	if r.ProjectedRestoreSeconds != nil {
		r.RTOMet = ptr(*r.ProjectedRestoreSeconds <= r.RTOSeconds)
	}
	return r
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return ptr(t.UTC())
}

func buildVault(in VaultInput) Vault {
	v := Vault{ID: in.ID, Name: in.Name, Island: in.Island, Status: in.Status, QuotaBytes: in.QuotaBytes, UsageBytes: in.UsageBytes,
		Level: "unknown", History: []UsagePoint{}}
	if in.UsageBytes != nil && in.QuotaBytes > 0 {
		r := math.Round(float64(*in.UsageBytes)/float64(in.QuotaBytes)*10000) / 10000
		v.UsageRatio = &r
		switch {
		case *in.UsageBytes >= in.QuotaBytes:
			v.Level = "full"
		case r >= 0.95:
			v.Level = "95"
		case r >= 0.80:
			v.Level = "80"
		default:
			v.Level = "ok"
		}
	}
	h := in.History
	if len(h) > maxUsagePoints { // keep evenly spaced points, always the last
		step := float64(len(h)-1) / float64(maxUsagePoints-1)
		out := make([]UsagePoint, 0, maxUsagePoints)
		for i := range maxUsagePoints {
			out = append(out, h[int(math.Round(float64(i)*step))])
		}
		h = out
	}
	for _, p := range h {
		v.History = append(v.History, UsagePoint{At: p.At.UTC(), Bytes: p.Bytes})
	}
	return v
}

// Build computes the report from its input. It is deterministic: the same input gives
// the same document, byte for byte once encoded. A member report is v1 (a record per
// repository); a federation report is v2 (buildFederation: a line of counts per member).
func Build(in Input) Report {
	if in.Scope == ScopeFederation {
		return buildFederation(in)
	}
	r := Report{Schema: SchemaV1, Scope: in.Scope, Member: in.Member, GeneratedAt: in.GeneratedAt.UTC(), Checkpoint: in.Checkpoint,
		Period:       Period{Kind: in.Period.Kind, Start: in.Period.Start.UTC(), End: in.Period.End.UTC()},
		Repositories: []Repository{}, Vaults: []Vault{}, Pledges: []Pledge{}, KeyEvents: []KeyEvent{}, Islands: []Island{},
		Matrix: []MatrixRow{}, Incidents: []Incident{}, Summary: Summary{Attention: []string{}}}
	repos := slices.Clone(in.Repositories)
	sort.Slice(repos, func(i, j int) bool {
		return cmp.Or(cmp.Compare(repos[i].Member.Slug, repos[j].Member.Slug), cmp.Compare(repos[i].Name, repos[j].Name),
			cmp.Compare(repos[i].ID, repos[j].ID)) < 0
	})
	built := make([]Repository, 0, len(repos))
	passed := 0
	for _, in := range repos {
		b := buildRepository(in)
		built = append(built, b)
		r.Summary.Repositories++
		switch b.Status {
		case StatusGreen:
			r.Summary.Green++
		case StatusAmber:
			r.Summary.Amber++
		case StatusRed:
			r.Summary.Red++
		default:
			r.Summary.Grey++
		}
		r.Summary.Tests += b.Tests.Total
		passed += b.Tests.Passed + b.Tests.Warning
	}
	r.Summary.PassRate = ratio(passed, r.Summary.Tests)
	r.Repositories = built
	for _, v := range in.Vaults {
		r.Vaults = append(r.Vaults, buildVault(v))
	}
	sort.Slice(r.Vaults, func(i, j int) bool { return r.Vaults[i].Name < r.Vaults[j].Name })
	r.Pledges = append(r.Pledges, in.Pledges...)
	sort.Slice(r.Pledges, func(i, j int) bool { return r.Pledges[i].ID < r.Pledges[j].ID })
	r.KeyEvents = append(r.KeyEvents, in.KeyEvents...)
	sort.Slice(r.KeyEvents, func(i, j int) bool {
		return cmp.Or(r.KeyEvents[i].At.Compare(r.KeyEvents[j].At), cmp.Compare(r.KeyEvents[i].AccessKeyID, r.KeyEvents[j].AccessKeyID),
			cmp.Compare(r.KeyEvents[i].Event, r.KeyEvents[j].Event)) < 0
	})
	r.Summary.Attention = attention(r, built)
	return r
}

// finishLine computes what a member line derives from its counts: the pass rate and
// whether the member needs attention.
func finishLine(l MemberLine) MemberLine {
	l.Tests.PassRate = ratio(l.Tests.Passed+l.Tests.Warning, l.Tests.Total)
	l.Attention = l.Red+l.Grey+l.Amber+l.RPOMissed+l.RTOMissed+l.RepositoriesWithDeletions > 0
	return l
}

// worseLine orders member lines worst first: most red repositories, then most past their
// RPO, untested, past their RTO, with snapshots that disappeared, amber; then by slug.
func worseLine(a, b MemberLine) int {
	return cmp.Or(cmp.Compare(b.Red, a.Red), cmp.Compare(b.RPOMissed, a.RPOMissed), cmp.Compare(b.Grey, a.Grey),
		cmp.Compare(b.RTOMissed, a.RTOMissed), cmp.Compare(b.RepositoriesWithDeletions, a.RepositoriesWithDeletions),
		cmp.Compare(b.Amber, a.Amber), cmp.Compare(a.Member.Slug, b.Member.Slug), cmp.Compare(a.Member.ID, b.Member.ID))
}

// buildFederation computes a v2 federation report: a line of counts per member (every
// member, worst first), the federation's totals, the islands with their repositories by
// status, and the incidents. No repository is listed: its detail is in its member's report.
func buildFederation(in Input) Report {
	r := Report{Schema: SchemaV2, Scope: ScopeFederation, GeneratedAt: in.GeneratedAt.UTC(), Checkpoint: in.Checkpoint,
		Period:       Period{Kind: in.Period.Kind, Start: in.Period.Start.UTC(), End: in.Period.End.UTC()},
		Repositories: []Repository{}, Vaults: []Vault{}, Pledges: []Pledge{}, KeyEvents: []KeyEvent{}, Islands: []Island{},
		Matrix: []MatrixRow{}, Incidents: []Incident{}, Summary: Summary{Attention: []string{}}, Totals: &FederationTotals{},
		Members: make([]MemberLine, 0, len(in.Members))}
	counted := make(map[int64]MemberLine, len(in.Lines))
	for _, l := range in.Lines {
		counted[l.Member.ID] = l
	}
	for _, m := range in.Members {
		l := counted[m.ID]
		delete(counted, m.ID)
		l.Member = m
		r.Members = append(r.Members, finishLine(l))
	}
	for _, l := range counted { // counts of a member not listed (none: members are not deleted)
		r.Members = append(r.Members, finishLine(l))
	}
	slices.SortFunc(r.Members, worseLine)
	t, s := r.Totals, &r.Summary
	var redAt, greyAt, rpoAt, rtoAt, delAt int
	for _, l := range r.Members {
		t.Members++
		if l.Repositories > 0 {
			t.MembersWithRepositories++
		}
		if l.Attention {
			t.MembersNeedingAttention++
		}
		s.Repositories += l.Repositories
		s.Green += l.Green
		s.Amber += l.Amber
		s.Red += l.Red
		s.Grey += l.Grey
		s.Tests += l.Tests.Total
		t.Passed += l.Tests.Passed
		t.Warning += l.Tests.Warning
		t.Failed += l.Tests.Failed
		t.Error += l.Tests.Error
		t.RPOMissed += l.RPOMissed
		t.RTOMissed += l.RTOMissed
		t.DeletionsSeen += l.DeletionsSeen
		t.RepositoriesWithDeletions += l.RepositoriesWithDeletions
		redAt += min(l.Red, 1)
		greyAt += min(l.Grey, 1)
		rpoAt += min(l.RPOMissed, 1)
		rtoAt += min(l.RTOMissed, 1)
		delAt += min(l.RepositoriesWithDeletions, 1)
	}
	s.PassRate = ratio(t.Passed+t.Warning, s.Tests)
	for _, i := range in.Islands {
		c := in.IslandRepositories[i.ID]
		i.Repositories = &c
		r.Islands = append(r.Islands, i)
	}
	sort.Slice(r.Islands, func(i, j int) bool { return r.Islands[i].Name < r.Islands[j].Name })
	r.Incidents = append(r.Incidents, in.Incidents...)
	sort.Slice(r.Incidents, func(i, j int) bool {
		return cmp.Or(r.Incidents[i].At.Compare(r.Incidents[j].At), cmp.Compare(r.Incidents[i].Subject, r.Incidents[j].Subject),
			cmp.Compare(r.Incidents[i].Kind, r.Incidents[j].Kind)) < 0
	})
	for i := range r.Incidents {
		r.Incidents[i].At = r.Incidents[i].At.UTC()
	}
	// What needs attention, counted (the members table says who): these sentences are read
	// back in the reader's language (language.go).
	if s.Red > 0 {
		s.Attention = append(s.Attention, plural(s.Red, "1 repository is red", itoa(s.Red)+" repositories are red")+", at "+members(redAt)+".")
	}
	if t.RPOMissed > 0 {
		s.Attention = append(s.Attention, plural(t.RPOMissed, "1 repository", itoa(t.RPOMissed)+" repositories")+
			" had a snapshot older than "+plural(t.RPOMissed, "its", "their")+" RPO, at "+members(rpoAt)+".")
	}
	if s.Grey > 0 {
		s.Attention = append(s.Attention, plural(s.Grey, "1 repository has", itoa(s.Grey)+" repositories have")+" never been tested, at "+members(greyAt)+".")
	}
	if t.RTOMissed > 0 {
		s.Attention = append(s.Attention, plural(t.RTOMissed, "1 repository", itoa(t.RTOMissed)+" repositories")+
			" would take longer than "+plural(t.RTOMissed, "its", "their")+" RTO to restore in full, at "+members(rtoAt)+".")
	}
	if t.DeletionsSeen > 0 {
		s.Attention = append(s.Attention, plural(t.DeletionsSeen, "1 snapshot", itoa(t.DeletionsSeen)+" snapshots")+" disappeared in the period, in "+
			plural(t.RepositoriesWithDeletions, "1 repository", itoa(t.RepositoriesWithDeletions)+" repositories")+" of "+members(delAt)+".")
	}
	s.Attention = append(s.Attention, attention(r, nil)...) // the islands'
	return r
}

func plural(n int, one, other string) string {
	if n == 1 {
		return one
	}
	return other
}

func members(n int) string { return plural(n, "1 member", itoa(n)+" members") }

// attention lists what needs attention, most urgent first.
func attention(r Report, repos []Repository) []string {
	out := []string{}
	for _, b := range repos {
		who := b.Name
		if r.Scope == ScopeFederation {
			who = b.Member + "/" + b.Name
		}
		switch b.Status {
		case StatusRed:
			reason := "its latest test " + b.LastOutcome
			if b.lastFailureReason != "" {
				reason += ": " + b.lastFailureReason
			}
			out = append(out, "Repository "+who+" is red — "+reason+".")
		case StatusGrey:
			out = append(out, "Repository "+who+" has never been tested.")
		}
	}
	for _, b := range repos {
		who := b.Name
		if r.Scope == ScopeFederation {
			who = b.Member + "/" + b.Name
		}
		if b.RPOMet != nil && !*b.RPOMet {
			out = append(out, "Repository "+who+" had a snapshot older than its RPO ("+human(*b.WorstSnapshotAgeSeconds)+" > "+human(b.RPOSeconds)+").")
		}
		if b.RTOMet != nil && !*b.RTOMet {
			out = append(out, "Repository "+who+" would take "+human(*b.ProjectedRestoreSeconds)+" to restore in full, over its RTO of "+human(b.RTOSeconds)+".")
		}
		if b.DeletionsSeen > 0 {
			out = append(out, "Repository "+who+": "+itoa(b.DeletionsSeen)+" snapshots disappeared in the period.")
		}
	}
	for _, v := range r.Vaults {
		switch v.Level {
		case "full":
			out = append(out, "Vault "+v.Name+" is full.")
		case "95", "80":
			out = append(out, "Vault "+v.Name+" is over "+v.Level+"% of its quota.")
		}
	}
	for _, p := range r.Pledges {
		if p.Status == "down" || p.Status == "short" {
			out = append(out, "Pledged node "+short(p.NodeID)+" on island "+p.Island+" is "+p.Status+".")
		}
	}
	for _, i := range r.Islands {
		if i.PledgesDown > 0 {
			out = append(out, "Island "+i.Name+" has "+itoa(i.PledgesDown)+" pledged node(s) down.")
		}
		if i.Status != "healthy" && i.Status != "" {
			out = append(out, "Island "+i.Name+" is "+i.Status+".")
		}
	}
	return out
}
