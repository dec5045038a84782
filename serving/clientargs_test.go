package serving

import (
	"testing"

	"github.com/stretchr/testify/require"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

func TestParseUntyped(t *testing.T) {
	got, err := ParseUntyped("entity", []string{"user_id=42", "user_id=-7", "zip=02134", "code=\"42\"", "spend=0.5", "spend=1e3", "vip=true", "name=m3", "empty="})
	require.NoError(t, err)
	require.Equal(t, []*pb.Value{
		{Kind: &pb.Value_Int64Val{Int64Val: 42}},
		{Kind: &pb.Value_Int64Val{Int64Val: -7}},
	}, got["user_id"].Val)
	require.Equal(t, "02134", got["zip"].Val[0].GetStringVal(), "a leading zero keeps it a string")
	require.Equal(t, "42", got["code"].Val[0].GetStringVal(), "quotes make a string")
	require.Equal(t, []float64{0.5, 1000}, []float64{got["spend"].Val[0].GetDoubleVal(), got["spend"].Val[1].GetDoubleVal()})
	require.True(t, got["vip"].Val[0].GetBoolVal())
	require.Equal(t, "m3", got["name"].Val[0].GetStringVal())
	require.Equal(t, "", got["empty"].Val[0].GetStringVal())

	_, err = ParseUntyped("request", []string{"novalue"})
	require.ErrorIs(t, err, ErrInvalidRequest)
	require.ErrorContains(t, err, `request "novalue" is not of the form name=value`)
}
