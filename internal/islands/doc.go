// Package islands owns the federation's structure: member organisations, islands (Garage
// clusters), which members operate which island, and the storage members pledge to them,
// with pledge status derived from Garage's live layout and health.
//
// It talks to Garage only through internal/garage, and records every mutation in the
// audit log within the mutation's transaction.
//
// Naming: reads are named noun first, NounGetByID / NounGetBySlug / NounList (IslandGetByID, MemberGetByID, MemberGetBySlug, PledgeGetByID, IslandList, MemberList);
// audited writes are Service methods (NounCreate, NounUpdate, NounDelete and verbs). Errors
// are those of internal/problem (this package's FieldError and ErrNotFound are problem's),
// which both front ends map without knowing this package.
package islands
