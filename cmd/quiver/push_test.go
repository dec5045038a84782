package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline/iceberg"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// pushDefs adds a push view to the scaffold's repo.
const pushDefs = `sources:
  - name: live_events
    push: {}
    timestamp_field: event_ts
    created_timestamp_field: created_ts

feature_views:
  - name: user_live
    entities: [user]
    source: live_events
    online: true
    features:
      - { name: clicks, type: int64 }
      - { name: page, type: string }
`

// pushRepo is a scaffolded repo with the push view applied, on the given online store.
func pushRepo(t *testing.T, env map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	writeFile(t, filepath.Join(dir, "features", "live.yaml"), pushDefs)
	// No model: serve then needs no ONNX Runtime.
	require.NoError(t, os.Remove(filepath.Join(dir, "features", "churn.yaml")))
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	return dir
}

// liveClicks is get-online of user_live:clicks for one user: the value and its status.
func liveClicks(t *testing.T, env map[string]string, dir string, user int) (string, string) {
	t.Helper()
	r := quiver(t, env, "-C", dir, "-o", "json", "get-online", "--feature", "user_live:clicks", "--entity", "user_id="+strconv.Itoa(user))
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Features []struct {
			Values struct {
				Int64 struct {
					Val []string `json:"val"`
				} `json:"int64_values"`
			} `json:"values"`
			Statuses []string `json:"statuses"`
		} `json:"features"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	require.Len(t, out.Features, 1, r.stdout)
	f := out.Features[0]
	v := ""
	if len(f.Values.Int64.Val) > 0 {
		v = f.Values.Int64.Val[0]
	}
	return v, f.Statuses[0]
}

func onlineStores(t *testing.T) map[string]map[string]string {
	return map[string]map[string]string{
		"embedded": nil,
		"redis":    {"QUIVER_ONLINE": "redis://" + testenv.StartRedis(t).Addr + "/0"},
	}
}

// TestPushCLIAndGRPC: quiver push (direct and through a server) and the PushFeatures RPC,
// into Redis and the embedded store: values are served at once, an older event does not
// overwrite, and a batch with one bad row is refused whole with the row named.
func TestPushCLIAndGRPC(t *testing.T) {
	for name, env := range onlineStores(t) {
		t.Run(name, func(t *testing.T) {
			dir := pushRepo(t, env)
			csv := filepath.Join(dir, "rows.csv")
			writeFile(t, csv, "user_id,event_ts,clicks,page\n1,2026-11-01T10:00:00Z,10,home\n2,2026-11-01T10:00:00Z,20,cart\n")
			r := quiver(t, env, "-C", dir, "-o", "json", "push", "user_live", csv)
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, `"offline_rows": 2`)
			v, st := liveClicks(t, env, dir, 2)
			require.Equal(t, []string{"20", "PRESENT"}, []string{v, st})

			// Pushing the same file again commits nothing twice.
			r = quiver(t, env, "-C", dir, "-o", "json", "push", "user_live", csv)
			require.Equal(t, exitOK, r.code, r.stderr)
			require.Contains(t, r.stdout, `"already_committed": true`)

			// An older event for user 1 does not replace the newer value.
			older := filepath.Join(dir, "older.csv")
			writeFile(t, older, "user_id,event_ts,clicks,page\n1,2026-10-01T10:00:00Z,999,old\n")
			r = quiver(t, env, "-C", dir, "push", "user_live", older)
			require.Equal(t, exitOK, r.code, r.stderr)
			v, _ = liveClicks(t, env, dir, 1)
			require.Equal(t, "10", v)

			// One bad row refuses the whole file, naming the row.
			bad := filepath.Join(dir, "bad.csv")
			writeFile(t, bad, "user_id,event_ts,clicks,page\n3,2026-11-02T10:00:00Z,30,x\n,2026-11-02T10:00:00Z,40,y\n")
			r = quiver(t, env, "-C", dir, "push", "user_live", bad)
			require.Equal(t, exitInvalid, r.code, r.stderr)
			require.Contains(t, r.stderr, `row 1: join key "user_id" is null`)
			_, st = liveClicks(t, env, dir, 3)
			require.Equal(t, "NOT_FOUND", st, "the good row of a refused file is not written")

			// The view takes no materialization; materialize-incremental skips it.
			r = quiver(t, env, "-C", dir, "materialize", "user_live", "--start", "2026-11-01", "--end", "2026-11-02")
			require.NotEqual(t, exitOK, r.code)
			require.Contains(t, r.stderr, "push source")

			// Through a server: quiver push --server, and the RPC itself.
			hport, err := testenv.FreePort()
			require.NoError(t, err)
			httpAddr := "127.0.0.1:" + strconv.Itoa(hport)
			addr := startServe(t, dir, env, "--push-commit-interval", "100ms", "--http-addr", httpAddr)
			newer := filepath.Join(dir, "newer.csv")
			writeFile(t, newer, "user_id,event_ts,clicks,page\n1,2026-11-03T10:00:00Z,11,home\n")
			r = quiver(t, env, "-C", dir, "-o", "json", "push", "user_live", newer, "--server", addr)
			require.Equal(t, exitOK, r.code, r.stderr)
			v, _ = liveClicks(t, env, dir, 1)
			require.Equal(t, "11", v)

			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			require.NoError(t, err)
			defer conn.Close()
			client := pb.NewFeatureServingClient(conn)
			ctx := context.Background()
			req := liveRequest(5, 1_000, time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC))
			resp, err := client.PushFeatures(ctx, req)
			require.NoError(t, err)
			require.EqualValues(t, 5, resp.GetRows())
			v, st = liveClicks(t, env, dir, 1004)
			require.Equal(t, []string{"1004", "PRESENT"}, []string{v, st})

			req = liveRequest(5, 2_000, time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC))
			req.Columns["clicks"].Val[3] = &pb.Value{Kind: &pb.Value_StringVal{StringVal: "lots"}}
			_, err = client.PushFeatures(ctx, req)
			require.Equal(t, codes.InvalidArgument, status.Code(err), err)
			require.Contains(t, err.Error(), `column "clicks"`)
			require.Contains(t, err.Error(), "row 3")
			_, st = liveClicks(t, env, dir, 2000)
			require.Equal(t, "NOT_FOUND", st, "nothing of the refused batch is online")

			// HTTP/JSON: POST /v1/push-features.
			body := `{"feature_view": "user_live", "columns": {"user_id": {"val": [{"int64_val": "77"}]},
				"clicks": {"val": [{"int64_val": "7"}]}, "page": {"val": [{"string_val": "x"}]}},
				"event_timestamps_micros": ["1764633600000000"]}`
			hresp, herr := http.Post("http://"+httpAddr+"/v1/push-features", "application/json", strings.NewReader(body))
			require.NoError(t, herr)
			b, _ := io.ReadAll(hresp.Body)
			hresp.Body.Close()
			require.Equal(t, http.StatusOK, hresp.StatusCode, string(b))
			v, _ = liveClicks(t, env, dir, 77)
			require.Equal(t, "7", v)

			// Everything acknowledged reaches the offline table (2 + 1 + 1 + 5 + 1 rows).
			waitFor(t, "the pushed rows offline", 20*time.Second, func() bool { return icebergRows(t, dir, "user_live") == 10 })
		})
	}
}

// liveRequest is a PushFeatures request of n rows for users first..first+n-1, clicks = user.
func liveRequest(n, first int, at time.Time) *pb.PushFeaturesRequest {
	req := &pb.PushFeaturesRequest{FeatureView: "user_live", Columns: map[string]*pb.RepeatedValue{
		"user_id": {}, "clicks": {}, "page": {},
	}}
	for i := range n {
		u := int64(first + i)
		req.Columns["user_id"].Val = append(req.Columns["user_id"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: u}})
		req.Columns["clicks"].Val = append(req.Columns["clicks"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: u}})
		req.Columns["page"].Val = append(req.Columns["page"].Val, &pb.Value{Kind: &pb.Value_StringVal{StringVal: "p" + strconv.Itoa(i%7)}})
		req.EventTimestampsMicros = append(req.EventTimestampsMicros, at.Add(time.Duration(i)*time.Microsecond).UnixMicro())
	}
	return req
}

// icebergRows counts a view's rows in the offline table through iceberg-go, checking that no
// (user_id, event_ts) is there twice. -1 when the table does not exist yet.
func icebergRows(t *testing.T, dir, view string) int {
	t.Helper()
	ctx := context.Background()
	cat, err := iceberg.OpenCatalog(ctx, iceberg.CatalogConfig{URI: "sqlite://" + filepath.Join(dir, ".quiver", "registry.db"), Warehouse: filepath.Join(dir, ".quiver", "warehouse")})
	require.NoError(t, err)
	defer cat.Close()
	tbl, err := cat.Iceberg().LoadTable(ctx, table.Identifier{iceberg.ProjectNamespace("shop"), view})
	if err != nil {
		return -1
	}
	at, err := tbl.Scan(table.WithSelectedFields("user_id", "event_ts")).ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	seen := map[string]bool{}
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			k := rec.Column(0).ValueStr(i) + "/" + rec.Column(1).ValueStr(i)
			require.False(t, seen[k], "row %s is in the offline table twice", k)
			seen[k] = true
		}
	}
	return int(at.NumRows())
}

// TestPushKilledServerLosesNothing: a real quiver serve is killed with SIGKILL right after
// acknowledging 10,000 pushed rows, before any offline commit; once restarted, all 10,000
// rows are in the Iceberg table, none twice.
func TestPushKilledServerLosesNothing(t *testing.T) {
	dir := pushRepo(t, nil)
	port, err := testenv.FreePort()
	require.NoError(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	serve := func(interval string) (*osProcess, *lockedBuffer) {
		cmd, out := quiverProcess(t, nil, "-C", dir, "serve", "--addr", addr, "--metrics-addr", "", "--push-commit-interval", interval)
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		r := quiver(t, nil, "health", "--server", addr, "--wait", "30s")
		require.Equal(t, exitOK, r.code, out.String())
		return &osProcess{cmd.Process.Pid, cmd.Wait}, out
	}
	first, _ := serve("1h") // no commit before the kill

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := pb.NewFeatureServingClient(conn)
	at := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	for b := range 10 {
		resp, err := client.PushFeatures(context.Background(), liveRequest(1000, b*1000, at.Add(time.Duration(b)*time.Hour)))
		require.NoError(t, err)
		require.EqualValues(t, 1000, resp.GetRows())
	}
	require.NoError(t, syscall.Kill(first.pid, syscall.SIGKILL))
	_ = first.wait()
	require.Equal(t, -1, icebergRows(t, dir, "user_live"), "nothing was committed before the kill")

	second, out := serve("100ms")
	waitFor(t, "10,000 rows offline", 60*time.Second, func() bool { return icebergRows(t, dir, "user_live") >= 10_000 })
	require.NoError(t, syscall.Kill(second.pid, syscall.SIGTERM))
	require.NoError(t, second.wait(), out.String())
	require.Equal(t, 10_000, icebergRows(t, dir, "user_live"))
	segs, _ := filepath.Glob(filepath.Join(dir, ".quiver", "push-log", "shop", "*.wal"))
	require.Empty(t, segs, "the log is truncated after the commit")
	// And the rows are served.
	v, st := liveClicks(t, nil, dir, 9_999)
	require.Equal(t, []string{"9999", "PRESENT"}, []string{v, st})
}

type osProcess struct {
	pid  int
	wait func() error
}

// TestDatasetSeesPushedRows: dataset create after a push includes the pushed rows with the
// point-in-time semantics of batch rows.
func TestDatasetSeesPushedRows(t *testing.T) {
	dir := pushRepo(t, nil)
	writeFile(t, filepath.Join(dir, "features", "live_service.yaml"), "feature_services:\n  - name: live_v1\n    features: [user_live:clicks]\n")
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	rows := filepath.Join(dir, "p.csv")
	writeFile(t, rows, "user_id,event_ts,clicks,page\n1,2026-11-01T10:00:00Z,10,a\n1,2026-11-02T10:00:00Z,20,b\n2,2026-11-01T10:00:00Z,5,c\n")
	r = quiver(t, nil, "-C", dir, "push", "user_live", rows)
	require.Equal(t, exitOK, r.code, r.stderr)
	ents := filepath.Join(dir, "ents.csv")
	writeFile(t, ents, "user_id,event_timestamp\n1,2026-11-01T09:00:00Z\n1,2026-11-01T11:00:00Z\n1,2026-11-03T00:00:00Z\n2,2026-11-05T00:00:00Z\n")
	r = quiver(t, nil, "-C", dir, "-o", "json", "dataset", "create", "live", "--service", "live_v1", "--entities", ents)
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Location string `json:"location"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	files, err := filepath.Glob(filepath.Join(out.Location, "*.parquet"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var got []string
	for _, f := range files {
		pf, err := file.OpenParquetFile(f, false)
		require.NoError(t, err)
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		require.NoError(t, err)
		tbl, err := fr.ReadTable(context.Background())
		require.NoError(t, err)
		idx := -1
		for i, fld := range tbl.Schema().Fields() {
			if strings.Contains(fld.Name, "clicks") {
				idx = i
			}
		}
		require.GreaterOrEqual(t, idx, 0, tbl.Schema().String())
		for _, ch := range tbl.Column(idx).Data().Chunks() {
			for i := range ch.Len() {
				got = append(got, ch.ValueStr(i))
			}
		}
		tbl.Release()
		pf.Close()
	}
	require.Equal(t, []string{"(null)", "10", "20", "5"}, got)
}
