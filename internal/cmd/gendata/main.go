// Command gendata writes a synthetic feature source for benchmarks (see internal/benchdata).
//
//	go run ./internal/cmd/gendata -rows 5000000 -entities 1000000 -features 10 -out /tmp/src.parquet
//	go run ./internal/cmd/gendata -entity-rows 2000000 -entities 1000000 -out /tmp/entities.parquet
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/quiverfs/quiver/internal/benchdata"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "rows to write")
	entities := flag.Int("entities", 100_000, "distinct entity ids")
	features := flag.Int("features", 10, "feature columns (f0, f1, ...): even ones float64, odd ones int64")
	days := flag.Int("days", 30, "days the event times spread over, ending at -end")
	endS := flag.String("end", "2026-11-01", "exclusive end of event times (UTC date)")
	seed := flag.Uint64("seed", 1, "random seed")
	prefix := flag.String("feature-prefix", "f", "feature column names: PREFIX0, PREFIX1, ...")
	out := flag.String("out", "", "output Parquet file")
	entityRows := flag.Int("entity-rows", 0, "write entity rows (entity_id, event_timestamp, label) for dataset create instead of a feature source: this many rows over -entities")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gendata: -out is required")
		os.Exit(2)
	}
	end, err := time.Parse(time.DateOnly, *endS)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendata: -end:", err)
		os.Exit(2)
	}
	if *entityRows > 0 {
		if err := benchdata.WriteEntities(*out, benchdata.EntitySpec{Rows: *entityRows, Entities: *entities, Days: *days, End: end, Seed: *seed}); err != nil {
			fmt.Fprintln(os.Stderr, "gendata:", err)
			os.Exit(1)
		}
		return
	}
	spec := benchdata.Spec{Rows: *rows, Entities: *entities, Features: *features, Days: *days, End: end, Seed: *seed, FeaturePrefix: *prefix}
	if err := benchdata.Write(*out, spec); err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
}
