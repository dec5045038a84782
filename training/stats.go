package training

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// ColumnStats summarizes one column of a snapshot.
type ColumnStats struct {
	Name  string `json:"name"`
	Rows  int64  `json:"rows"`
	Nulls int64  `json:"nulls"`
	// Numeric is set for integer, float and bool columns (bools count as 0 and 1).
	Numeric bool    `json:"numeric"`
	Min     float64 `json:"min,omitempty"`
	Max     float64 `json:"max,omitempty"`
	Mean    float64 `json:"mean,omitempty"`
	// Distinct is the number of distinct non-null values (exact up to 64-bit hash collisions).
	Distinct int64 `json:"distinct"`
}

// NullRate is the share of null values.
func (s ColumnStats) NullRate() float64 {
	if s.Rows == 0 {
		return 0
	}
	return float64(s.Nulls) / float64(s.Rows)
}

type statsAcc struct {
	ColumnStats
	sum  float64
	seen map[uint64]struct{}
}

// Stats reads a snapshot and summarizes every column.
func Stats(ctx context.Context, dir string, m *Manifest) ([]ColumnStats, error) {
	rr, err := OpenFiles(ctx, dir, m)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	seed := maphash.MakeSeed()
	accs := make([]*statsAcc, rr.Schema().NumFields())
	for i, f := range rr.Schema().Fields() {
		accs[i] = &statsAcc{ColumnStats: ColumnStats{Name: f.Name, Min: math.Inf(1), Max: math.Inf(-1)}, seen: map[uint64]struct{}{}}
	}
	var buf []byte
	for rr.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := rr.RecordBatch()
		for c, col := range rec.Columns() {
			a := accs[c]
			a.Rows += int64(col.Len())
			a.Nulls += int64(col.NullN())
			num, isNum := numericReader(col)
			a.Numeric = isNum
			for i := 0; i < col.Len(); i++ {
				if col.IsNull(i) {
					continue
				}
				if isNum {
					v := num(i)
					a.sum += v
					a.Min, a.Max = min(a.Min, v), max(a.Max, v)
				}
				buf = appendValue(buf[:0], col, i)
				a.seen[maphash.Bytes(seed, buf)] = struct{}{}
			}
		}
	}
	if err := rr.Err(); err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	out := make([]ColumnStats, len(accs))
	for i, a := range accs {
		a.Distinct = int64(len(a.seen))
		if n := a.Rows - a.Nulls; a.Numeric && n > 0 {
			a.Mean = a.sum / float64(n)
		} else {
			a.Min, a.Max = 0, 0
		}
		out[i] = a.ColumnStats
	}
	return out, nil
}

func numericReader(col arrow.Array) (func(int) float64, bool) {
	switch a := col.(type) {
	case *array.Int32:
		return func(i int) float64 { return float64(a.Value(i)) }, true
	case *array.Int64:
		return func(i int) float64 { return float64(a.Value(i)) }, true
	case *array.Float32:
		return func(i int) float64 { return float64(a.Value(i)) }, true
	case *array.Float64:
		return func(i int) float64 { return a.Value(i) }, true
	case *array.Boolean:
		return func(i int) float64 {
			if a.Value(i) {
				return 1
			}
			return 0
		}, true
	}
	return nil, false
}

// appendValue appends a value's bytes for distinct counting.
func appendValue(b []byte, col arrow.Array, i int) []byte {
	switch a := col.(type) {
	case *array.Int32:
		return binary.LittleEndian.AppendUint32(b, uint32(a.Value(i)))
	case *array.Int64:
		return binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
	case *array.Float32:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(a.Value(i)))
	case *array.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Value(i)))
	case *array.Timestamp:
		return binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
	case *array.String:
		return append(b, a.Value(i)...)
	case *array.Binary:
		return append(b, a.Value(i)...)
	}
	return append(b, col.ValueStr(i)...)
}
