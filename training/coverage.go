package training

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/offline"
)

// CoverageWarning says that a dataset's entity rows reach back before what a feature view's
// offline table holds: rows before its first materialized interval (or, for a view with no
// offline data at all, every row) get nulls for its features whatever the source holds.
type CoverageWarning struct {
	View string
	// From is where the view's materialized history begins; zero when the view has no
	// offline data at all.
	From time.Time
	// Before is how many entity rows are before From (every row when From is zero), of Rows.
	Before, Rows int64
}

func (w CoverageWarning) String() string {
	pct := 100 * float64(w.Before) / float64(max(w.Rows, 1))
	if w.From.IsZero() {
		return fmt.Sprintf("feature view %q has no offline data: its features are null in all %d entity rows; materialize it first (quiver materialize-incremental)", w.View, w.Rows)
	}
	return fmt.Sprintf("feature view %q: %d of %d entity rows (%.1f%%) are before its first materialized interval, which starts %s: they get nulls for its features whatever the source holds; materialize the earlier history (quiver materialize --start T --end %s %s)",
		w.View, w.Before, w.Rows, pct, w.From.Format(time.RFC3339), w.From.Format(time.RFC3339), w.View)
}

// materializedFrom is what an offline store that records where each table's materialized
// history begins implements (offline/iceberg.Store).
type materializedFrom interface {
	MaterializedFrom(ctx context.Context, view string, generation int) (time.Time, bool, error)
}

// coverage counts, while a dataset's rows are written, the entity rows before each view's
// materialized history.
type coverage struct {
	warnings []CoverageWarning
	ts       int // the event_timestamp column of the output, -1 when absent
	// from[i] is warnings[i].From in the unit of the ts column (its zero for no data).
	from []arrow.Timestamp
}

// newCoverage finds where each view's history begins. A view with no snapshot to read has no
// offline data; a view whose table records no materialized interval (push and Kafka views,
// whose rows are pushed or streamed at any time) is not checked.
func newCoverage(ctx context.Context, store offline.Reader, views []ViewInput) (*coverage, error) {
	c := &coverage{}
	mf, _ := store.(materializedFrom)
	for _, v := range views {
		if v.OfflineSnapshotID == 0 {
			c.warnings = append(c.warnings, CoverageWarning{View: v.Name})
			continue
		}
		if mf == nil {
			continue
		}
		from, ok, err := mf.MaterializedFrom(ctx, v.Name, max(v.Generation, 1))
		if errors.Is(err, offline.ErrTableNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("materialized history of %q: %w", v.Name, err)
		}
		if ok {
			c.warnings = append(c.warnings, CoverageWarning{View: v.Name, From: from})
		}
	}
	return c, nil
}

// bind finds the entity timestamp column in the output schema.
func (c *coverage) bind(schema *arrow.Schema) {
	c.ts = -1
	idx := schema.FieldIndices(EventTimestampColumn)
	if len(idx) == 0 {
		return
	}
	tt, ok := schema.Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok {
		return
	}
	c.ts = idx[0]
	c.from = make([]arrow.Timestamp, len(c.warnings))
	for i, w := range c.warnings {
		if !w.From.IsZero() {
			c.from[i], _ = arrow.TimestampFromTime(w.From, tt.Unit)
		}
	}
}

// add counts one output batch.
func (c *coverage) add(rec arrow.RecordBatch) {
	n := rec.NumRows()
	for i := range c.warnings {
		c.warnings[i].Rows += n
	}
	if c.ts < 0 {
		return
	}
	col, ok := rec.Column(c.ts).(*array.Timestamp)
	if !ok {
		return
	}
	for i := range c.warnings {
		if c.warnings[i].From.IsZero() {
			c.warnings[i].Before += n
			continue
		}
		var before int64
		for j, v := range col.Values() {
			if v < c.from[i] && col.IsValid(j) {
				before++
			}
		}
		c.warnings[i].Before += before
	}
}

// result is the warnings that apply: views with rows before their history.
func (c *coverage) result() []CoverageWarning {
	var out []CoverageWarning
	for _, w := range c.warnings {
		if w.Before > 0 {
			out = append(out, w)
		}
	}
	return out
}
