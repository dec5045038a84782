package serving

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors, registered on the Registerer passed in
// Options (never the global one).
type metrics struct {
	requests      *prometheus.CounterVec   // method, service, code
	errors        *prometheus.CounterVec   // method, code
	latency       *prometheus.HistogramVec // method, service
	entityRows    *prometheus.HistogramVec // method
	storeLatency  prometheus.Histogram
	modelLatency  *prometheus.HistogramVec // model, runtime
	revision      prometheus.Gauge
	refreshErrors prometheus.Counter
	inFlight      prometheus.Gauge
	largeBytes    prometheus.Gauge // bytes of large requests admitted (admission.go)
	largeWaiting  prometheus.Gauge // large requests waiting for room
}

// latencyBuckets spans 100µs to ~3s, fine-grained under 10ms where serving should live.
var latencyBuckets = []float64{
	.0001, .00025, .0005, .00075, .001, .0015, .002, .003, .005, .0075, .01, .025, .05, .1, .25, .5, 1, 3,
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "requests_total",
			Help: "RPCs handled, by method, feature service or model, and gRPC status code.",
		}, []string{"method", "service", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "errors_total",
			Help: "RPCs that failed, by method and gRPC status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "request_duration_seconds",
			Help:    "RPC latency in the server, by method and feature service or model.",
			Buckets: latencyBuckets,
		}, []string{"method", "service"}),
		entityRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "entity_rows",
			Help:    "Entity rows per request.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}, []string{"method"}),
		storeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "store_read_duration_seconds",
			Help:    "Online store read latency (one round trip per request).",
			Buckets: latencyBuckets,
		}),
		modelLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "model_duration_seconds",
			Help:    "Model runtime latency, by model and runtime.",
			Buckets: latencyBuckets,
		}, []string{"model", "runtime"}),
		revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "definitions_revision",
			Help: "Registry revision of the definitions being served.",
		}),
		refreshErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "definitions_refresh_errors_total",
			Help: "Failed attempts to reload definitions from the registry.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "in_flight_requests",
			Help: "RPCs being handled.",
		}),
		largeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "large_request_bytes_in_flight",
			Help: "Bytes of large requests (64 KiB or more) being decoded and served; at most --max-inflight-request-bytes.",
		}),
		largeWaiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "quiver", Subsystem: "serving", Name: "large_requests_waiting",
			Help: "Large requests waiting for room under --max-inflight-request-bytes.",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.errors, m.latency, m.entityRows, m.storeLatency, m.modelLatency, m.revision, m.refreshErrors, m.inFlight, m.largeBytes, m.largeWaiting} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
