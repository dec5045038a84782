package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/serving/auth/authtest"
	qflight "github.com/quiverfs/quiver/serving/flight"
	"github.com/quiverfs/quiver/training"
)

// flightRepo is the example shop on Redis, materialized, with dataset churn_train built by
// quiver dataset create from data/labels.parquet, served with API tokens and a policy:
// token reader may read and build datasets of churn_v1, token online may only read churn_v1
// online.
func flightRepo(t *testing.T) (*authRepo, string) {
	t.Helper()
	r := &authRepo{dir: filepath.Join(t.TempDir(), "shop"), env: map[string]string{"QUIVER_ONLINE": "redis://" + testenv.StartRedis(t).Addr + "/0"}}
	require.Equal(t, exitOK, quiver(t, nil, "init", r.dir, "--project", "shop").code)
	// The services without the models: serving them would need the ONNX Runtime.
	writeFile(t, filepath.Join(r.dir, "features", "churn.yaml"), "feature_services:\n  - name: churn_v1\n    features: [user_stats:*]\n")
	res := quiver(t, r.env, "-C", r.dir, "apply")
	require.Equal(t, exitOK, res.code, res.stderr)
	now := time.Now().UTC()
	res = quiver(t, r.env, "-C", r.dir, "materialize", "--start", now.AddDate(0, 0, -40).Format(time.RFC3339), "--end", now.Add(time.Hour).Format(time.RFC3339))
	require.Equal(t, exitOK, res.code, res.stderr)
	res = quiver(t, r.env, "-C", r.dir, "dataset", "create", "churn_train", "--service", "churn_v1", "--entities", filepath.Join(r.dir, "data", "labels.parquet"), "-o", "json")
	require.Equal(t, exitOK, res.code, res.stderr)
	var created struct {
		Location string `json:"location"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &created), res.stdout)
	require.NotEmpty(t, created.Location, res.stdout)
	if !filepath.IsAbs(created.Location) {
		created.Location = filepath.Join(r.dir, created.Location)
	}
	r.setServing(t, fmt.Sprintf(`  api_tokens:
    - { name: reader, sha256: %s }
    - { name: online, sha256: %s }
  policy:
    grants:
      - principals: [token:reader]
        datasets: [churn_train, flight_train]
        feature_services: [churn_v1]
      - principals: [token:online]
        feature_services: [churn_v1]
        projects: [shop]
`, authtest.SHA256("reader-secret"), authtest.SHA256("online-secret")))
	return r, created.Location
}

func flightClient(t *testing.T, addr string) flight.Client {
	t.Helper()
	c, err := flight.NewClientWithMiddleware(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readEndpoint reads one endpoint's record batches into a table.
func readEndpoint(ctx context.Context, c flight.Client, ep *flight.FlightEndpoint) (arrow.Table, error) {
	stream, err := c.DoGet(ctx, ep.GetTicket())
	if err != nil {
		return nil, err
	}
	rr, err := flight.NewRecordReader(stream)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	var recs []arrow.RecordBatch
	for rr.Next() {
		rec := rr.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	t := array.NewTableFromRecords(rr.Schema(), recs)
	for _, rec := range recs {
		rec.Release()
	}
	return t, nil
}

// requireTablesEqual compares two tables column by column, whatever their chunking (and,
// unless strict, the fields' nullability: rows sent by DoPut are staged nullable).
func requireTablesEqual(t *testing.T, want, got arrow.Table, strict bool) {
	t.Helper()
	if strict {
		require.True(t, want.Schema().Equal(got.Schema()), "schema\nwant %s\ngot  %s", want.Schema(), got.Schema())
	}
	require.Equal(t, want.NumCols(), got.NumCols())
	for i := range int(want.NumCols()) {
		w, g := want.Schema().Field(i), got.Schema().Field(i)
		require.Equal(t, w.Name, g.Name)
		require.True(t, arrow.TypeEqual(w.Type, g.Type), "column %s: %s, want %s", w.Name, g.Type, w.Type)
	}
	require.Equal(t, want.NumRows(), got.NumRows())
	for i := range int(want.NumCols()) {
		require.True(t, array.ChunkedEqual(want.Column(i).Data(), got.Column(i).Data()), "column %s differs", want.Schema().Field(i).Name)
	}
}

func flightInfo(ctx context.Context, c flight.Client, path ...string) (*flight.FlightInfo, error) {
	return c.GetFlightInfo(ctx, &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: path})
}

// TestFlightDatasets is issue 25's Arrow Flight acceptance through quiver serve on TCP: a
// dataset read part by part in parallel equals its Parquet files, a dataset built by DoPut
// of entity rows equals the one quiver dataset create built from the same rows (and is
// reused when sent again), tickets name no path and are checked against the registry, and
// the datasets grant is required.
func TestFlightDatasets(t *testing.T) {
	r, dir := flightRepo(t)
	p := startAuthServe(t, r)
	conn := dial(t, p, r, false, nil)
	waitHealthy(t, p, conn)
	c := flightClient(t, p.addr)
	reader, online := withToken("reader-secret"), withToken("online-secret")

	// The registered version's snapshot, as quiver dataset create wrote it.
	m, id, err := training.ReadManifest(dir)
	require.NoError(t, err)

	for _, path := range [][]string{{"churn_train"}, {"churn_train", "1"}, {"churn_train", "v1"}, {"churn_train", "latest"}} {
		info, err := flightInfo(reader, c, path...)
		require.NoError(t, err, "%v", path)
		require.Len(t, info.Endpoint, len(m.Files), "%v", path)
		require.Equal(t, m.Rows, info.TotalRecords)
		var meta qflight.InfoMetadata
		require.NoError(t, json.Unmarshal(info.AppMetadata, &meta))
		require.Equal(t, qflight.InfoMetadata{Name: "churn_train", Version: 1, ContentID: id, Rows: m.Rows}, meta)
	}
	info, err := flightInfo(reader, c, "churn_train")
	require.NoError(t, err)
	schema, err := flight.DeserializeSchema(info.Schema, memory.DefaultAllocator)
	require.NoError(t, err)

	// Every part, read in parallel, equals its Parquet file.
	tables := make([]arrow.Table, len(info.Endpoint))
	errs := make([]error, len(info.Endpoint))
	var wg sync.WaitGroup
	for i, ep := range info.Endpoint {
		require.Empty(t, ep.Location, "an endpoint is read from the server that answered")
		wg.Go(func() { tables[i], errs[i] = readEndpoint(reader, c, ep) })
	}
	wg.Wait()
	for i, f := range m.Files {
		require.NoError(t, errs[i])
		want := readParquet(t, filepath.Join(dir, f.Path))
		require.True(t, schema.Equal(tables[i].Schema()), "GetFlightInfo's schema is the stream's")
		requireTablesEqual(t, want, tables[i], true)
		tables[i].Release()
	}

	// Tickets name no path and are checked against the registry.
	tkt := info.Endpoint[0].GetTicket()
	var fields map[string]any
	require.NoError(t, json.Unmarshal(tkt.GetTicket(), &fields))
	require.ElementsMatch(t, []string{"project", "dataset", "version", "content_id", "part"}, keys(fields))
	forged := func(mod func(map[string]any)) *flight.Ticket {
		f := map[string]any{}
		for k, v := range fields {
			f[k] = v
		}
		mod(f)
		b, _ := json.Marshal(f)
		return &flight.Ticket{Ticket: b}
	}
	for name, tc := range map[string]struct {
		ticket *flight.Ticket
		code   codes.Code
		msg    string
	}{
		"part out of range":  {forged(func(f map[string]any) { f["part"] = 99 }), codes.NotFound, "has no part 99"},
		"other content":      {forged(func(f map[string]any) { f["content_id"] = "sha256:00" }), codes.NotFound, "ask GetFlightInfo again"},
		"version not there":  {forged(func(f map[string]any) { f["version"] = 7 }), codes.NotFound, "churn_train@v7"},
		"other project":      {forged(func(f map[string]any) { f["project"] = "bank" }), codes.NotFound, `project "bank"`},
		"a path":             {forged(func(f map[string]any) { f["path"] = "/etc/passwd" }), codes.InvalidArgument, "not one GetFlightInfo gave"},
		"not json":           {&flight.Ticket{Ticket: []byte("../../etc/passwd")}, codes.InvalidArgument, "not one GetFlightInfo gave"},
		"dataset not in use": {forged(func(f map[string]any) { f["dataset"] = "flight_train" }), codes.NotFound, "flight_train"},
	} {
		_, err := readEndpoint(reader, c, &flight.FlightEndpoint{Ticket: tc.ticket})
		require.Equal(t, tc.code, status.Code(err), "%s: %v", name, err)
		require.Contains(t, status.Convert(err).Message(), tc.msg, name)
	}

	// Authorization: no credentials, no datasets grant (a project grant is not one).
	_, err = flightInfo(context.Background(), c, "churn_train")
	requireCode(t, err, codes.Unauthenticated, "no credentials")
	_, err = flightInfo(online, c, "churn_train")
	requireCode(t, err, codes.PermissionDenied, `token:online is not granted dataset "churn_train" in project "shop"`)
	_, err = readEndpoint(online, c, info.Endpoint[0])
	requireCode(t, err, codes.PermissionDenied, `token:online is not granted dataset "churn_train"`)
	_, err = readEndpoint(context.Background(), c, info.Endpoint[0])
	requireCode(t, err, codes.Unauthenticated, "no credentials")

	// Bad descriptors.
	_, err = flightInfo(reader, c, "flight_train")
	requireCode(t, err, codes.NotFound, "dataset flight_train")
	_, err = flightInfo(reader, c, "churn_train", "zero")
	requireCode(t, err, codes.InvalidArgument, `version "zero"`)
	_, err = c.GetFlightInfo(reader, &flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte("x")})
	requireCode(t, err, codes.InvalidArgument, "PATH descriptor")

	// DoPut of the entity rows builds flight_train as quiver dataset create built churn_train.
	labels := readParquet(t, filepath.Join(r.dir, "data", "labels.parquet"))
	put := func(ctx context.Context, cmd string) (qflight.PutMetadata, error) {
		stream, err := c.DoPut(ctx)
		if err != nil {
			return qflight.PutMetadata{}, err
		}
		w := flight.NewRecordWriter(stream, ipc.WithSchema(labels.Schema()))
		w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: []byte(cmd)})
		tr := array.NewTableReader(labels, 500) // several batches
		for tr.Next() {
			if err := w.Write(tr.RecordBatch()); err != nil {
				break // the server answered early: Recv says why
			}
		}
		tr.Release()
		_ = w.Close()
		_ = stream.CloseSend()
		res, err := stream.Recv()
		if err != nil {
			return qflight.PutMetadata{}, err
		}
		var meta qflight.PutMetadata
		return meta, json.Unmarshal(res.GetAppMetadata(), &meta)
	}
	const create = `{"create_dataset": {"name": "flight_train", "feature_service": "churn_v1"}}`
	_, err = put(online, create)
	requireCode(t, err, codes.PermissionDenied, `token:online is not granted dataset "flight_train"`)
	_, err = put(reader, `{"create_dataset": {"name": "flight_train", "feature_service": "nope"}}`)
	requireCode(t, err, codes.PermissionDenied, `feature service "nope"`)
	_, err = put(reader, `{"make": 1}`)
	requireCode(t, err, codes.InvalidArgument, "create_dataset")
	res := quiver(t, r.env, "-C", r.dir, "dataset", "list", "-o", "json")
	require.Equal(t, exitOK, res.code, res.stderr)
	require.NotContains(t, res.stdout, "flight_train", "a refused DoPut registers nothing")

	meta, err := put(reader, create)
	require.NoError(t, err)
	require.Equal(t, "flight_train", meta.Name)
	require.Equal(t, 1, meta.Version)
	require.False(t, meta.Reused)
	require.Equal(t, labels.NumRows(), meta.Rows)
	require.NotEqual(t, id, meta.ContentID, "its lineage names the uploaded file")

	again, err := put(reader, create)
	require.NoError(t, err)
	require.True(t, again.Reused, "the same rows sent again reuse the version")
	require.Equal(t, 1, again.Version)

	// It reads back like any other dataset, with the rows quiver dataset create joined.
	readAll := func(path ...string) arrow.Table {
		info, err := flightInfo(reader, c, path...)
		require.NoError(t, err)
		var recs []arrow.RecordBatch
		for _, ep := range info.Endpoint {
			tbl, err := readEndpoint(reader, c, ep)
			require.NoError(t, err)
			tr := array.NewTableReader(tbl, 1<<20)
			for tr.Next() {
				rec := tr.RecordBatch()
				rec.Retain()
				recs = append(recs, rec)
			}
			tr.Release()
			tbl.Release()
		}
		return array.NewTableFromRecords(recs[0].Schema(), recs)
	}
	viaCLI, viaFlight := readAll("churn_train"), readAll("flight_train", "1")
	require.Equal(t, labels.NumRows(), viaFlight.NumRows())
	requireTablesEqual(t, viaCLI, viaFlight, false)

	// Removed: its tickets are refused.
	res = quiver(t, r.env, "-C", r.dir, "dataset", "rm", "churn_train@v1")
	require.Equal(t, exitOK, res.code, res.stderr)
	_, err = readEndpoint(reader, c, info.Endpoint[0])
	requireCode(t, err, codes.NotFound, "removed")

	// Metrics: calls by method and code, rows sent.
	metrics := scrape(t, p.metrics)
	require.Contains(t, metrics, `quiver_flight_calls_total{code="OK",method="DoGet"}`)
	require.Contains(t, metrics, `quiver_flight_calls_total{code="PermissionDenied",method="GetFlightInfo"} 1`)
	require.Contains(t, metrics, `quiver_flight_calls_total{code="OK",method="DoPut"} 2`)
	require.Regexp(t, `quiver_flight_rows_sent_total [1-9]`, metrics)

	require.Equal(t, exitOK, p.stop(t).code)
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
