// Package ingest writes rows that producers push — through the PushFeatures RPC, `quiver push`
// — into both stores with the batch path's guarantees: the latest row per entity goes to the
// online store through its stale-write guard, and every row reaches the view's Iceberg table.
//
// A pushed batch is validated whole against the view's schema (an unknown or missing column,
// a wrong type, a null join key or event time refuses the batch, naming the column and row),
// written online, then appended to a local write-ahead log and fsynced before it is
// acknowledged; once the log has failed, a push is refused before anything is written. A
// committer turns the logged batches into Iceberg append commits within a bounded interval
// and then deletes them from the log; on start, batches logged but not committed are
// replayed. Every Open logs under a new log id; each commit records the log id and the last
// sequence number it holds in the snapshot summary, so a replay after a crash never commits a
// batch twice and a restart never reuses a number. Frames carry checksums: damaged ones are
// skipped and their segment quarantined (log.go). Batches of an ended definition generation
// go to that generation's table, or to the log's dead-letter folder when they fit no table.
// See docs/ingestion.md.
package ingest
