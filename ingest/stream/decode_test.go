package stream

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/avro"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
)

const schema = `{"type": "record", "name": "Click", "fields": [
  {"name": "uid", "type": "long"}, {"name": "clicks", "type": ["null", "long"]},
  {"name": "tags", "type": {"type": "array", "items": "string"}},
  {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}`

func view(t *testing.T, format string) (*ingest.View, *definitions.Source) {
	t.Helper()
	src := "    kafka: { brokers: [h:1], topic: t, fields: { user_id: uid } }\n"
	if format == "avro" {
		src = "    kafka: { brokers: [h:1], topic: t, fields: { user_id: uid }, format: avro, schema: '" + schema + "' }\n"
	}
	yaml := "entities:\n  - name: user\n    join_keys: [{ name: user_id, type: int64 }]\nsources:\n  - name: s\n" + src +
		"    timestamp_field: ts\nfeature_views:\n  - name: v\n    entities: [user]\n    source: s\n    features:\n      - { name: clicks, type: int64 }\n      - { name: tags, type: \"array<string>\" }\n"
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.yaml"), []byte(yaml), 0o644))
	repo, err := definitions.Load(dir)
	require.NoError(t, err)
	v, err := ingest.NewView("p", repo, repo.FeatureView("v"), 1)
	require.NoError(t, err)
	return v, repo.Source("s")
}

func TestDecodeJSON(t *testing.T) {
	v, src := view(t, "json")
	d, err := newDecoder(v, src)
	require.NoError(t, err)
	r, err := d.decode([]byte(`{"uid": 7, "clicks": 3, "tags": ["a"], "ts": "2026-11-01T10:00:00Z"}`))
	require.NoError(t, err)
	require.Equal(t, int64(7), r.values[0].Int64())
	require.Equal(t, int64(3), r.values[1].Int64())
	require.Equal(t, []string{"a"}, r.values[2].Strings())
	require.Equal(t, time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), r.eventTS)
	r, err = d.decode([]byte(`{"uid": 7, "ts": 1764633600000}`)) // epoch ms; features missing: null
	require.NoError(t, err)
	require.True(t, r.values[1].IsNull())
	require.Equal(t, time.UnixMilli(1764633600000).UTC(), r.eventTS)

	for in, want := range map[string]string{
		`{"uid": 7`: "not a JSON object",
		`{"clicks": 1, "ts": "2026-11-01T10:00:00Z"}`: `join key field "uid" missing`,
		`{"uid": "x", "ts": "2026-11-01T10:00:00Z"}`:  `field "uid"`,
		`{"uid": 1, "clicks": 1.5, "ts": 1}`:          `field "clicks"`,
		`{"uid": 1}`:                                  `event time field "ts"`,
		`{"uid": 1, "tags": [null], "ts": 1}`:         "arrays cannot hold nulls",
		`{"uid": 1, "ts": "yesterday"}`:               `event time field "ts"`,
	} {
		_, err := d.decode([]byte(in))
		require.ErrorIs(t, err, errBadMessage, in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestDecodeAvro(t *testing.T) {
	v, src := view(t, "avro")
	d, err := newDecoder(v, src)
	require.NoError(t, err)
	s, err := avro.Parse(schema)
	require.NoError(t, err)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	b, err := s.Encode(map[string]any{"uid": int64(9), "clicks": int64(4), "tags": []any{"x", "y"}, "ts": at})
	require.NoError(t, err)
	r, err := d.decode(b)
	require.NoError(t, err)
	require.Equal(t, int64(9), r.values[0].Int64())
	require.Equal(t, int64(4), r.values[1].Int64())
	require.Equal(t, []string{"x", "y"}, r.values[2].Strings())
	require.Equal(t, at, r.eventTS)
	_, err = d.decode([]byte{0xff, 0x01})
	require.ErrorIs(t, err, errBadMessage)
}
