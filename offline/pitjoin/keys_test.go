package pitjoin

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
)

// The key table must agree with a Go map for dense and sparse integer keys and for composite
// keys, including keys whose hashes collide in the table's low bits.
func TestKeyTable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct {
		name string
		gen  func() int64
	}{
		{"dense", func() int64 { return r.Int64N(5000) - 100 }},
		{"sparse", func() int64 { return r.Int64() - r.Int64() }},
		{"strided", func() int64 { return r.Int64N(5000) << 32 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			build := func(n int) (*array.Int64, *array.String) {
				ib := array.NewInt64Builder(mem)
				sb := array.NewStringBuilder(mem)
				defer ib.Release()
				defer sb.Release()
				for range n {
					ib.Append(tc.gen())
					sb.Append(names[r.IntN(len(names))])
				}
				return ib.NewInt64Array(), sb.NewStringArray()
			}
			ents, entNames := build(3000)
			defer ents.Release()
			defer entNames.Release()
			probe, probeNames := build(5000)
			defer probe.Release()
			defer probeNames.Release()

			for _, composite := range []bool{false, true} {
				kc := func(ints *array.Int64, strs *array.String) []keyColumn {
					a, err := newKeyColumn(ints)
					require.NoError(t, err)
					if !composite {
						return []keyColumn{a}
					}
					b, err := newKeyColumn(strs)
					require.NoError(t, err)
					return []keyColumn{a, b}
				}
				type key struct {
					i int64
					s string
				}
				mk := func(ints *array.Int64, strs *array.String, i int) key {
					if composite {
						return key{ints.Value(i), strs.Value(i)}
					}
					return key{i: ints.Value(i)}
				}
				tb := newKeyTable(!composite, 16)
				g := make([]int32, ents.Len())
				tb.groups(kc(ents, entNames), ents.Len(), true, g)
				tb.freeze()
				want := map[key]int32{}
				for i := range ents.Len() {
					k := mk(ents, entNames, i)
					if prev, ok := want[k]; ok {
						require.Equal(t, prev, g[i])
					}
					want[k] = g[i]
				}
				require.Equal(t, len(want), tb.len())
				out := make([]int32, probe.Len())
				tb.groups(kc(probe, probeNames), probe.Len(), false, out)
				for i := range probe.Len() {
					exp, ok := want[mk(probe, probeNames, i)]
					if !ok {
						exp = -1
					}
					require.Equal(t, exp, out[i], "probe %d", i)
				}
				// Every entity key is found again.
				tb.groups(kc(ents, entNames), ents.Len(), false, g)
				for i := range ents.Len() {
					require.Equal(t, want[mk(ents, entNames, i)], g[i])
				}
			}
		})
	}
}
