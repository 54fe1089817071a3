package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/chatons/archipelago/internal/authz"
	"github.com/chatons/archipelago/internal/verify"
)

// Restore tests: the runs of repositories' tests, read with MemberRead on their member.

var runStatuses = map[string]bool{
	verify.StatusQueued: true, verify.StatusRunning: true, verify.StatusPostponed: true, verify.StatusRetrying: true,
	verify.StatusPassed: true, verify.StatusWarning: true, verify.StatusFailed: true, verify.StatusError: true,
	verify.StatusCancelled: true,
}

// RestoreTestList answers GET /v1/restore-tests (?member, ?repository_id, ?status, ?since,
// ?before, ?limit), newest first.
func (a *API) RestoreTestList(w http.ResponseWriter, r *http.Request) error {
	ids, err := a.memberFilter(r)
	if err != nil {
		return err
	}
	f := verify.RunFilter{MemberIDs: ids, Status: trimmedQuery(r, "status")}
	if f.Status != "" && !runStatuses[f.Status] {
		return Invalid("status", "must be one of queued, running, postponed, retrying, passed, warning, failed, error, cancelled")
	}
	if f.RepositoryID, err = queryInt(trimmedQuery(r, "repository_id"), "repository_id", 1, 1<<62); err != nil {
		return err
	}
	req, err := pageParams(r)
	if err != nil {
		return err
	}
	if s := trimmedQuery(r, "since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return Invalid("since", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
		f.Since = &t
	}
	pg, err := verify.RunPage(r.Context(), a.pool, f, req)
	return replyPage(w, "runs", pg, err)
}

func (a *API) runFor(r *http.Request) (verify.Run, error) {
	return loadByID(r, "id", "restore test", func(ctx context.Context, id int64) (verify.Run, error) {
		return verify.RunGetByID(ctx, a.pool, id)
	}, onMember(r, authz.MemberRead, func(v verify.Run) int64 { return v.MemberID }))
}

// RestoreTestGet answers GET /v1/restore-tests/{id}: the run with its per-level results.
func (a *API) RestoreTestGet(w http.ResponseWriter, r *http.Request) error {
	run, err := a.runFor(r)
	if err != nil {
		return err
	}
	if run.Levels == nil {
		run.Levels = []verify.LevelResult{}
	}
	view, err := a.runWithAttestation(r, run)
	return reply(w, http.StatusOK, view, err)
}

// RestoreTestLog answers GET /v1/restore-tests/{id}/log: restic's output for the run
// (capped, secrets scrubbed), as text.
func (a *API) RestoreTestLog(w http.ResponseWriter, r *http.Request) error {
	run, err := a.runFor(r)
	if err != nil {
		return err
	}
	log, err := verify.RunLog(r.Context(), a.pool, run.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(log))
	return nil
}

// progressFor reads the live progress of the path's run, checking the caller may see it.
func (a *API) progressFor(r *http.Request, id int64) (verify.RunProgress, error) {
	pr, member, err := verify.RunProgressGet(r.Context(), a.pool, id)
	if err != nil {
		return pr, err
	}
	if err := check(principal(r), authz.MemberRead, authz.Member(member)); err != nil {
		return pr, err
	}
	a.sayLevels(r, &pr)
	return pr, nil
}

// sayLevels writes each finished level's summary in the caller's language (Said), so that
// a page's live level log shows it in the page's language before the page reloads.
func (a *API) sayLevels(r *http.Request, pr *verify.RunProgress) {
	if a.langs == nil || a.langs.cat == nil {
		return
	}
	p := a.langs.printer(r)
	for i, l := range pr.Progress.LevelsDone {
		pr.Progress.LevelsDone[i].Said = p.Retell(l.Summary)
	}
}

// RestoreTestProgress answers GET /v1/restore-tests/{id}/progress: status and progress
// only, for polling (the worker writes progress at most once a second).
func (a *API) RestoreTestProgress(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	pr, err := a.progressFor(r, id)
	return reply(w, http.StatusOK, pr, err)
}

// progressPoll is how often the event stream reads the run's row.
var progressPoll = time.Second

// progressStreamMax bounds one event stream; clients reconnect (EventSource does).
const progressStreamMax = 30 * time.Minute

// RestoreTestEvents answers GET /v1/restore-tests/{id}/events: a server-sent event stream
// of `progress` events (the same body as /progress) each time the run changes, ending
// after the event that carries a final status.
func (a *API) RestoreTestEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	pr, err := a.progressFor(r, id)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(p verify.RunProgress) bool {
		b, _ := json.Marshal(p)
		if _, err := fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send(pr) || pr.Final {
		return nil
	}
	last := pr
	stop := time.After(progressStreamMax)
	tick := time.NewTicker(progressPoll)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-stop:
			return nil
		case <-tick.C:
		}
		cur, _, err := verify.RunProgressGet(r.Context(), a.pool, id)
		if err != nil {
			return nil
		}
		a.sayLevels(r, &cur)
		if cur.Status == last.Status && cur.Reason == last.Reason && sameTime(cur.ProgressAt, last.ProgressAt) {
			// A comment keeps proxies from closing an idle stream.
			if _, err := fmt.Fprint(w, ": waiting\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
			continue
		}
		if !send(cur) || cur.Final {
			return nil
		}
		last = cur
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
