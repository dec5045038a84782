// Package online declares Quiver's online store: the latest feature values per entity key and
// feature view, written by materialization and read by serving. Backends live beneath it
// (online/redis, online/embedded); online/onlinetest is the conformance suite every backend
// passes. The key and value encodings shared by the backends are documented in
// docs/online-format.md.
package online

import (
	"context"
	"fmt"
	"time"

	"github.com/quiverfs/quiver/definitions"
)

// Status says what a returned value is. The numbering follows Feast's FieldStatus and the
// serving API.
type Status uint8

const (
	// StatusInvalid is the zero Status; a store never returns it.
	StatusInvalid Status = 0
	// Present: a stored value younger than the view's TTL.
	Present Status = 1
	// NullValue: the stored row holds null for this feature and is younger than the TTL.
	NullValue Status = 2
	// NotFound: no row is stored for this entity and view, or the stored row predates the
	// feature (the view gained it later).
	NotFound Status = 3
	// OutsideMaxAge: the stored row is older than the view's TTL. Its value is still returned.
	OutsideMaxAge Status = 4
)

func (s Status) String() string {
	switch s {
	case Present:
		return "PRESENT"
	case NullValue:
		return "NULL_VALUE"
	case NotFound:
		return "NOT_FOUND"
	case OutsideMaxAge:
		return "OUTSIDE_MAX_AGE"
	}
	return "INVALID"
}

// Row is one feature-view row for the online store: the entity key, the row's timestamps and
// one value per feature of the view, in the view's feature order (null for missing values).
// Timestamps have microsecond precision; a zero CreatedTS sorts before every other.
type Row struct {
	Key       EntityKey
	EventTS   time.Time
	CreatedTS time.Time
	Values    []Value
}

// Writer stores feature-view rows. It is what materialization needs.
type Writer interface {
	// Write stores rows of view v. For each (entity key, view) it keeps the row with the
	// greatest (EventTS, CreatedTS): a row older than the stored one is dropped, atomically
	// with respect to concurrent writers; a row with equal timestamps replaces the stored one.
	// The rows are checked against v before anything is written; an invalid row fails the
	// whole call with ErrInvalidArgument. A failure part way may leave some rows written,
	// which a retry repairs (writes are idempotent).
	Write(ctx context.Context, v *View, rows []Row) error
	// DeleteView removes every row of view v (teardown) written for generation
	// v.Generation or an earlier one, for every entity. Other views, and rows of later
	// generations of v, are untouched. Deleting what is already gone is not an error.
	DeleteView(ctx context.Context, v *View) error
	// DeleteEntities removes the rows of view v for the given entity keys; keys without a
	// row are ignored, other views of the same entities are untouched. It returns how many
	// rows were removed. A later Write of an older row is accepted (nothing guards the
	// removed row), which is what corrections need.
	DeleteEntities(ctx context.Context, v *View, keys []EntityKey) (int64, error)
}

// KeptWriter is a Writer that also says how many rows a write stored; both backends implement
// it. Ingestion uses it to report rows ignored as stale.
type KeptWriter interface {
	// WriteKept is Write, returning how many of rows were stored: the others were older than
	// the row the store held for their entity and view, and were dropped.
	WriteKept(ctx context.Context, v *View, rows []Row) (kept int64, err error)
}

// Counter counts stored rows; plan uses it to say what a drop would delete.
type Counter interface {
	// CountView returns how many rows of view v are stored for generation v.Generation or
	// an earlier one (the rows DeleteView would remove). It may scan the project's keys.
	CountView(ctx context.Context, v *View) (int64, error)
}

// Reader looks up feature values. It is what serving needs.
type Reader interface {
	// Read looks up, for every entity row and every requested view, the stored row and
	// returns one column per requested feature. Read never returns ErrNotFound-like errors:
	// a missing entity is reported per value with status NotFound. Errors are for the store
	// being unreachable or slow past ctx's deadline (ErrUnavailable), bad requests
	// (ErrInvalidArgument), and undecodable stored values (ErrCorrupt).
	Read(ctx context.Context, req ReadRequest) (*ReadResult, error)
}

// Store is an online store: a Reader and a Writer over one connection. Close releases it; a
// Store is safe for concurrent use by many goroutines. Every method fails with an error
// matching context.Canceled when ctx is cancelled (not ErrUnavailable: the caller left, the
// store is fine), with ErrClosed after Close, and with ErrUnavailable when the store's server
// cannot be reached.
type Store interface {
	Reader
	Writer
	Close() error
}

// ReadRequest asks for features of several views for the same entity rows.
type ReadRequest struct {
	Views []ViewRead
}

// ViewRead asks for some features of one view for a batch of entity rows.
type ViewRead struct {
	View *View
	// Features are indexes into View.Features (see View.FeatureIndexes); nil means all.
	Features []int
	// Keys are the entity keys of the rows, one per row: every ViewRead of a request has as
	// many keys, and Keys[i] of each is the same entity row.
	Keys []EntityKey
}

// ReadResult holds one column per requested feature, views in request order and each view's
// features in the order asked.
type ReadResult struct {
	Rows    int
	Columns []Column

	arrays *resultArrays // the columns' backing arrays, for Release (resultpool.go)
}

