package verify

import (
	"time"

	"github.com/chatons/archipelago/internal/problem"
)

// Errors of the domain.
var (
	// ErrNotFound: no such repository or run (or one of another member: callers answer 404).
	ErrNotFound = problem.NotFound("object")
	// ErrNoPassword: the repository is in blind mode, which has no password to remove.
	ErrNoPassword = problem.Conflict("password", "the repository has no password (blind mode)")
)

// FieldError is invalid input, naming the field.
type FieldError = problem.FieldError

// Modes of a repository.
const (
	ModeFull     = "full"     // Archipelago holds the password of a dedicated restic key (after the member's consent)
	ModeAttested = "attested" // blind, plus signed attestations from the member's own agent
	ModeBlind    = "blind"    // no password: freshness, deletion watch and content-hash integrity
)

// Modes lists the modes, from the least the federation holds to the most.
var Modes = []string{ModeBlind, ModeAttested, ModeFull}

// ValidMode reports whether m is a mode.
func ValidMode(m string) bool { return m == ModeBlind || m == ModeAttested || m == ModeFull }

// Run statuses. The last four plus cancelled are final.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusPostponed = "postponed"
	StatusRetrying  = "retrying"
	StatusPassed    = "passed"
	StatusWarning   = "warning"
	StatusFailed    = "failed" // the backup is bad: the member must act
	StatusError     = "error"  // the verifier could not judge: says nothing about the backup
	StatusCancelled = "cancelled"
)

// Level outcomes.
const (
	OutcomePassed  = "passed"
	OutcomeWarning = "warning"
	OutcomeFailed  = "failed"
	OutcomeError   = "error"
	OutcomeSkipped = "skipped"
)

// Levels of a test, in order.
const (
	LevelFreshness = "freshness"
	LevelDeletions = "deletions"
	// LevelContentHash reads objects with the verifier key and compares their SHA-256 with
	// their names (contenthash.go): no password, every mode.
	LevelContentHash = "contenthash"
	LevelIntegrity   = "integrity"
	LevelSample      = "sample"
	LevelCanary      = "canary"
	LevelFull        = "full"
)

// Levels lists the levels in the order they run.
// In blind and attested mode content-hash runs third (the restic levels are skipped).
var Levels = []string{LevelFreshness, LevelDeletions, LevelIntegrity, LevelSample, LevelCanary, LevelFull, LevelContentHash}

// Policy is a repository's test policy. In a Repository, nil fields take the federation
// default (Settings); Effective fills them.
type Policy struct {
	Schedule          *string `json:"schedule"`
	WindowStartMinute *int    `json:"window_start_minute"`
	WindowMinutes     *int    `json:"window_minutes"`
	JitterSeconds     *int    `json:"jitter_seconds"`
	RPOSeconds        *int64  `json:"rpo_seconds"`
	RTOSeconds        *int64  `json:"rto_seconds"`
	SampleFiles       *int    `json:"sample_files"`
	SampleBytes       *int64  `json:"sample_bytes"`
	CheckEveryRuns    *int    `json:"check_every_runs"`
	CheckSubsets      *int    `json:"check_subsets"`
	// FullRestoreDays: a full restore every so many days; 0 means never, whatever the
	// federation default says (nil takes the default, which may itself be never).
	FullRestoreDays *int    `json:"full_restore_days"`
	CanaryPath      *string `json:"canary_path"`
	// Target is the side tested: TargetSource (the vault; nil means it) or TargetCopy (the
	// vault's protected copy on its second island, read with the copy's verifier key).
	Target *string `json:"target"`
}

// Settings are the federation-wide defaults and limits.
type Settings struct {
	Schedule          string `json:"schedule"`
	WindowStartMinute int    `json:"window_start_minute"`
	WindowMinutes     int    `json:"window_minutes"`
	JitterSeconds     int    `json:"jitter_seconds"`
	RPOSeconds        int64  `json:"rpo_seconds"`
	RTOSeconds        int64  `json:"rto_seconds"`
	SampleFiles       int    `json:"sample_files"`
	SampleBytes       int64  `json:"sample_bytes"`
	CheckEveryRuns    int    `json:"check_every_runs"`
	CheckSubsets      int    `json:"check_subsets"`
	FullRestoreDays   *int   `json:"full_restore_days"`
	CanaryPath        string `json:"canary_path"`
	IslandConcurrency int    `json:"island_concurrency"`
}

