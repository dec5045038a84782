package pitjoin

import (
	"slices"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// denseCol holds a fixed-width feature's output for every entity row, in entity-row order. The
// merge scatters matched values straight into it, so the output is a zero-copy slice instead of
// a second random gather.
type denseCol struct {
	dt    arrow.DataType
	width int
	n     int    // entity rows
	data  []byte // made by alloc, once the view is known not to be folded
	// Validity is the view's matched-rows bitmap (shared by all its dense features) minus the
	// rows whose matched value is null, collected here.
	nullRows []int32
	// valid, when set, is the column's own validity bitmap, kept by the fold (fold.go) as its
	// winners change; array then uses it instead of matched and nullRows.
	valid []byte
}

// denseWidth is the byte width of types stored densely, 0 for the others (bool, var-width and
// nested types go through Arrow's take).
func denseWidth(dt arrow.DataType) int {
	switch dt.ID() {
	case arrow.INT8, arrow.UINT8, arrow.INT16, arrow.UINT16, arrow.FLOAT16, arrow.INT32, arrow.UINT32,
		arrow.FLOAT32, arrow.DATE32, arrow.TIME32, arrow.INT64, arrow.UINT64, arrow.FLOAT64,
		arrow.TIMESTAMP, arrow.DATE64, arrow.TIME64, arrow.DURATION:
		return dt.(arrow.FixedWidthDataType).BitWidth() / 8
	}
	return 0
}

func newDenseCol(dt arrow.DataType, width, n int) *denseCol {
	return &denseCol{dt: dt, width: width, n: n}
}

func (d *denseCol) alloc() { d.data = make([]byte, d.width*d.n) }

func (d *denseCol) bytes() int64 { return int64(d.width*d.n + d.n/8) }

// scatter writes src[idx[k]] to entity row rows[k]. Each entity row is written at most once per
// view; one goroutine owns a column.
func (d *denseCol) scatter(src arrow.Array, idx, rows []int32) {
	sd := src.Data()
	off := sd.Offset()
	var vbits []byte
	if sd.Buffers()[0] != nil && src.NullN() > 0 {
		vbits = sd.Buffers()[0].Bytes()
	}
	w := d.width
	if sd.Buffers()[1] == nil || sd.Buffers()[1].Len() < (off+src.Len())*w {
		// No values buffer: every value is null, so every row it gives is.
		d.nullRows = append(d.nullRows, rows...)
		return
	}
	raw := sd.Buffers()[1].Bytes()[off*w:]
	if w == 8 {
		s := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(raw))), len(raw)/8)
		dst := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(d.data))), len(d.data)/8)
		for k, l := range idx {
			dst[rows[k]] = s[l]
		}
	} else {
		for k, l := range idx {
			r := int(rows[k])
			copy(d.data[r*w:(r+1)*w], raw[int(l)*w:(int(l)+1)*w])
		}
	}
	if vbits != nil {
		for k, l := range idx {
			if !bitutil.BitIsSet(vbits, off+int(l)) {
				d.nullRows = append(d.nullRows, rows[k])
			}
		}
	}
}

// array wraps the column as an Arrow array of n rows without copying its values; matched is the
// view's bitmap of entity rows that found a feature row.
func (d *denseCol) array(n int, matched []byte) arrow.Array {
	valid := d.valid
	if valid == nil {
		valid = slices.Clone(matched)
		for _, r := range d.nullRows {
			bitutil.ClearBit(valid, int(r))
		}
	}
	d.nullRows, d.valid = nil, nil
	data := array.NewData(d.dt, n, []*memory.Buffer{memory.NewBufferBytes(valid), memory.NewBufferBytes(d.data)}, nil, array.UnknownNullCount, 0)
	defer data.Release()
	return array.MakeFromData(data)
}
