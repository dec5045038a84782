package serving_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

// plainOf is a typed wire value as the plain form writes it, decoded with UseNumber.
func plainOf(v *pb.Value) any {
	num := func(s string) any { return json.Number(s) }
	f32 := func(f float32) any { return num(strconv.FormatFloat(float64(f), 'g', -1, 32)) }
	f64 := func(f float64) any { return num(strconv.FormatFloat(f, 'g', -1, 64)) }
	list := func(n int, at func(i int) any) any {
		out := make([]any, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	switch k := v.GetKind().(type) {
	case *pb.Value_Int32Val:
		return num(strconv.Itoa(int(k.Int32Val)))
	case *pb.Value_Int64Val:
		return num(strconv.FormatInt(k.Int64Val, 10))
	case *pb.Value_FloatVal:
		return f32(k.FloatVal)
	case *pb.Value_DoubleVal:
		return f64(k.DoubleVal)
	case *pb.Value_BoolVal:
		return k.BoolVal
	case *pb.Value_StringVal:
		return k.StringVal
	case *pb.Value_BytesVal:
		return base64.StdEncoding.EncodeToString(k.BytesVal)
	case *pb.Value_TimestampVal:
		return k.TimestampVal.AsTime().UTC().Format(time.RFC3339Nano)
	case *pb.Value_FloatListVal:
		return list(len(k.FloatListVal.Val), func(i int) any { return f32(k.FloatListVal.Val[i]) })
	case *pb.Value_Int64ListVal:
		return list(len(k.Int64ListVal.Val), func(i int) any { return num(strconv.FormatInt(k.Int64ListVal.Val[i], 10)) })
	}
	return nil
}

func decodePlain(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m), string(raw))
	return m
}

