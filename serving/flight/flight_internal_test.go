package flight

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/quiverfs/quiver/internal/errkind"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path    []string
		name    string
		version int
		err     string
	}{
		{[]string{"churn_train"}, "churn_train", 0, ""},
		{[]string{"churn_train", "3"}, "churn_train", 3, ""},
		{[]string{"churn_train", "v3"}, "churn_train", 3, ""},
		{[]string{"churn_train", "latest"}, "churn_train", 0, ""},
		{[]string{"churn_train", "0"}, "", 0, `version "0"`},
		{[]string{"churn_train", "x"}, "", 0, `version "x"`},
		{[]string{""}, "", 0, "empty dataset name"},
		{nil, "", 0, "PATH descriptor"},
		{[]string{"a", "1", "b"}, "", 0, "PATH descriptor"},
	} {
		name, v, err := parsePath(&flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: tc.path})
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, "%v", tc.path)
			require.Equal(t, errkind.Invalid, errkind.Of(err))
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tc.name, name)
		require.Equal(t, tc.version, v)
	}
	_, _, err := parsePath(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("churn_train")})
	require.ErrorContains(t, err, "PATH descriptor")
}

func TestParseCommand(t *testing.T) {
	cmd := func(s string) *flight.FlightDescriptor {
		return &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte(s)}
	}
	req, err := parseCommand(cmd(`{"create_dataset": {"name": "a", "feature_service": "s", "at": "2026-01-31T00:00:00Z", "rebuild": true}}`))
	require.NoError(t, err)
	require.Equal(t, CreateRequest{Name: "a", FeatureService: "s", At: "2026-01-31T00:00:00Z", Rebuild: true}, req)
	for in, msg := range map[string]string{
		`{"create_dataset": {"feature_service": "s"}}`:                                 "needs a name",
		`{"create_dataset": {"name": "a"}}`:                                            "needs a feature_service",
		`{"create_dataset": {"name": "a", "feature_service": "s", "x": 1}}`:            `unknown field "x"`,
		`{"create_dataset": {"name": "a", "feature_service": "s", "at": "yesterday"}}`: "RFC 3339",
		`{}`:   "CMD descriptor",
		`nope`: "DoPut command",
	} {
		_, err := parseCommand(cmd(in))
		require.ErrorContains(t, err, msg, in)
		require.ErrorIs(t, err, ErrInvalidRequest)
	}
	_, err = parseCommand(nil)
	require.ErrorContains(t, err, "CMD descriptor")
}

// ipcStream is an in-memory DoPut: FlightData messages written by a flight.Writer, read
// back by a flight.Reader.
type ipcStream struct{ msgs []*flight.FlightData }

// Send keeps a copy: the writer reuses its message.
func (s *ipcStream) Send(d *flight.FlightData) error {
	s.msgs = append(s.msgs, proto.Clone(d).(*flight.FlightData))
	return nil
}
func (s *ipcStream) Recv() (*flight.FlightData, error) {
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	d := s.msgs[0]
	s.msgs = s.msgs[1:]
	return d, nil
}

// TestStagedEntitiesDependOnTheRowsOnly: the same rows, sent in other batches, with schema
// metadata (pandas') or with fields not nullable, stage the same bytes, so a dataset built
// from them is reused.
func TestStagedEntitiesDependOnTheRowsOnly(t *testing.T) {
	stage := func(schema *arrow.Schema, batchRows int) []byte {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for i := range 1000 {
			b.Field(0).(*array.Int64Builder).Append(int64(i % 7))
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000_000_000 + int64(i)))
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		s := &ipcStream{}
		w := flight.NewRecordWriter(s, ipc.WithSchema(schema))
		for off := int64(0); off < rec.NumRows(); off += int64(batchRows) {
			part := rec.NewSlice(off, min(off+int64(batchRows), rec.NumRows()))
			require.NoError(t, w.Write(part))
			part.Release()
		}
		require.NoError(t, w.Close())
		rr, err := flight.NewRecordReader(s)
		require.NoError(t, err)
		defer rr.Release()
		path := filepath.Join(t.TempDir(), "entities.parquet")
		require.NoError(t, writeEntities(path, rr))
		out, err := os.ReadFile(path)
		require.NoError(t, err)
		return out
	}
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	plain := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "event_timestamp", Type: ts, Nullable: true}}, nil)
	md := arrow.NewMetadata([]string{"pandas"}, []string{`{"index_columns": []}`})
	pandas := arrow.NewSchema(plain.Fields(), &md)
	strict := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_timestamp", Type: ts}}, nil)
	want := stage(plain, 1000)
	require.True(t, bytes.Equal(want, stage(plain, 7)), "batches")
	require.True(t, bytes.Equal(want, stage(pandas, 250)), "schema metadata")
	require.True(t, bytes.Equal(want, stage(strict, 1000)), "nullability")
}

// TestDoPutWithoutRows: an upload with a schema and no rows is refused, naming it.
func TestDoPutWithoutRows(t *testing.T) {
	s := &ipcStream{}
	schema := arrow.NewSchema([]arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	w := flight.NewRecordWriter(s, ipc.WithSchema(schema))
	require.NoError(t, w.Close())
	rr, err := flight.NewRecordReader(s)
	require.NoError(t, err)
	defer rr.Release()
	err = writeEntities(filepath.Join(t.TempDir(), "e.parquet"), rr)
	require.ErrorContains(t, err, "no entity rows")
	require.ErrorIs(t, err, ErrInvalidRequest)
}

// TestDoGetBoundsBatchBytes: a part of wide rows is sent in record batches of about
// MaxBatchBytes at most, every row once, in order.
func TestDoGetBoundsBatchBytes(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}, {Name: "blob", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	const rows = 5000
	for i := range rows {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(string(bytes.Repeat([]byte{'a' + byte(i%26)}, 1000)))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "part.parquet")
	f, err := os.Create(path)
	require.NoError(t, err)
	pw, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, pw.Write(rec))
	require.NoError(t, pw.Close())

	_, err = New(Options{Project: "p"})
	require.ErrorContains(t, err, "datasets are required")
	svc, err := New(Options{Project: "p", Datasets: noDatasets{}, BatchRows: rows, MaxBatchBytes: 1 << 20})
	require.NoError(t, err)
	s := &ipcStream{}
	require.NoError(t, svc.streamPart(t.Context(), path, s))
	require.Greater(t, len(s.msgs), 5, "about 5 MB of rows in batches of 1 MiB")
	for _, m := range s.msgs {
		require.Less(t, len(m.DataBody), 2<<20)
	}
	rr, err := flight.NewRecordReader(s)
	require.NoError(t, err)
	defer rr.Release()
	next := int64(0)
	for rr.Next() {
		ids := rr.RecordBatch().Column(0).(*array.Int64)
		for i := range ids.Len() {
			require.Equal(t, next, ids.Value(i))
			next++
		}
	}
	require.EqualValues(t, rows, next)
}

type noDatasets struct{}

func (noDatasets) Dataset(context.Context, string, int) (Dataset, error) {
	return Dataset{}, ErrNotFound
}
func (noDatasets) Create(context.Context, CreateRequest) (Created, error) {
	return Created{}, ErrNotFound
}
