package benchdata

import (
	"fmt"
	"strings"
)

// ServingYAML is the feature repo of the serving benchmarks (DESIGN.md's shapes): one entity
// `user` (user_id int64), `views` feature views view_0.. of `features` float64 features each
// (v<view>_f<feature>), the service bench30 of every view, and the ONNX model mlp30 on it
// (its file mlp30.onnx is the caller's to write). Used by serving's benchmarks and by
// internal/cmd/benchserve (scripts/bench.sh), so both measure the same repo.
func ServingYAML(views, features int) string {
	var b strings.Builder
	b.WriteString("entities:\n  - name: user\n    join_keys: [{ name: user_id, type: int64 }]\n")
	b.WriteString("sources:\n  - name: src\n    parquet: { path: data/src.parquet }\n    timestamp_field: event_ts\n")
	b.WriteString("feature_views:\n")
	for v := range views {
		fmt.Fprintf(&b, "  - name: view_%d\n    entities: [user]\n    source: src\n    ttl: 30d\n    online: true\n    features:\n", v)
		for f := range features {
			fmt.Fprintf(&b, "      - { name: v%d_f%d, type: float64 }\n", v, f)
		}
	}
	b.WriteString("feature_services:\n  - name: bench30\n    features: [")
	for v := range views {
		if v > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "\"view_%d:*\"", v)
	}
	b.WriteString("]\nmodels:\n  - name: mlp30\n    feature_service: bench30\n    runtime: onnx\n    path: mlp30.onnx\n")
	return b.String()
}
