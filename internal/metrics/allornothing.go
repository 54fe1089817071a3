package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AllOrNothingTimeout bounds one domain collector's collection.
const AllOrNothingTimeout = 5 * time.Second

// CollectAllOrNothing is the Collect of a domain's own collector (protection, approvals…),
// with the rule of this package: a collection is exported whole or not at all. collect runs
// under AllOrNothingTimeout and emits its series; when it fails nothing it emitted is sent,
// the failure is logged (what names the collector), and up — a gauge without labels — is 0;
// otherwise every series is sent and up is 1.
func CollectAllOrNothing(ch chan<- prometheus.Metric, up *prometheus.Desc, log *slog.Logger, what string,
	collect func(ctx context.Context, emit func(prometheus.Metric)) error) {
	ctx, cancel := context.WithTimeout(context.Background(), AllOrNothingTimeout)
	defer cancel()
	var out []prometheus.Metric
	ok := 1.0
	if err := collect(ctx, func(m prometheus.Metric) { out = append(out, m) }); err != nil {
		log.WarnContext(ctx, "collect "+what+" metrics", "err", err)
		ok, out = 0, nil
	}
	for _, m := range out {
		ch <- m
	}
	ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, ok)
}