// EffectivePolicy is a policy with every value decided.
type EffectivePolicy struct {
	Schedule          string `json:"schedule"`
	WindowStartMinute int    `json:"window_start_minute"`
	WindowMinutes     int    `json:"window_minutes"`
	JitterSeconds     int    `json:"jitter_seconds"`
	RPOSeconds        int64  `json:"rpo_seconds"`
	RTOSeconds        int64  `json:"rto_seconds"`
	SampleFiles       int    `json:"sample_files"`
	SampleBytes       int64  `json:"sample_bytes"`
	CheckEveryRuns    int    `json:"check_every_runs"`
	CheckSubsets      int    `json:"check_subsets"`
	FullRestoreDays   *int   `json:"full_restore_days"`
	CanaryPath        string `json:"canary_path"`
	Target            string `json:"target"`
}

func or[T any](p *T, def T) T {
	if p != nil {
		return *p
	}
	return def
}

// Effective fills the policy's unset values from the federation defaults.
func (p Policy) Effective(s Settings) EffectivePolicy {
	e := EffectivePolicy{
		Schedule: or(p.Schedule, s.Schedule), WindowStartMinute: or(p.WindowStartMinute, s.WindowStartMinute),
		WindowMinutes: or(p.WindowMinutes, s.WindowMinutes), JitterSeconds: or(p.JitterSeconds, s.JitterSeconds),
		RPOSeconds: or(p.RPOSeconds, s.RPOSeconds), RTOSeconds: or(p.RTOSeconds, s.RTOSeconds),
		SampleFiles: or(p.SampleFiles, s.SampleFiles), SampleBytes: or(p.SampleBytes, s.SampleBytes),
		CheckEveryRuns: or(p.CheckEveryRuns, s.CheckEveryRuns), CheckSubsets: or(p.CheckSubsets, s.CheckSubsets),
		FullRestoreDays: s.FullRestoreDays, CanaryPath: or(p.CanaryPath, s.CanaryPath),
		Target: or(p.Target, TargetSource),
	}
	if p.FullRestoreDays != nil {
		e.FullRestoreDays = p.FullRestoreDays
		if *p.FullRestoreDays == 0 {
			e.FullRestoreDays = nil
		}
	}
	return e
}

// next computes the policy's next start after now for the repository.
func (e EffectivePolicy) next(repoID int64, now time.Time) (time.Time, error) {
	sch, err := ParseSchedule(e.Schedule)
	if err != nil {
		return time.Time{}, err
	}
	return NextRun(sch, Window{StartMinute: e.WindowStartMinute, Minutes: e.WindowMinutes},
		time.Duration(e.JitterSeconds)*time.Second, repoID, now), nil
}

