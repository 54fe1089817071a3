package metrics

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// batchesCollector sends fixed batches through the client library, as Collect does.
type batchesCollector struct {
	c  *Collector
	bs []batch
}

func (b batchesCollector) Describe(ch chan<- *prometheus.Desc) { b.c.Describe(ch) }

func (b batchesCollector) Collect(ch chan<- prometheus.Metric) {
	for _, x := range b.bs {
		for _, s := range x.ss {
			ch <- prometheus.MustNewConstMetric(s.f.desc, prometheus.GaugeValue, s.v, s.labels...)
		}
	}
}

// federationBatches is what a scrape of a federation of members (and members/4 islands)
// gives: about 5 series per member and 4 per island, as measured at 10,000 members.
func federationBatches(c *Collector, members int) []batch {
	var restore, vaults batch
	for m := range members {
		slug := fmt.Sprintf("m%05d", m)
		restore.gauge(c.memberRepos, 9, slug, "passed")
		restore.gauge(c.memberRepos, 1, slug, "failed")
		restore.gauge(c.memberOldestSuccess, 97123.25, slug)
		vaults.gauge(c.memberVaultUsage, float64(m)*104729, slug)
		vaults.gauge(c.memberVaultQuota, 1073741824000, slug)
	}
	for i := range members / 4 {
		name := fmt.Sprintf("island-%05d", i)
		restore.gauge(c.islandRepos, 36, name, "passed")
		vaults.gauge(c.islandVaultUsage, float64(i)*7919, name)
		vaults.gauge(c.islandVaultQuota, 4294967296000, name)
		vaults.gauge(c.islandVaults, 40, name)
	}
	restore.gauge(c.up, 1, "restore")
	vaults.gauge(c.up, 1, "vaults")
	return []batch{restore, vaults}
}

// BenchmarkExposition compares, for the series of a scrape at 1,000 and 10,000 members, the
// client library's path (a registry gathers the collector, the text encoder writes each
// family) with WriteText's (each series appended as text). The database's part is not
// included: it is the same for both.
//
//	go test -run '^$' -bench Exposition -benchtime 5x ./internal/metrics/
func BenchmarkExposition(b *testing.B) {
	c := New(nil, slog.New(slog.DiscardHandler), Config{})
	for _, members := range []int{1000, 10000} {
		bs := federationBatches(c, members)
		n := 0
		for _, x := range bs {
			n += len(x.ss)
		}
		b.Run(fmt.Sprintf("registry/%d-members", members), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(batchesCollector{c: c, bs: bs})
			for b.Loop() {
				fams, err := reg.Gather()
				if err != nil {
					b.Fatal(err)
				}
				enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, f := range fams {
					if err := enc.Encode(f); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n), "series")
		})
		b.Run(fmt.Sprintf("text/%d-members", members), func(b *testing.B) {
			for b.Loop() {
				if err := writeText(io.Discard, c.families, bs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n), "series")
		})
	}
}
