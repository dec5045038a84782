package serving

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

func codecResponse(rows, cols int, seed float64) *pb.GetOnlineFeaturesResponse {
	resp := &pb.GetOnlineFeaturesResponse{Rows: int32(rows)}
	for c := range cols {
		vals := make([]float64, rows)
		st := make([]pb.FieldStatus, rows)
		ts := make([]int64, rows)
		for r := range rows {
			vals[r], st[r], ts[r] = seed*float64(r*cols+c), pb.FieldStatus_PRESENT, int64(1_700_000_000_000_000+r)
		}
		resp.Features = append(resp.Features, &pb.FeatureColumn{
			Name: fmt.Sprintf("f%d", c), View: "v", Type: pb.ValueType(4),
			Values:   &pb.Vector{Kind: &pb.Vector_DoubleValues{DoubleValues: &pb.DoubleList{Val: vals}}},
			Statuses: st, EventTimestampsMicros: ts,
		})
	}
	return resp
}

// TestServerCodecMarshalsLikeProto: the codec's responses are proto.Marshal's bytes, for
// messages under the pooling threshold and over it, and when a pooled buffer that held a
// longer response is reused (its old bytes must never show through).
func TestServerCodecMarshalsLikeProto(t *testing.T) {
	c := serverCodec{}
	for _, shape := range [][2]int{{100, 30}, {90, 30}, {1, 30}, {1, 1}, {100, 30}, {70, 29}, {2000, 30}, {1500, 30}} {
		m := codecResponse(shape[0], shape[1], float64(shape[0]+shape[1]))
		want, err := proto.Marshal(m)
		require.NoError(t, err)
		got, err := c.Marshal(m)
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got.Materialize()), "rows %d cols %d", shape[0], shape[1])
		var back pb.GetOnlineFeaturesResponse
		require.NoError(t, c.Unmarshal(got, &back))
		require.True(t, proto.Equal(m, &back))
		got.Free()
	}
	_, err := c.Marshal("not a message")
	require.ErrorContains(t, err, "want proto.Message")
	require.ErrorContains(t, c.Unmarshal(nil, 7), "want proto.Message")
}

func TestDirtyPoolSizes(t *testing.T) {
	p := &dirtyPool{}
	for _, n := range []int{1, 1023, 1024, 1025, 4096, 60_000, 1 << 20, 1<<26 + 1} {
		b := p.Get(n)
		require.Len(t, *b, n)
		if n <= 1<<26 {
			require.Equal(t, 1<<sizeClass(n), cap(*b))
			require.GreaterOrEqual(t, cap(*b), n)
		}
		p.Put(b)
	}
	odd := make([]byte, 3000)
	p.Put(&odd) // not a pool size: dropped, not handed out as a 2 KiB or 4 KiB buffer
	require.Equal(t, 4096, cap(*p.Get(3000)))
}
