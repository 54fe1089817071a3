package protection

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/notify"
)

// Rules returns the lifecycle rules Archipelago keeps on every vault and copy: only the
// abort of multipart uploads left unfinished for AbortMultipartDays, whose bytes Garage's
// quota does not count.
func Rules() []garage.LifecycleRule {
	return []garage.LifecycleRule{{ID: AbortRuleID, Status: "Enabled",
		AbortIncompleteMultipartUpload: &garage.LifecycleAbortMPU{DaysAfterInitiation: AbortMultipartDays}}}
}

func isOurRule(r garage.LifecycleRule) bool {
	return r.ID == AbortRuleID && r.Enabled() && r.Expiration == nil && r.Filter == nil &&
		r.AbortIncompleteMultipartUpload != nil && r.AbortIncompleteMultipartUpload.DaysAfterInitiation == AbortMultipartDays
}

// days is a count of days in words, "1 day" or "3 days" (as internal/approvals writes
// them: Retell says them again « 1 jour », « 3 jours »).
func days[N int | int64](n N) string {
	if n == 1 || n == -1 {
		return fmt.Sprintf("%d day", n)
	}
	return fmt.Sprintf("%d days", n)
}

// DescribeRule says in one line what a lifecycle rule does.
func DescribeRule(r garage.LifecycleRule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule %q (%s)", string(r.ID), string(r.Status))
	if e := r.Expiration; e != nil {
		switch {
		case e.Days != nil:
			fmt.Fprintf(&b, ": expire objects %s old", days(*e.Days))
		case e.Date != "":
			fmt.Fprintf(&b, ": expire every object on %s", string(e.Date))
		default:
			b.WriteString(": expiration")
		}
	}
	if a := r.AbortIncompleteMultipartUpload; a != nil {
		fmt.Fprintf(&b, ": abort multipart uploads after %s", days(a.DaysAfterInitiation))
	}
	if f := r.Filter; f != nil {
		if f.And != nil {
			f = f.And
		}
		if f.Prefix != "" {
			fmt.Fprintf(&b, " under prefix %q", string(f.Prefix))
		}
		if f.ObjectSizeGreaterThan != nil || f.ObjectSizeLessThan != nil {
			b.WriteString(" (size filter)")
		}
	}
	return b.String()
}

// LifecycleCheck is what the tripwire found on one bucket.
type LifecycleCheck struct {
	VaultID int64 `json:"vault_id"`
	// Bucket is "vault" or "copy".
	Bucket string `json:"bucket"`
	// Foreign describes the rules Archipelago did not set (removed).
	Foreign []string `json:"foreign"`
	// Expirations counts the foreign rules that expire objects: a critical alert.
	Expirations int `json:"expirations"`
	// Set is true when Archipelago's rules were (re)applied.
	Set bool `json:"set"`
	// MultipartBytes are the bytes of unfinished multipart uploads Garage reported.
	MultipartBytes int64 `json:"multipart_bytes"`
}

type bucketRef struct {
	vaultID, memberID, islandID int64
	bucketID, name, island      string
	copy                        bool
}

