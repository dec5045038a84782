package serving_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

// TestGetOnlineCLI is what `quiver get-online` does: parse --entity flags, call the server in
// process (no listener), print a table or JSON.
func TestGetOnlineCLI(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	srv, err := serving.NewServer(context.Background(), e.options(t))
	require.NoError(t, err)

	ents, err := serving.ParseEntities(srv.Definitions(), []string{"user_id=1", "merchant_id=m2"})
	require.NoError(t, err)
	resp, err := srv.GetOnlineFeatures(context.Background(), &pb.GetOnlineFeaturesRequest{
		Kind: &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: "churn_v1"}, Entities: ents})
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, serving.WriteTable(&out, resp))
	ts := e.now.Add(-time.Hour).Format("2006-01-02T15:04:05Z07:00")
	require.Equal(t, ""+
		"ROW  FEATURE                VALUE  STATUS     EVENT_TIME\n"+
		"0    user_stats:clicks_7d   42     PRESENT    "+ts+"\n"+
		"0    user_stats:spend_30d   99.5   PRESENT    "+ts+"\n"+
		"0    user_stats:is_vip      true   PRESENT    "+ts+"\n"+
		"0    merchant_stats:risk    null   NOT_FOUND  -\n"+
		"0    merchant_stats:orders  null   NOT_FOUND  -\n", out.String())

	out.Reset()
	require.NoError(t, serving.WriteJSON(&out, resp))
	var decoded map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &decoded))
	require.EqualValues(t, 1, decoded["rows"])

	_, err = serving.ParseEntities(srv.Definitions(), []string{"userid=1"})
	require.ErrorContains(t, err, `did you mean "user_id"?`)
	_, err = serving.ParseEntities(srv.Definitions(), []string{"user_id=x"})
	require.ErrorContains(t, err, "want an int64")
	require.Equal(t, `["a", "b"]`, serving.FormatValue(&pb.Value{Kind: &pb.Value_StringListVal{StringListVal: &pb.StringList{Val: []string{"a", "b"}}}}))
}