// Column is the result for one requested feature over all entity rows. Values, Statuses and
// EventTS each have one entry per row. EventTS is the stored row's event timestamp (zero when
// NotFound) and is shared by all columns of the same view: treat it as read-only.
type Column struct {
	View *View
	// Feature is the index of the column's feature in View.Features.
	Feature  int
	Values   []Value
	Statuses []Status
	EventTS  []time.Time
}

// Field is the column's feature.
func (c *Column) Field() definitions.Field { return c.View.Features[c.Feature] }

// ResultBuilder assembles a ReadResult from encoded rows, for backends: NewResultBuilder
// checks the request and allocates the columns, Set decodes one stored row.
type ResultBuilder struct {
	req    *ReadRequest
	now    time.Time
	res    ReadResult
	first  []int         // first column of each view read
	times  [][]time.Time // event timestamps of each view read
	scrVal []Value
	scrHit []bool
}

// NewResultBuilder checks req and prepares a result with every value NotFound (an aggregation
// view's: what an entity without events reads, count 0 and nulls). now is the
// time TTLs are measured against.
func NewResultBuilder(req *ReadRequest, now time.Time) (*ResultBuilder, error) {
	if len(req.Views) == 0 {
		return nil, fmt.Errorf("read: no views requested: %w", ErrInvalidArgument)
	}
	rows := len(req.Views[0].Keys)
	ncols, maxFeatures := 0, 0
	for i, vr := range req.Views {
		if vr.View == nil {
			return nil, fmt.Errorf("read: view %d is nil: %w", i, ErrInvalidArgument)
		}
		if len(vr.Keys) != rows {
			return nil, fmt.Errorf("read: view %q has %d keys, view %q has %d: %w", vr.View.Name, len(vr.Keys), req.Views[0].View.Name, rows, ErrInvalidArgument)
		}
		for _, f := range vr.Features {
			if f < 0 || f >= len(vr.View.Features) {
				return nil, fmt.Errorf("read: view %q has no feature %d: %w", vr.View.Name, f, ErrInvalidArgument)
			}
		}
		n := len(vr.Features)
		if vr.Features == nil {
			n = len(vr.View.Features)
		}
		ncols += n
		maxFeatures = max(maxFeatures, len(vr.View.Features))
	}
	b := &ResultBuilder{
		req:    req,
		now:    now,
		res:    ReadResult{Rows: rows, Columns: make([]Column, 0, ncols)},
		first:  make([]int, len(req.Views)),
		times:  make([][]time.Time, len(req.Views)),
		scrVal: make([]Value, maxFeatures),
		scrHit: make([]bool, maxFeatures),
	}
	arrays := getResultArrays(ncols*rows, len(req.Views)*rows)
	b.res.arrays = arrays
	values, statuses, times := arrays.values, arrays.statuses, arrays.times
	for i := range statuses {
		statuses[i] = NotFound
	}
	c := 0
	for i, vr := range req.Views {
		b.first[i] = len(b.res.Columns)
		ts := times[i*rows : (i+1)*rows : (i+1)*rows]
		b.times[i] = ts
		add := func(f int) {
			b.res.Columns = append(b.res.Columns, Column{
				View:     vr.View,
				Feature:  f,
				Values:   values[c*rows : (c+1)*rows : (c+1)*rows],
				Statuses: statuses[c*rows : (c+1)*rows : (c+1)*rows],
				EventTS:  ts,
			})
			c++
		}
		if vr.Features == nil {
			for f := range vr.View.Features {
				add(f)
			}
		} else {
			for _, f := range vr.Features {
				add(f)
			}
		}
	}
	b.emptyAggregates()
	return b, nil
}

// Set records the stored row data (an EncodeRow encoding) for view read vi and entity row
// row. Rows not Set stay NotFound.
func (b *ResultBuilder) Set(vi, row int, data string) error {
	vr := &b.req.Views[vi]
	v := vr.View
	hit := b.scrHit[:len(v.Features)]
	clear(hit)
	eventTS, err := DecodeRow(data, v, b.scrVal, hit)
	if err != nil {
		return fmt.Errorf("view %q: %w", v.Name, err)
	}
	if v.agg != nil { // the stored value is tiles: the windows end at the read time
		tiles := b.scrVal[0]
		if !hit[0] || tiles.IsNull() {
			return nil
		}
		if err := v.agg.readTiles(tiles.Payload(), b.now, b.scrVal, hit); err != nil {
			return fmt.Errorf("view %q: %w", v.Name, err)
		}
	}
	expired := v.TTL > 0 && b.now.Sub(eventTS) > v.TTL
	first := b.first[vi]
	b.times[vi][row] = eventTS
	set := func(c, f int) {
		col := &b.res.Columns[c]
		if !hit[f] {
			return
		}
		val := b.scrVal[f]
		col.Values[row] = val
		switch {
		case expired:
			col.Statuses[row] = OutsideMaxAge
		case val.IsNull():
			col.Statuses[row] = NullValue
		default:
			col.Statuses[row] = Present
		}
	}
	if vr.Features == nil {
		for f := range v.Features {
			set(first+f, f)
		}
	} else {
		for i, f := range vr.Features {
			set(first+i, f)
		}
	}
	return nil
}

// Result returns the assembled result.
func (b *ResultBuilder) Result() *ReadResult { return &b.res }
