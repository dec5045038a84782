package pitjoin

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

// TestScatterOfAllNullArrayWithoutValues: a feature array with no values buffer (every value
// null: Arrow allows leaving it out) makes the matched entity rows null, not zeros marked
// valid. The merge used to return early and leave them valid.
func TestScatterOfAllNullArrayWithoutValues(t *testing.T) {
	const n = 4
	validity := memory.NewBufferBytes(make([]byte, 1)) // no bit set: all null
	data := array.NewData(arrow.PrimitiveTypes.Float64, 3, []*memory.Buffer{validity, nil}, nil, 3, 0)
	src := array.MakeFromData(data)
	data.Release()
	defer src.Release()

	d := newDenseCol(arrow.PrimitiveTypes.Float64, 8, n)
	d.alloc()
	d.scatter(src, []int32{0, 2}, []int32{1, 3})
	matched := make([]byte, 1)
	for _, r := range []int{1, 3} {
		bitutil.SetBit(matched, r)
	}
	out := d.array(n, matched)
	defer out.Release()
	for r := range n {
		require.True(t, out.IsNull(r), "entity row %d: no feature row, or an all-null one", r)
	}
}
