// Package vaultstest builds islands for vault tests: a Garage simulator over the test
// process's MinIO, registered in the database as an island (with its sealed admin token,
// operators and a known layout), and active pledges. Tests only.
package vaultstest

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/audit"
	"github.com/chatons/archipelago/internal/garage"
	"github.com/chatons/archipelago/internal/garagesim"
	"github.com/chatons/archipelago/internal/seal"
	"github.com/chatons/archipelago/internal/testenv"
)

// Island is a simulated island registered in the database.
type Island struct {
	ID     int64
	Name   string
	Sim    *garagesim.Sim
	Client *garage.Client // admin client with the island's token
}

// StartIsland starts a simulator with rf nodes of 100 GB and registers it as a healthy
// island named name (made unique), operated by the given members.
func StartIsland(t testing.TB, pool *pgxpool.Pool, kr *seal.Keyring, name string, rf int, operators ...int64) Island {
	t.Helper()
	srv := testenv.S3(t)
	token := testenv.Unique("admin-")
	sim, err := garagesim.Start(context.Background(), garagesim.Config{AdminToken: token, ReplicationFactor: rf,
		S3Endpoint: srv.Endpoint, S3AccessKey: srv.AccessKey, S3SecretKey: srv.SecretKey, S3Region: srv.Region})
	if err != nil {
		t.Fatalf("vaultstest: start simulator: %v", err)
	}
	t.Cleanup(func() {
		_ = sim.Cleanup(context.Background())
		sim.Close()
	})
	var capacity int64
	for _, n := range sim.Nodes() {
		if n.Capacity != nil {
			capacity += *n.Capacity
		}
	}
	isl := Island{Name: testenv.Unique(name + "-"), Sim: sim,
		Client: garage.New(garage.Config{Endpoint: sim.URL(), Token: token, MaxAttempts: 1})}
	ctx := audit.WithActor(context.Background(), audit.System("vaultstest"))
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO islands (name, admin_endpoint, admin_token_sealed, s3_endpoint, s3_region,
			replication_factor, status, layout_version, layout_capacity_bytes, last_polled_at, last_ok_at)
			VALUES ($1, $2, '', $3, $4, $5, 'healthy', 1, $6, now(), now()) RETURNING id`,
			isl.Name, sim.URL(), "http://"+sim.S3Endpoint(), sim.Region(), rf, capacity).Scan(&isl.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE islands SET admin_token_sealed = $2 WHERE id = $1`, isl.ID,
			kr.SealString(fmt.Sprintf("island/%d/admin_token", isl.ID), token)); err != nil {
			return err
		}
		for _, m := range operators {
			if _, err := tx.Exec(ctx, `INSERT INTO island_operators (island_id, member_id) VALUES ($1, $2)`, isl.ID, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("vaultstest: register island: %v", err)
	}
	return isl
}

// Pledge records an active pledge of bytes by a member on an island it operates (the
// first node of the island's simulator).
func Pledge(t testing.TB, pool *pgxpool.Pool, isl Island, memberID, bytes int64) {
	t.Helper()
	node := isl.Sim.Nodes()[0]
	if _, err := pool.Exec(context.Background(), `INSERT INTO pledges (member_id, island_id, node_id, zone, capacity_bytes, status)
		VALUES ($1, $2, $3, $4, $5, 'active')`, memberID, isl.ID, node.ID, node.Zone, bytes); err != nil {
		t.Fatalf("vaultstest: pledge: %v", err)
	}
}

// Member creates a member organisation and returns its id.
func Member(t testing.TB, pool *pgxpool.Pool, slug string) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `INSERT INTO members (slug, name) VALUES ($1, $1) RETURNING id`, slug).Scan(&id); err != nil {
		t.Fatalf("vaultstest: member: %v", err)
	}
	return id
}
