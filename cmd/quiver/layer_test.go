package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/testenv"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// TestServePushValidatesAgainstServedRevision (issue 23): quiver serve --push validates
// pushes against the definitions it serves. An apply (a new feature of the push view) lands
// while the server starts: the test holds a lock on the registry's namespace table, which
// serve reads when it opens the offline store, and applies while serve waits on it. Whatever
// revision the server then serves, pushes are checked against that same revision: the new
// feature is served if and only if a push carrying it is accepted.
func TestServePushValidatesAgainstServedRevision(t *testing.T) {
	pg := testenv.StartPostgres(t)
	env := map[string]string{"QUIVER_REGISTRY": pg.NewDatabase(t)}
	dir := pushRepo(t, env)
	ctx := context.Background()

	lock, err := pgx.Connect(ctx, env["QUIVER_REGISTRY"])
	require.NoError(t, err)
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE namespace_owners IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)

	port, err := testenv.FreePort()
	require.NoError(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		code := run(sctx, []string{"-C", dir, "serve", "--addr", addr, "--metrics-addr", "", "--refresh", "1h"}, &out, &errOut, func(k string) string { return env[k] })
		done <- result{code: code, stdout: out.String(), stderr: errOut.String()}
	}()
	t.Cleanup(func() {
		cancel()
		res := <-done
		require.Equal(t, exitOK, res.code, res.stderr)
	})
	// Watched from a connection of its own: a transaction sees one snapshot of the statistics.
	watch, err := pgx.Connect(ctx, env["QUIVER_REGISTRY"])
	require.NoError(t, err)
	defer watch.Close(ctx)
	waitFor(t, "quiver serve waiting on the locked table", 60*time.Second, func() bool {
		var n int
		require.NoError(t, watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n))
		return n > 0
	})
	writeFile(t, filepath.Join(dir, "features", "live.yaml"), strings.Replace(pushDefs,
		"      - { name: page, type: string }\n", "      - { name: page, type: string }\n      - { name: score, type: int64 }\n", 1))
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NoError(t, tx.Rollback(ctx))
	r = quiver(t, nil, "health", "--server", addr, "--wait", "60s")
	require.Equal(t, exitOK, r.code, r.stderr)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := pb.NewFeatureServingClient(conn)
	_, err = client.GetOnlineFeatures(ctx, &pb.GetOnlineFeaturesRequest{
		Kind:     &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: []string{"user_live:score"}}},
		Entities: map[string]*pb.RepeatedValue{"user_id": {Val: []*pb.Value{{Kind: &pb.Value_Int64Val{Int64Val: 1}}}}},
	})
	served := err == nil
	if !served {
		require.Equal(t, codes.InvalidArgument, status.Code(err), err)
	}
	req := liveRequest(3, 1, time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC))
	req.Columns["score"] = &pb.RepeatedValue{}
	for i := range 3 {
		req.Columns["score"].Val = append(req.Columns["score"].Val, &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: int64(i)}})
	}
	_, err = client.PushFeatures(ctx, req)
	accepted := err == nil
	if !accepted {
		require.Equal(t, codes.InvalidArgument, status.Code(err), err)
	}
	require.Equal(t, served, accepted, "the server serves user_live:score: %v; a push with score is accepted: %v (%v)", served, accepted, err)
}
