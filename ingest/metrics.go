package ingest

import "github.com/prometheus/client_golang/prometheus"

// Paths label the event-to-online latency histogram.
const (
	PathPush   = "push"
	PathStream = "stream"
)

type metrics struct {
	rows          *prometheus.CounterVec   // view, path
	batches       *prometheus.CounterVec   // view, result
	ackLatency    prometheus.Histogram     // push only
	eventToOnline *prometheus.HistogramVec // path
	pending       prometheus.Gauge
	commits       *prometheus.CounterVec // view, result
	lastCommit    *prometheus.GaugeVec   // view
}

var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "ingest", Name: "rows_total",
			Help: "Rows accepted (written online and logged), by view and path (push, stream).",
		}, []string{"view", "path"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "ingest", Name: "batches_total",
			Help: "Pushed batches by view and result (ok, invalid, error).",
		}, []string{"view", "result"}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "quiver", Subsystem: "ingest", Name: "ack_duration_seconds",
			Help:    "Time from a push arriving to its acknowledgement (validated, online, logged and fsynced).",
			Buckets: latencyBuckets,
		}),
		eventToOnline: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "quiver", Subsystem: "ingest", Name: "event_to_online_seconds",
			Help:    "Time from a row's event timestamp to its write to the online store, by path (push, stream).",
			Buckets: latencyBuckets,
		}, []string{"path"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "quiver", Subsystem: "ingest", Name: "log_pending_segments",
			Help: "Push log segments acknowledged but not yet committed to the offline store.",
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "ingest", Name: "offline_commits_total",
			Help: "Offline (Iceberg) commits of logged batches, by view and result.",
		}, []string{"view", "result"}),
		lastCommit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "quiver", Subsystem: "ingest", Name: "last_offline_commit_timestamp_seconds",
			Help: "When pushed rows of the view were last committed to the offline store.",
		}, []string{"view"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.rows, m.batches, m.ackLatency, m.eventToOnline, m.pending, m.commits, m.lastCommit} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
