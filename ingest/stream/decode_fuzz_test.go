package stream

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/avro"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
)

// everyType is a view with a feature of every type, for the fuzzer.
var everyType = []string{
	"int32", "int64", "float32", "float64", "bool", "string", "bytes", "timestamp",
	"array<int32>", "array<int64>", "array<float32>", "array<float64>", "array<bool>",
	"array<string>", "array<bytes>", "array<timestamp>",
}

// avroOf is the Avro type a message carries for a feature type.
func avroOf(ty string) string {
	scalar := func(s string) string {
		switch s {
		case "int32":
			return `"int"`
		case "int64":
			return `"long"`
		case "float32":
			return `"float"`
		case "float64":
			return `"double"`
		case "bool":
			return `"boolean"`
		case "timestamp":
			return `{"type": "long", "logicalType": "timestamp-millis"}`
		}
		return `"` + s + `"`
	}
	if elem, ok := strings.CutPrefix(ty, "array<"); ok {
		return `{"type": "array", "items": ` + scalar(strings.TrimSuffix(elem, ">")) + `}`
	}
	return scalar(ty)
}

func fieldName(ty string) string { return "f_" + strings.NewReplacer("<", "_", ">", "").Replace(ty) }

// everyTypeDecoders returns a JSON and an Avro decoder of the every-type view, and the Avro
// schema.
func everyTypeDecoders(tb testing.TB) (jsonDec, avroDec *decoder, schema *avro.Schema) {
	tb.Helper()
	var feats, fields []string
	for _, ty := range everyType {
		feats = append(feats, `      - { name: `+fieldName(ty)+`, type: "`+ty+`" }`)
		fields = append(fields, `{"name": "`+fieldName(ty)+`", "type": ["null", `+avroOf(ty)+`]}`)
	}
	avroSchema := `{"type": "record", "name": "All", "fields": [{"name": "uid", "type": "long"}, ` +
		`{"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}, ` + strings.Join(fields, ", ") + `]}`
	var decs []*decoder
	for _, format := range []string{"", ", format: avro, schema: '" + avroSchema + "'"} {
		yaml := "entities:\n  - name: user\n    join_keys: [{ name: user_id, type: int64 }]\nsources:\n  - name: s\n" +
			"    kafka: { brokers: [h:1], topic: t, fields: { user_id: uid }" + format + " }\n" +
			"    timestamp_field: ts\nfeature_views:\n  - name: v\n    entities: [user]\n    source: s\n    features:\n" +
			strings.Join(feats, "\n") + "\n"
		dir := tb.TempDir()
		require.NoError(tb, os.WriteFile(filepath.Join(dir, "f.yaml"), []byte(yaml), 0o644))
		repo, err := definitions.Load(dir)
		require.NoError(tb, err)
		v, err := ingest.NewView("p", repo, repo.FeatureView("v"), 1)
		require.NoError(tb, err)
		d, err := newDecoder(v, repo.Source("s"))
		require.NoError(tb, err)
		decs = append(decs, d)
	}
	s, err := avro.Parse(avroSchema)
	require.NoError(tb, err)
	return decs[0], decs[1], s
}

// FuzzDecode: whatever the bytes of a message, JSON or Avro, the decoder never panics and
// either reports a bad message or returns a row of the view: a value per column, each null
// (features only) or of the column's declared type, and an event time.
func FuzzDecode(f *testing.F) {
	jsonDec, avroDec, schema := everyTypeDecoders(f)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	for _, s := range []string{
		`{"uid": 7, "ts": "2026-11-01T10:00:00Z"}`,
		`{"uid": 7, "ts": 1764633600000, "f_int32": 1, "f_int64": -9, "f_float32": 1.5, "f_float64": 0.1, "f_bool": true,
		  "f_string": "x", "f_bytes": "AAE=", "f_timestamp": "2026-11-01T10:00:00.123456Z",
		  "f_array_int32": [1, 2], "f_array_int64": [], "f_array_float32": [0.25], "f_array_float64": [1e300],
		  "f_array_bool": [false], "f_array_string": ["", "a"], "f_array_bytes": ["AA=="], "f_array_timestamp": [1]}`,
		`{"uid": 1, "ts": 1, "f_int32": 2147483648}`,
		`{"uid": 1, "ts": 1, "f_float32": 1e300}`,
		`{"uid": 1, "ts": 1, "f_array_int64": [null]}`,
		`{"uid": "1", "ts": 1}`,
		`[1, 2]`,
		`null`,
	} {
		f.Add([]byte(s), false)
	}
	msg := map[string]any{"uid": int64(9), "ts": at, "f_int32": int32(-3), "f_float32": float32(0.5), "f_bytes": []byte{0, 1},
		"f_array_string": []any{"a", "b"}, "f_array_timestamp": []any{at}, "f_timestamp": at}
	b, err := schema.Encode(msg)
	require.NoError(f, err)
	f.Add(b, true)
	f.Add(b[:len(b)/2], true)
	f.Add([]byte{0xff, 0x01}, true)

	f.Fuzz(func(t *testing.T, data []byte, isAvro bool) {
		d := jsonDec
		if isAvro {
			d = avroDec
		}
		r, err := d.decode(data)
		if err != nil {
			require.ErrorIs(t, err, errBadMessage)
			return
		}
		require.Len(t, r.values, len(d.cols))
		for i, c := range d.cols {
			v := r.values[i]
			if i < d.nKeys {
				require.False(t, v.IsNull(), "join key %s", c.Name)
			}
			if !v.IsNull() {
				require.Equal(t, c.Type, v.Type(), "column %s", c.Name)
			}
		}
		require.False(t, r.eventTS.IsZero())
	})
}

// TestDecodeEveryType: the fuzzer's seeds reach the decoder's success path for every type.
func TestDecodeEveryType(t *testing.T) {
	jsonDec, avroDec, schema := everyTypeDecoders(t)
	r, err := jsonDec.decode([]byte(`{"uid": 7, "ts": 1764633600000, "f_int32": 1, "f_int64": -9, "f_float32": 1.5,
		"f_float64": 0.1, "f_bool": true, "f_string": "x", "f_bytes": "AAE=", "f_timestamp": "2026-11-01T10:00:00.123456Z",
		"f_array_int32": [1, 2], "f_array_int64": [], "f_array_float32": [0.25], "f_array_float64": [1e300],
		"f_array_bool": [false], "f_array_string": ["", "a"], "f_array_bytes": ["AA=="], "f_array_timestamp": [1]}`))
	require.NoError(t, err)
	for i, v := range r.values {
		require.False(t, v.IsNull(), "column %s", jsonDec.cols[i].Name)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	b, err := schema.Encode(map[string]any{"uid": int64(9), "ts": at, "f_int32": int32(-3), "f_array_timestamp": []any{at}})
	require.NoError(t, err)
	r, err = avroDec.decode(b)
	require.NoError(t, err)
	require.Equal(t, int32(-3), r.values[1].Int32())
	require.Equal(t, []time.Time{at}, r.values[16].Timestamps())
	require.True(t, r.values[2].IsNull())
}
