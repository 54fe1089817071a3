package reports_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/reports"
	"github.com/chatons/archipelago/internal/scaleseed"
	"github.com/chatons/archipelago/internal/testenv"
)

// TestStoredReportsOfBothSchemasVerifyAsStored: a federation report stored as v1 before v2
// existed (its document and its audit entry written as the v1 code wrote them) and a
// federation report generated now (v2) are both served byte for byte as stored, their
// SHA-256 is the one the audit log recorded, and each renders and exports in its own shape:
// the v1 one its matrix, the v2 one its members table.
func TestStoredReportsOfBothSchemasVerifyAsStored(t *testing.T) {
	t.Parallel()
	pool := testenv.DB(t)
	ctx := audit.WithActor(context.Background(), audit.Actor{Kind: audit.ActorUser, ID: "1", Name: "fed@example.org"})
	if err := scaleseed.Seed(ctx, pool, scaleseed.Size{Members: 4, VaultsPerMember: 2, Days: 3}); err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	keys, err := audit.KeysFromSeed("test.example/archipelago-audit", seed)
	if err != nil {
		t.Fatal(err)
	}
	// The v1 federation report, stored as Generate stored it before v2.
	v1doc, err := os.ReadFile(filepath.Join("testdata", "federation-report-v1.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	v1 := sha256.Sum256(v1doc)
	v1hash := hex.EncodeToString(v1[:])
	var v1id int64
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO reports (scope, period, period_start, period_end, generated_at, generated_by,
				schema_version, document, sha256, checkpoint_size, audit_seq, summary)
			VALUES ('federation', 'monthly', '2026-10-01', '2026-11-01', '2026-11-01 00:10:00+00', 'fed@example.org',
				'archipelago.report/v1', $1, $2, 42, 0, '{"repositories": 5}') RETURNING id`, v1doc, v1hash).Scan(&v1id); err != nil {
			return err
		}
		seq, err := audit.Record(ctx, tx, audit.Entry{Action: "report.publish", TargetType: "report", TargetID: strconv.FormatInt(v1id, 10),
			Details: map[string]any{"sha256": v1hash, "scope": "federation", "schema": reports.SchemaV1}})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE reports SET audit_seq = $2 WHERE id = $1`, v1id, seq)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// A federation report generated now.
	svc := reports.New(pool, audit.NewService(pool, keys, testenv.Logger(t)), testenv.Logger(t), reports.Config{})
	now := time.Now().UTC()
	v2, err := svc.Generate(ctx, reports.Request{Scope: reports.ScopeFederation,
		Period: reports.Period{Kind: reports.PeriodCustom, Start: now.AddDate(0, 0, -7), End: now}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id             int64
		schema, marker string
		table          string
	}{
		{v1id, reports.SchemaV1, `class="rpt-table rpt-matrix"`, "matrix"},
		{v2.ID, reports.SchemaV2, `class="rpt-table rpt-members"`, "members"},
	} {
		st, doc, err := reports.ReportGetByID(ctx, pool, c.id)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(doc)
		var recorded, schema string
		if err := pool.QueryRow(ctx, `SELECT details::jsonb->>'sha256', details::jsonb->>'schema' FROM audit_entries
			WHERE seq = $1 AND action = 'report.publish' AND target_id = $2`, st.AuditSeq, strconv.FormatInt(c.id, 10)).Scan(&recorded, &schema); err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(sum[:]); got != st.SHA256 || got != recorded || st.Schema != c.schema || schema != c.schema {
			t.Errorf("report %d: document hashes to %s, stored %s, audited %s (%s, %s)", c.id, got, st.SHA256, recorded, st.Schema, schema)
		}
		if c.schema == reports.SchemaV1 && !bytes.Equal(doc, v1doc) {
			t.Error("the v1 document is not served as stored")
		}
		v, err := reports.ViewOf(st, doc)
		if err != nil {
			t.Fatal(err)
		}
		body, err := reports.BodyHTML(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), c.marker) {
			t.Errorf("report %d (%s) does not render %s", c.id, c.schema, c.marker)
		}
		if tables := reports.TablesFor(st.Scope, st.Schema); tables[0] != c.table {
			t.Errorf("report %d (%s): tables %v", c.id, c.schema, tables)
		}
		var csv bytes.Buffer
		if err := reports.CSV(&csv, v.R, ""); err != nil || strings.Count(csv.String(), "\n") < 4 {
			t.Errorf("report %d (%s): CSV %v\n%s", c.id, c.schema, err, csv.String())
		}
	}
}
