package metrics

import (
	"context"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TextContentType is the content type of WriteText's output (Prometheus' text format 0.0.4).
const TextContentType = "text/plain; version=0.0.4; charset=utf-8"

// WriteText reads the metrics (as Collect does: every part whole or not at all, each with
// its archipelago_metrics_collect_success) and writes them in Prometheus' text exposition
// format, families sorted by name. It is what /metrics serves: at 10,000 members the
// registry's path — a protobuf message per series, label checks, hashing and sorting of
// 53,000 series, then the text encoder over them — cost seconds on a loaded 2-core machine,
// where the database's part was 0.2–0.4 s. Here each series is one append of its bytes.
func (c *Collector) WriteText(ctx context.Context, w io.Writer) error {
	return writeText(w, c.families, c.read(ctx))
}

// writeText writes the batches' series grouped by family, in the order of fams.
func writeText(w io.Writer, fams []*family, batches []batch) error {
	byFamily := make(map[*family][]sample, len(fams))
	for _, b := range batches {
		for _, s := range b.ss {
			byFamily[s.f] = append(byFamily[s.f], s)
		}
	}
	buf := make([]byte, 0, 64*1024)
	for _, f := range fams {
		ss := byFamily[f]
		if len(ss) == 0 {
			continue
		}
		buf = append(buf, "# HELP "...)
		buf = append(buf, f.name...)
		buf = append(buf, ' ')
		buf = appendEscaped(buf, f.help, false)
		buf = append(buf, "\n# TYPE "...)
		buf = append(buf, f.name...)
		buf = append(buf, " gauge\n"...)
		for _, s := range ss {
			buf = appendSample(buf, s)
			if len(buf) >= 60*1024 {
				if _, err := w.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	_, err := w.Write(buf)
	return err
}

// appendSample appends one series' line: name{label="value",…} value.
func appendSample(b []byte, s sample) []byte {
	b = append(b, s.f.name...)
	if len(s.f.labels) > 0 {
		b = append(b, '{')
		for i, l := range s.f.labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, l...)
			b = append(b, '=', '"')
			v := ""
			if i < len(s.labels) {
				v = s.labels[i]
			}
			b = appendEscaped(b, v, true)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, s.v)
	return append(b, '\n')
}

// appendEscaped escapes a label value (backslash, double quote, newline) or a HELP text
// (backslash, newline), as the text format asks; invalid UTF-8 is replaced.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\\':
			b = append(b, '\\', '\\')
		case ch == '\n':
			b = append(b, '\\', 'n')
		case ch == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, ch)
		}
	}
	return b
}

// appendFloat formats a value as Prometheus' encoder does.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case f == 1:
		return append(b, '1')
	case f == 0:
		return append(b, '0')
	case f == -1:
		return append(b, '-', '1')
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
