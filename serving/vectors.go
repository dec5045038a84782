package serving

import (
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// vectorArena preallocates a response's typed vectors: for the numeric and bool columns, the
// Vector, its oneof wrapper, the list message and the values come from a few shared backing
// arrays, so a 30-column answer costs a handful of allocations instead of five per column.
// Other types (strings, bytes, timestamps, arrays) go through vectorOf.
type vectorArena struct {
	rows    int
	vectors []pb.Vector

	f64  []float64
	dbl  []pb.Vector_DoubleValues
	dblL []pb.DoubleList
	i64  []int64
	int  []pb.Vector_Int64Values
	intL []pb.Int64List
	f32  []float32
	flt  []pb.Vector_FloatValues
	fltL []pb.FloatList
	i32  []int32
	i32W []pb.Vector_Int32Values
	i32L []pb.Int32List
	b    []bool
	bW   []pb.Vector_BoolValues
	bL   []pb.BoolList
}

// newVectorArena sizes an arena for columns of the given types, rows rows each.
func newVectorArena(rows int, types func(i int) definitions.Type, cols int) *vectorArena {
	var n [definitions.Timestamp + 1]int
	for i := range cols {
		if t := types(i); !t.Array && int(t.Elem) < len(n) {
			n[t.Elem]++
		}
	}
	a := &vectorArena{rows: rows, vectors: make([]pb.Vector, cols)}
	if k := n[definitions.Float64]; k > 0 {
		a.f64, a.dbl, a.dblL = make([]float64, k*rows), make([]pb.Vector_DoubleValues, k), make([]pb.DoubleList, k)
	}
	if k := n[definitions.Int64]; k > 0 {
		a.i64, a.int, a.intL = make([]int64, k*rows), make([]pb.Vector_Int64Values, k), make([]pb.Int64List, k)
	}
	if k := n[definitions.Float32]; k > 0 {
		a.f32, a.flt, a.fltL = make([]float32, k*rows), make([]pb.Vector_FloatValues, k), make([]pb.FloatList, k)
	}
	if k := n[definitions.Int32]; k > 0 {
		a.i32, a.i32W, a.i32L = make([]int32, k*rows), make([]pb.Vector_Int32Values, k), make([]pb.Int32List, k)
	}
	if k := n[definitions.Bool]; k > 0 {
		a.b, a.bW, a.bL = make([]bool, k*rows), make([]pb.Vector_BoolValues, k), make([]pb.BoolList, k)
	}
	return a
}

// vector is vectorOf(src, t) for column i, from the arena where it can.
func (a *vectorArena) vector(i int, src []online.Value, t definitions.Type) *pb.Vector {
	if t.Array {
		return vectorOf(src, t)
	}
	r := a.rows
	v := &a.vectors[i]
	switch t.Elem {
	case definitions.Float64:
		out := a.f64[:r:r]
		a.f64 = a.f64[r:]
		for j, x := range src {
			out[j] = x.Float64()
		}
		l, w := &a.dblL[0], &a.dbl[0]
		a.dblL, a.dbl = a.dblL[1:], a.dbl[1:]
		l.Val, w.DoubleValues, v.Kind = out, l, w
	case definitions.Int64:
		out := a.i64[:r:r]
		a.i64 = a.i64[r:]
		for j, x := range src {
			out[j] = x.Int64()
		}
		l, w := &a.intL[0], &a.int[0]
		a.intL, a.int = a.intL[1:], a.int[1:]
		l.Val, w.Int64Values, v.Kind = out, l, w
	case definitions.Float32:
		out := a.f32[:r:r]
		a.f32 = a.f32[r:]
		for j, x := range src {
			out[j] = x.Float32()
		}
		l, w := &a.fltL[0], &a.flt[0]
		a.fltL, a.flt = a.fltL[1:], a.flt[1:]
		l.Val, w.FloatValues, v.Kind = out, l, w
	case definitions.Int32:
		out := a.i32[:r:r]
		a.i32 = a.i32[r:]
		for j, x := range src {
			out[j] = x.Int32()
		}
		l, w := &a.i32L[0], &a.i32W[0]
		a.i32L, a.i32W = a.i32L[1:], a.i32W[1:]
		l.Val, w.Int32Values, v.Kind = out, l, w
	case definitions.Bool:
		out := a.b[:r:r]
		a.b = a.b[r:]
		for j, x := range src {
			out[j] = x.Bool()
		}
		l, w := &a.bL[0], &a.bW[0]
		a.bL, a.bW = a.bL[1:], a.bW[1:]
		l.Val, w.BoolValues, v.Kind = out, l, w
	default:
		return vectorOf(src, t)
	}
	return v
}