// CheckLifecycle is the tripwire's periodic run: every provisioned vault and copy bucket
// is read from Garage, any lifecycle rule Archipelago did not set is removed through
// UpdateBucket (an Expiration rule raises a critical alert), Archipelago's abort rule is
// kept, and due unfreezes are applied. One unreachable island does not stop the others.
func (s *Service) CheckLifecycle(ctx context.Context) error {
	ctx = withSystemActor(ctx, "protection.tripwire")
	rows, err := s.pool.Query(ctx, `SELECT v.id, v.member_id, v.island_id, v.garage_bucket_id, v.bucket_name, i.name, false
		FROM vaults v JOIN islands i ON i.id = v.island_id
		WHERE v.status IN ('active', 'deleting') AND v.garage_bucket_id IS NOT NULL
		UNION ALL
		SELECT v.id, v.member_id, p.copy_island_id, p.copy_garage_bucket_id, p.copy_bucket_name, i.name, true
		FROM vault_protection p JOIN vaults v ON v.id = p.vault_id JOIN islands i ON i.id = p.copy_island_id
		WHERE p.copy_garage_bucket_id IS NOT NULL -- also a purged vault's copy, kept through the grace period
		ORDER BY 3, 1`)
	if err != nil {
		return fmt.Errorf("lifecycle tripwire: list buckets: %w", err)
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (bucketRef, error) {
		var b bucketRef
		return b, r.Scan(&b.vaultID, &b.memberID, &b.islandID, &b.bucketID, &b.name, &b.island, &b.copy)
	})
	if err != nil {
		return fmt.Errorf("lifecycle tripwire: list buckets: %w", err)
	}
	var errs []error
	clients := map[int64]*garage.Client{}
	down := map[int64]bool{}
	for _, ref := range refs {
		if down[ref.islandID] {
			continue
		}
		gc := clients[ref.islandID]
		if gc == nil {
			if gc, err = s.garageFor(ctx, ref.islandID); err != nil {
				errs = append(errs, err)
				down[ref.islandID] = true
				continue
			}
			clients[ref.islandID] = gc
		}
		if _, err := s.checkBucket(ctx, gc, ref); err != nil {
			errs = append(errs, err)
			if !errors.Is(err, garage.ErrNotFound) {
				down[ref.islandID] = true // its other buckets wait for the next run
			}
		}
	}
	if err := s.ApplyUnfreezes(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CheckVaultLifecycle runs the tripwire on one vault's bucket now.
func (s *Service) CheckVaultLifecycle(ctx context.Context, vaultID int64) (LifecycleCheck, error) {
	ctx = withSystemActor(ctx, "protection.tripwire")
	var ref bucketRef
	err := s.pool.QueryRow(ctx, `SELECT v.id, v.member_id, v.island_id, v.garage_bucket_id, v.bucket_name, i.name
		FROM vaults v JOIN islands i ON i.id = v.island_id
		WHERE v.id = $1 AND v.status IN ('active', 'deleting') AND v.garage_bucket_id IS NOT NULL`, vaultID).
		Scan(&ref.vaultID, &ref.memberID, &ref.islandID, &ref.bucketID, &ref.name, &ref.island)
	if errors.Is(err, pgx.ErrNoRows) {
		return LifecycleCheck{}, ErrNotFound
	}
	if err != nil {
		return LifecycleCheck{}, fmt.Errorf("vault %d: %w", vaultID, err)
	}
	gc, err := s.garageFor(ctx, ref.islandID)
	if err != nil {
		return LifecycleCheck{}, err
	}
	return s.checkBucket(ctx, gc, ref)
}

func (s *Service) checkBucket(ctx context.Context, gc *garage.Client, ref bucketRef) (LifecycleCheck, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.GarageTimeout)
	defer cancel()
	chk := LifecycleCheck{VaultID: ref.vaultID, Bucket: "vault"}
	if ref.copy {
		chk.Bucket = "copy"
	}
	b, err := gc.GetBucketInfo(ctx, garage.BucketLookup{ID: ref.bucketID})
	if err != nil {
		return chk, fmt.Errorf("island %q: GetBucketInfo %s: %w", ref.island, ref.name, err)
	}
	chk.MultipartBytes = b.UnfinishedMultipartUploadBytes
	ours := false
	for _, r := range b.LifecycleRules {
		if isOurRule(r) && !ours {
			ours = true
			continue
		}
		chk.Foreign = append(chk.Foreign, DescribeRule(r))
		if r.Expiration != nil {
			chk.Expirations++
		}
	}
	if len(chk.Foreign) > 0 || !ours {
		if _, err := gc.SetBucketLifecycle(ctx, ref.bucketID, Rules()); err != nil {
			return chk, fmt.Errorf("island %q: UpdateBucket (lifecycle) %s: %w", ref.island, ref.name, err)
		}
		chk.Set = true
	}
	now := s.now()
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if err := ensureRow(ctx, tx, ref.vaultID); err != nil {
			return err
		}
		if !ref.copy {
			if _, err := tx.Exec(ctx, `UPDATE vault_protection SET lifecycle_checked_at = $2, multipart_bytes = $3 WHERE vault_id = $1`,
				ref.vaultID, now, chk.MultipartBytes); err != nil {
				return err
			}
		}
		if !chk.Set {
			return nil
		}
		action := "vault.lifecycle_set"
		if len(chk.Foreign) > 0 {
			action = "vault.lifecycle_removed"
		}
		if _, err := audit.Record(ctx, tx, audit.Entry{Action: action, MemberID: &ref.memberID, TargetType: "vault",
			TargetID: strconv.FormatInt(ref.vaultID, 10), Details: map[string]any{"bucket": chk.Bucket, "bucket_name": ref.name,
				"island": ref.island, "removed": nonNil(chk.Foreign), "expiration_rules": chk.Expirations,
				"set": []string{DescribeRule(Rules()[0])}}}); err != nil {
			return err
		}
		if len(chk.Foreign) == 0 {
			return nil
		}
		detail := fmt.Sprintf("%s bucket %s on island %q had %s; removed", chk.Bucket, ref.name, ref.island, strings.Join(chk.Foreign, "; "))
		if _, err := tx.Exec(ctx, `UPDATE vault_protection SET lifecycle_tripped_at = $2, lifecycle_detail = $3, updated_at = now()
			WHERE vault_id = $1`, ref.vaultID, now, truncate(detail, 3900)); err != nil {
			return err
		}
		severity, title := notify.SeverityWarning, "A lifecycle rule Archipelago did not set was removed from "+ref.name
		if chk.Expirations > 0 {
			severity, title = notify.SeverityCritical, "Expiration rule found and removed on "+ref.name+": someone tried to make Garage delete this vault's objects"
		}
		_, err := notify.Emit(ctx, tx, notify.Event{Kind: notify.KindLifecycleRule, Severity: severity, MemberID: &ref.memberID,
			Subject: fmt.Sprintf("vault/%d/lifecycle", ref.vaultID), Title: title, At: now,
			Detail: map[string]any{"vault_id": ref.vaultID, "bucket": chk.Bucket, "bucket_name": ref.name, "island": ref.island,
				"removed": chk.Foreign, "expiration_rules": chk.Expirations}})
		return err
	})
	if err != nil {
		return chk, fmt.Errorf("record lifecycle check of vault %d: %w", ref.vaultID, err)
	}
	if len(chk.Foreign) > 0 {
		s.log.WarnContext(ctx, "lifecycle tripwire: foreign rules removed", "vault", ref.vaultID, "bucket", ref.name,
			"island", ref.island, "rules", chk.Foreign, "expirations", chk.Expirations)
	}
	return chk, nil
}

// ensureRow creates a vault's protection row with the federation's default.
func ensureRow(ctx context.Context, tx pgx.Tx, vaultID int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO vault_protection (vault_id, copy_enabled)
		SELECT $1, copy_by_default FROM protection_settings ON CONFLICT (vault_id) DO NOTHING`, vaultID)
	return err
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
