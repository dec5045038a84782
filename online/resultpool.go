package online

import (
	"sync"
	"time"
)

// Results' arrays are pooled: a 100-entity read of 30 features fills 3,000 Values (96 KB),
// most of a read's allocation and so of the garbage collector's work in a server
// (docs/BENCHMARKS.md). A caller that is done with a result hands its arrays back with
// Release; a result never released is collected as usual.

// resultArrays are the backing arrays of a ReadResult's columns.
type resultArrays struct {
	values   []Value
	statuses []Status
	times    []time.Time
}

var resultPool sync.Pool // of *resultArrays

// maxPooledValues bounds what the pool keeps (a 1,000-entity read of 100 features), so that one
// huge read does not pin its arrays for the life of the process.
const maxPooledValues = 100_000

// getResultArrays returns arrays of the given lengths: values and times zero (null, no
// timestamp); statuses as they were left, for the caller to set.
func getResultArrays(nvalues, ntimes int) *resultArrays {
	a, _ := resultPool.Get().(*resultArrays)
	if a == nil {
		a = &resultArrays{}
	}
	if cap(a.values) < nvalues {
		a.values = make([]Value, nvalues)
		a.statuses = make([]Status, nvalues)
	} else {
		a.values = a.values[:nvalues] // zero: Release cleared every value it handed out
		a.statuses = a.statuses[:nvalues]
	}
	if cap(a.times) < ntimes {
		a.times = make([]time.Time, ntimes)
	} else {
		a.times = a.times[:ntimes]
		clear(a.times)
	}
	return a
}

// Release hands the result's arrays back for a later read to reuse. The caller must be done
// with the result: after Release neither it nor any slice taken from its columns (Values,
// Statuses, EventTS) may be used. Values of strings, bytes and arrays share the store's reply,
// not these arrays, but they too must be copied out before Release if kept. Releasing a nil
// result, or one not from a ResultBuilder, does nothing.
func (r *ReadResult) Release() {
	if r == nil || r.arrays == nil {
		return
	}
	a := r.arrays
	r.arrays = nil
	r.Columns = nil
	if cap(a.values) > maxPooledValues {
		return
	}
	clear(a.values) // null again for the next Get, and no reference into the reply is kept
	resultPool.Put(a)
}
