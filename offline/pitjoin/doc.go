// Package pitjoin is Quiver's in-process point-in-time join engine.
//
// Given entity rows (join keys, an event_timestamp T and any other columns, labels included) and
// one or more feature views, Join attaches to every entity row, for every requested feature, the
// value of the feature row with the same join keys that was valid at T: the one with the greatest
// event_ts not after T (and, with a TTL, not before T-ttl), ties broken by the greatest created_ts
// and then by the last row read. Entity rows are never dropped or reordered.
//
// The engine works on Arrow record batches. Per view it indexes the entity rows by join key,
// streams the feature rows once, keeps only the rows that can match, groups them by key and sorts
// each key's rows by time, and merges them with the entity rows sorted the same way (an as-of
// sort-merge join). When the candidate feature rows exceed the memory budget they are spilled to
// Arrow IPC files, range-partitioned by key, and joined partition by partition. See
// docs/pitjoin.md for the semantics, the algorithm and the memory model.
package pitjoin
