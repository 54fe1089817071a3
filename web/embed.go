// Package web holds the portal's templates and static assets, embedded in the binary.
// internal/portal parses every template at start, so a template that does not parse stops
// the program before it serves anything.
package web

import "embed"

// Templates holds the html/template files: layout.html is the shell, one file a page.
//
//go:embed templates/*.html
var Templates embed.FS

// Static holds CSS, scripts and images, served under /static/ with checksummed URLs.
//
//go:embed static
var Static embed.FS