// TestHTTPPlainJSON: POST /v1/online-features takes plain JSON and answers plain JSON values
// equal, value for value and status for status, to the typed answer of the same request
// (every type of the fixture, nulls, stale rows, rows not found), in the service's column
// order; errors are the typed endpoint's.
func TestHTTPPlainJSON(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	e.populate(t)
	writeNullsAndZeros(t, e)
	base := startHTTP(t, e.options(t))
	client := &http.Client{Timeout: 10 * time.Second}

	for _, tc := range []struct{ plain, typed string }{
		{`{"feature_service": "profile", "entities": {"user_id": [1, 5, 999]}, "include_event_timestamps": true}`,
			`{"feature_service": "profile", "entities": {"user_id": {"val": [{"int64_val": 1}, {"int64_val": 5}, {"int64_val": 999}]}}}`},
		{`{"feature_service": "churn_v1", "entities": {"user_id": [1, 5], "merchant_id": ["m1", "m2"]}}`,
			`{"feature_service": "churn_v1", "entities": {"user_id": {"val": [{"int64_val": 1}, {"int64_val": 5}]}, "merchant_id": {"val": [{"string_val": "m1"}, {"string_val": "m2"}]}}}`},
		{`{"features": ["merchant_stats:risk", "user_stats:embedding"], "full_feature_names": true, "entities": {"user_id": [2], "merchant_id": ["m1"]}}`,
			`{"features": {"val": ["merchant_stats:risk", "user_stats:embedding"]}, "full_feature_names": true, "entities": {"user_id": {"val": [{"int64_val": 2}]}, "merchant_id": {"val": [{"string_val": "m1"}]}}}`},
	} {
		code, _, raw := post(t, client, base+"/v1/online-features", tc.plain)
		require.Equal(t, http.StatusOK, code, string(raw))
		got := decodePlain(t, raw)
		code, _, typedRaw := post(t, client, base+"/v1/get-online-features", tc.typed)
		require.Equal(t, http.StatusOK, code, string(typedRaw))
		var typed pb.GetOnlineFeaturesResponse
		require.NoError(t, protojson.Unmarshal(typedRaw, &typed))

		require.Equal(t, json.Number(strconv.Itoa(int(typed.Rows))), got["rows"])
		features, statuses := got["features"].(map[string]any), got["statuses"].(map[string]any)
		require.Len(t, features, len(typed.Features))
		var order []string
		for _, fc := range typed.Features {
			order = append(order, fc.Name)
			vals, sts := features[fc.Name].([]any), statuses[fc.Name].([]any)
			require.Len(t, vals, int(typed.Rows), fc.Name)
			for r := range int(typed.Rows) {
				want := plainOf(serving.VectorValue(fc.Values, r))
				if len(fc.Nulls) > 0 && fc.Nulls[r] {
					want = nil
				}
				require.Equal(t, want, vals[r], "%s row %d", fc.Name, r)
				require.Equal(t, fc.Statuses[r].String(), sts[r], "%s row %d", fc.Name, r)
			}
			if ets, ok := got["event_timestamps"].(map[string]any); ok {
				ts := ets[fc.Name].([]any)
				for r := range int(typed.Rows) {
					if fc.Statuses[r] == pb.FieldStatus_NOT_FOUND {
						require.Nil(t, ts[r])
						continue
					}
					require.Equal(t, time.UnixMicro(fc.EventTimestampsMicros[r]).UTC().Format(time.RFC3339Nano), ts[r], "%s row %d", fc.Name, r)
				}
			}
		}
		// Columns in the service's order.
		i := 0
		dec := json.NewDecoder(bytes.NewReader(raw))
		for tok, err := dec.Token(); err == nil; tok, err = dec.Token() {
			if s, ok := tok.(string); ok && i < len(order) && s == order[i] {
				i++
			}
		}
		require.Equal(t, len(order), i, "features in the order %v: %s", order, raw)
	}

	// int64 keys and values keep every digit, and the answer is plain JSON a decoder without
	// UseNumber reads too.
	code, m, raw := post(t, client, base+"/v1/online-features", `{"feature_service": "profile", "entities": {"user_id": [9223372036854775807]}}`)
	require.Equal(t, http.StatusOK, code, string(raw))
	require.Equal(t, []any{"NOT_FOUND"}, m["statuses"].(map[string]any)["clicks_7d"])

	for _, tc := range []struct {
		name, body string
		status     int
		code, msg  string
	}{
		{"unknown service", `{"feature_service": "churn_v2", "entities": {"user_id": [1]}}`, http.StatusBadRequest, "INVALID_ARGUMENT", `did you mean "churn_v1"?`},
		{"wrong key type", `{"feature_service": "profile", "entities": {"user_id": ["1"]}}`, http.StatusBadRequest, "INVALID_ARGUMENT", `join key "user_id" row 0: want int64, got string`},
		{"typed form", `{"feature_service": "profile", "entities": {"user_id": {"val": [{"int64_val": 1}]}}}`, http.StatusBadRequest, "INVALID_ARGUMENT", "decode the request"},
		{"unknown field", `{"feature_servic": "profile"}`, http.StatusBadRequest, "INVALID_ARGUMENT", "feature_servic"},
		{"two values", `{} {}`, http.StatusBadRequest, "INVALID_ARGUMENT", "more than one JSON value"},
		{"bad value", `{"feature_service": "profile", "entities": {"user_id": [{}]}}`, http.StatusBadRequest, "INVALID_ARGUMENT", `entities "user_id" row 0`},
		{"not online", `{"features": ["offline_only:label"], "entities": {"user_id": [1]}}`, http.StatusPreconditionFailed, "FAILED_PRECONDITION", "is not online"},
	} {
		code, m, raw := post(t, client, base+"/v1/online-features", tc.body)
		require.Equal(t, tc.status, code, "%s: %s", tc.name, raw)
		require.Equal(t, tc.code, m["code"], tc.name)
		require.Contains(t, m["message"], tc.msg, tc.name)
	}
}
