// Package sources is the one place that turns a definitions.Source into an offline.Source,
// choosing the implementation by the source's kind.
package sources

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/parquet"
	"github.com/quiverfs/quiver/offline/trino"
)

// Config holds what the sources of a feature repo need. Connections are owned by the
// caller, which keeps them open while the sources are used.
type Config struct {
	// BaseDir resolves relative Parquet paths: the feature repo's root.
	BaseDir string
	// Catalog reads Iceberg sources; nil makes an Iceberg source an error.
	Catalog *iceberg.Catalog
	// Trino runs Trino sources; nil makes a Trino source an error.
	Trino *trino.Client
	// BatchSize is the most rows per batch; 0 means each source's default.
	BatchSize int
	// Allocator allocates batches; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
}

// Open returns the offline.Source for src.
func Open(src *definitions.Source, cfg Config) (offline.Source, error) {
	if src == nil {
		return nil, fmt.Errorf("open source: %w: nil source", offline.ErrInvalidSource)
	}
	switch src.SourceType() {
	case "parquet":
		return parquet.New(src, parquet.Options{BaseDir: cfg.BaseDir, BatchSize: int64(cfg.BatchSize), Allocator: cfg.Allocator})
	case "iceberg":
		return iceberg.NewSource(src, cfg.Catalog, iceberg.SourceOptions{Allocator: cfg.Allocator})
	case "trino":
		return trino.New(src, cfg.Trino, trino.Options{BatchSize: cfg.BatchSize, Allocator: cfg.Allocator})
	case "kafka":
		return nil, fmt.Errorf("source %q is a kafka stream source: its rows arrive by quiver stream, not by materialization: %w", src.Name, offline.ErrInvalidSource)
	case "push":
		return nil, fmt.Errorf("source %q is a push source: its rows arrive by quiver push or PushFeatures, not by materialization: %w", src.Name, offline.ErrInvalidSource)
	}
	return nil, fmt.Errorf("open source %q: %w: want exactly one of parquet, iceberg and trino", src.Name, offline.ErrInvalidSource)
}
