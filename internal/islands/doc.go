// Package islands owns the federation's structure: member organisations, islands (Garage
// clusters), which members operate which island, and the storage members pledge to them,
// with pledge status derived from Garage's live layout and health.
//
// It talks to Garage only through internal/garage, and records every mutation in the
// audit log within the mutation's transaction.
package islands
