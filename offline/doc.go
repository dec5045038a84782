// Package offline owns where feature rows come from and where their history is kept.
//
// It declares the Source interface, which streams a feature view's rows over a half-open time
// range [start, end) as Arrow record batches in the view's canonical schema, and the types and
// helpers every source and the offline store share: the canonical column names (the join keys,
// EventTS, CreatedTS and the features), the mapping of definitions.Type to Arrow, and the
// conversion of a source's own columns into canonical ones with clear type errors.
//
// Implementations live beneath it: offline/parquet reads Parquet files, offline/iceberg reads
// Iceberg tables and is the offline store (one Iceberg table per feature view), offline/trino
// reads Trino queries, and offline/sources is the one place that picks an implementation for a
// definitions.Source. offline/sourcetest is the conformance suite every source passes.
//
// See docs/offline.md for the user-facing description.
package offline
