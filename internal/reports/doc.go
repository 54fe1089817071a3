// Package reports owns restore-test reports: per member (schema v1: each repository's tests
// in the period, vault usage against quota, pledge status, key events) and for the federation
// (schema v2: a line of counts per member, counted in SQL, island capacity and repositories,
// incidents; federation reports stored as v1 keep their member × repository matrix). A report
// is a JSON document with a versioned schema (SchemaV1, SchemaV2, docs/reports.md) that carries
// the audit log's signed checkpoint taken when it was generated; its SHA-256 is recorded
// in the audit log in the transaction that stores it, so a member can later prove what it
// was told. HTML (with inline SVG charts, for the portal and as a standalone printable
// file) and CSV (the tabular parts) are rendered from the stored JSON.
//
// Contents are computed by Build, a pure function of an Input read from the database by
// Gather, so they are tested on fixed fixtures. This package reads other domains' tables
// and never writes them.
//
// Naming: reads are named noun first, NounGetByID / NounGetBySlug / NounList (ReportGetByID, List);
// audited writes are Service methods (NounCreate, NounUpdate, NounDelete and verbs). Errors
// are those of internal/problem (this package's FieldError and ErrNotFound are problem's),
// which both front ends map without knowing this package.
package reports
