package reports

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatons/archipelago/internal/audit"
)

// LastComplete returns the latest complete period of kind before now, in UTC: weekly
// periods run Monday 00:00 to Monday 00:00, monthly ones from the first of a month to the
// first of the next.
func LastComplete(kind string, now time.Time) (Period, error) {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	switch kind {
	case PeriodWeekly:
		end := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7)) // this week's Monday
		return Period{Kind: kind, Start: end.AddDate(0, 0, -7), End: end}, nil
	case PeriodMonthly:
		end := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		return Period{Kind: kind, Start: end.AddDate(0, -1, 0), End: end}, nil
	}
	return Period{}, fmt.Errorf("no schedule for period %q", kind)
}

// ParsePeriods reads a configured list such as "weekly,monthly" ("" or "none": none).
func ParsePeriods(list []string) ([]string, error) {
	out := []string{}
	for _, p := range list {
		switch p {
		case PeriodWeekly, PeriodMonthly:
			out = append(out, p)
		case "", "none":
		default:
			return nil, fmt.Errorf("%q is not weekly or monthly", p)
		}
	}
	return out, nil
}

// ScheduleEvery is how often the scheduler looks for a period without its reports.
const ScheduleEvery = time.Hour

// RunSchedule generates the reports of the latest complete periods that do not exist
// yet: one for the federation and one per member, for each configured period. It is the
// "reports.schedule" task; a report generated twice by racing processes is refused by
// the database and skipped.
func (s *Service) RunSchedule(ctx context.Context) error {
	ctx = audit.WithActor(ctx, audit.System("reports.schedule"))
	members, err := gatherMembers(ctx, s.pool)
	if err != nil {
		return err
	}
	var errs []error
	for _, kind := range s.periods {
		p, err := LastComplete(kind, s.now())
		if err != nil {
			return err
		}
		reqs := []Request{{Scope: ScopeFederation, Period: p}}
		for _, m := range members {
			reqs = append(reqs, Request{Scope: ScopeMember, Member: &m, Period: p})
		}
		for _, req := range reqs {
			var exists bool
			var mid int64
			if req.Member != nil {
				mid = req.Member.ID
			}
			if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM reports WHERE scope = $1 AND coalesce(member_id, 0) = $2
				AND period = $3 AND period_start = $4)`, req.Scope, mid, kind, p.Start).Scan(&exists); err != nil {
				return err
			}
			if exists {
				continue
			}
			if _, err := s.Generate(ctx, req); err != nil && !isUniqueViolation(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
