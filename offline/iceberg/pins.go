package iceberg

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go/table"
)

// PinTagPrefix starts the name of the Iceberg tag that pins a snapshot a registered dataset
// was built from: "quiver-pin-<snapshot id>". A tag is a snapshot reference every engine
// respects, so Trino's expire_snapshots (and Spark's, and iceberg-go's) keeps the snapshot.
const PinTagPrefix = "quiver-pin-"

// SyncPins makes the pin tags of a view table (named as Views lists it) exactly the snapshots
// of pinned that the table holds: a tag is added for each such snapshot without one, and
// removed from a snapshot no longer pinned (its dataset versions were removed), so that
// expiry, Quiver's or another engine's, may take it. It commits once, only when a tag
// changes, and returns the tags added and removed.
func (s *Store) SyncPins(ctx context.Context, view string, pinned map[int64]bool) (added, removed []string, err error) {
	tbl, err := s.cat.cat.LoadTable(ctx, s.Identifier(view, 1))
	if err != nil {
		return nil, nil, fmt.Errorf("load offline table %s: %w", view, err)
	}
	have := map[int64]bool{}
	var updates []table.Update
	for name, ref := range tbl.Metadata().Refs() {
		idS, ok := strings.CutPrefix(name, PinTagPrefix)
		if !ok || ref.SnapshotRefType != table.TagRef {
			continue
		}
		id, err := strconv.ParseInt(idS, 10, 64)
		if err == nil && id == ref.SnapshotID && pinned[id] {
			have[id] = true
			continue
		}
		updates = append(updates, table.NewRemoveSnapshotRefUpdate(name))
		removed = append(removed, name)
	}
	var ids []int64
	for _, snap := range tbl.Metadata().Snapshots() {
		if pinned[snap.SnapshotID] && !have[snap.SnapshotID] {
			ids = append(ids, snap.SnapshotID)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		name := PinTagPrefix + strconv.FormatInt(id, 10)
		updates = append(updates, table.NewSetSnapshotRefUpdate(name, id, table.TagRef, -1, -1, -1))
		added = append(added, name)
	}
	if len(updates) == 0 {
		return nil, nil, nil
	}
	if _, _, err := s.cat.cat.CommitTable(ctx, s.Identifier(view, 1), nil, updates); err != nil {
		return nil, nil, fmt.Errorf("offline table %s: tag the pinned snapshots: %w", view, err)
	}
	return added, removed, nil
}