// Repository is a restic repository a member keeps in one of its vaults. The password is
// never part of it: HasPassword says whether one is stored.
type Repository struct {
	ID                int64           `json:"id"`
	MemberID          int64           `json:"member_id"`
	VaultID           int64           `json:"vault_id"`
	IslandID          int64           `json:"island_id"`
	Name              string          `json:"name"`
	Path              string          `json:"path"`
	Mode              string          `json:"mode"`
	HasPassword       bool            `json:"has_password"`
	PasswordSetAt     *time.Time      `json:"password_set_at"`
	CanaryToken       string          `json:"canary_token"`
	Policy            Policy          `json:"policy"`
	Effective         EffectivePolicy `json:"effective_policy"`
	Paused            bool            `json:"paused"`
	NextRunAt         *time.Time      `json:"next_run_at"`
	CheckCount        int64           `json:"-"`
	RunsSinceCheck    int             `json:"-"`
	LastFullRestoreAt *time.Time      `json:"last_full_restore_at"`
	LastRunID         *int64          `json:"last_run_id"`
	CreatedBy         string          `json:"created_by"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	// FullConsent is the consent given for full mode (nil: never given).
	FullConsent *ConsentRecord `json:"full_consent"`
	// ContentHash is the content-hash coverage of the current cycle (nil: never hashed).
	ContentHash *Coverage `json:"content_hash"`

	// Notice is set by RepositoryCreate when the path could not be checked at registration.
	Notice string `json:"notice,omitempty"`

	// From the vault, for display.
	VaultName  string `json:"vault_name"`
	BucketName string `json:"bucket_name"`
	IslandName string `json:"island_name"`

	// The last finished run, for lists and the matrix.
	Last *RunSummary `json:"last"`
}

// RunSummary is the short form of a finished run shown next to a repository.
type RunSummary struct {
	ID                 int64      `json:"id"`
	Status             string     `json:"status"`
	Reason             string     `json:"reason"`
	FinishedAt         *time.Time `json:"finished_at"`
	SnapshotAgeSeconds *int64     `json:"snapshot_age_seconds"`
	RTOEstimateSeconds *int64     `json:"rto_estimate_seconds"`
}

// Progress is the live state of a running test.
type Progress struct {
	Level      string  `json:"level,omitempty"`
	Phase      string  `json:"phase,omitempty"`
	Percent    float64 `json:"percent"`
	BytesDone  uint64  `json:"bytes_done,omitempty"`
	BytesTotal uint64  `json:"bytes_total,omitempty"`
	FilesDone  uint64  `json:"files_done,omitempty"`
	FilesTotal uint64  `json:"files_total,omitempty"`
	// RateBps is the current level's average rate (bytes a second) and ETASeconds the time
	// its remaining bytes would take at that rate; both absent until bytes move.
	RateBps    float64 `json:"rate_bps,omitempty"`
	ETASeconds *int64  `json:"eta_seconds,omitempty"`
	// LevelsDone are the levels finished so far, in order: the live level log while the
	// test runs (the levels table is written when it ends).
	LevelsDone []LevelDone `json:"levels_done,omitempty"`

	done *LevelDone // set on the report that a level ended
}

// LevelDone is a level finished during a running test.
type LevelDone struct {
	Level      string `json:"level"`
	Outcome    string `json:"outcome"`
	Summary    string `json:"summary"`
	DurationMS int64  `json:"duration_ms"`
	// Said is the summary in the reader's language (i18n.Printer.Retell), filled by the API
	// for the caller; the stored and streamed Summary stays in English.
	Said string `json:"said,omitempty"`
}

// Run is one test of a repository.
type Run struct {
	ID                 int64         `json:"id"`
	RepositoryID       int64         `json:"repository_id"`
	MemberID           int64         `json:"member_id"`
	IslandID           int64         `json:"island_id"`
	JobID              *int64        `json:"job_id"`
	Trigger            string        `json:"trigger"`
	RequestedBy        string        `json:"requested_by"`
	Mode               string        `json:"mode"`
	Status             string        `json:"status"`
	Reason             string        `json:"reason"`
	Attempt            int           `json:"attempt"`
	Postponements      int           `json:"postponements"`
	Worker             string        `json:"worker"`
	QueuedAt           time.Time     `json:"queued_at"`
	StartedAt          *time.Time    `json:"started_at"`
	FinishedAt         *time.Time    `json:"finished_at"`
	DurationMS         *int64        `json:"duration_ms"`
	SnapshotID         *string       `json:"snapshot_id"`
	SnapshotTime       *time.Time    `json:"snapshot_time"`
	SnapshotAgeSeconds *int64        `json:"snapshot_age_seconds"`
	SnapshotCount      *int          `json:"snapshot_count"`
	DeletedSnapshots   int           `json:"deleted_snapshots"`
	CheckSubset        string        `json:"check_subset"`
	FullRestore        bool          `json:"full_restore"`
	SampleFiles        *int64        `json:"sample_files"`
	SampleBytes        *int64        `json:"sample_bytes"`
	RestoreSeconds     *float64      `json:"restore_seconds"`
	ThroughputBps      *float64      `json:"throughput_bps"`
	RepoSizeBytes      *int64        `json:"repo_size_bytes"`
	RTOEstimateSeconds *int64        `json:"rto_estimate_seconds"`
	RPOTargetSeconds   int64         `json:"rpo_target_seconds"`
	RTOTargetSeconds   int64         `json:"rto_target_seconds"`
	Progress           Progress      `json:"progress"`
	ProgressAt         *time.Time    `json:"progress_at"`
	RepositoryName     string        `json:"repository_name"`
	Levels             []LevelResult `json:"levels,omitempty"`
	// Target is the side tested: TargetSource or TargetCopy.
	Target string `json:"target"`
}

// Final reports whether the run has its outcome.
func (r Run) Final() bool {
	switch r.Status {
	case StatusPassed, StatusWarning, StatusFailed, StatusError, StatusCancelled:
		return true
	}
	return false
}

// LevelResult is the result of one level of a run.
type LevelResult struct {
	Level      string         `json:"level"`
	Outcome    string         `json:"outcome"`
	Summary    string         `json:"summary"`
	StartedAt  time.Time      `json:"started_at"`
	DurationMS int64          `json:"duration_ms"`
	Details    map[string]any `json:"details"`
}
