// Package migrations holds Archipelago's numbered SQL migrations, embedded in the binary.
//
// Files are named NNN_description.sql and applied in order by internal/database with
// jackc/tern. A migration is never edited once released: change the schema with a new file.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
