package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatons/archipelago/internal/config"
	"github.com/chatons/archipelago/internal/database"
	"github.com/chatons/archipelago/internal/seal"
)

// dbNeeds is what a command that works on the coordinator's database needs besides it.
type dbNeeds struct {
	// masterKey: the master key is required and parsed into dbEnv.kr.
	masterKey bool
	// anySchema: the schema is not checked (migrate applies it; backup status reads one
	// table that every schema since 023 has). Otherwise the schema must be current.
	anySchema bool
}

// dbEnv is what openDB opened; the caller closes pool.
type dbEnv struct {
	cfg  *config.Config
	log  *slog.Logger
	kr   *seal.Keyring // nil unless dbNeeds.masterKey
	pool *pgxpool.Pool
}

// openDB is the preamble of the commands that work on the database directly: load the
// configuration, require the database (and the master key when asked), open the pool
// and check that the schema is current (unless asked not to).
func openDB(ctx context.Context, env *cliEnv, needs dbNeeds) (*dbEnv, error) {
	cfg, log, err := loadConfig(env)
	if err != nil {
		return nil, err
	}
	required := cfg.RequireDatabase()
	if needs.masterKey {
		required = errors.Join(required, cfg.RequireMasterKey())
	}
	if required != nil {
		return nil, required
	}
	var kr *seal.Keyring
	if needs.masterKey {
		if kr, err = seal.ParseKeyring(cfg.MasterKey); err != nil {
			return nil, &config.Error{Var: "ARCHIPELAGO_MASTER_KEY_FILE", Problem: err.Error()}
		}
	}
	pool, err := database.Open(ctx, cfg.DatabaseURL, cfg.DBConnTimeout)
	if err != nil {
		return nil, err
	}
	if !needs.anySchema {
		if err := database.CheckCurrent(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return &dbEnv{cfg: cfg, log: log, kr: kr, pool: pool}, nil
}
