package serving_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/model/oip"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPredictErrorsHideModelServer is issue 22 item 23: a Predict that fails in an OIP model
// server — one that is down, one that refuses the input — tells the caller which model failed
// and how (the code), but not the model server's internal host:port; that stays in the
// server's log.
func TestPredictErrorsHideModelServer(t *testing.T) {
	// A model server that answers, with a model that takes 3 features (churn_v1 has 5).
	up, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	oipCtx, stopOIP := context.WithCancel(context.Background())
	oipDone := make(chan error, 1)
	go func() {
		oipDone <- oip.Serve(oipCtx, up, nil, oip.ServedModel{Name: "narrow", Input: "features", Width: 3, Outputs: []string{"sum"}, Model: &sumModel{}})
	}()
	t.Cleanup(func() {
		stopOIP()
		require.NoError(t, <-oipDone)
	})
	// A model server that is down.
	down := mustListen(t)
	downAddr := down.Addr().String()
	require.NoError(t, down.Close())

	e := newEnv(t, redisSrv.Addr)
	yaml := strings.Replace(defsYAML, "models:", "models:\n"+
		"  - { name: narrow, feature_service: churn_v1, runtime: oip, endpoint: \""+up.Addr().String()+"\" }\n"+
		"  - { name: gone, feature_service: churn_v1, runtime: oip, endpoint: \""+downAddr+"\" }", 1)
	apply(t, e.reg, e.project, parseRepo(t, yaml))
	logs := &syncBuffer{}
	opts := e.options(t)
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Models = serving.RuntimeOpener{BaseDir: e.dir}
	c, base := serveBoth(t, opts)

	for _, tc := range []struct {
		model, addr string
		code        codes.Code
	}{
		{"narrow", up.Addr().String(), codes.FailedPrecondition},
		{"gone", downAddr, codes.Unavailable},
	} {
		t.Run(tc.model, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := c.Predict(ctx, &pb.PredictRequest{Model: &pb.ModelRef{Name: tc.model}, Entities: predictEntities})
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			msg := status.Convert(err).Message()
			require.Contains(t, msg, `model "`+tc.model+`"`)
			require.NotContains(t, msg, tc.addr, "the model server's address is internal")
			_, port, _ := net.SplitHostPort(tc.addr)
			require.NotContains(t, msg, ":"+port)

			r, err := http.Post(base+"/v1/predict", "application/json", strings.NewReader(`{"model": {"name": "`+tc.model+`"}, "entities": {"user_id": {"val": [{"int64_val": 1}]}, "merchant_id": {"val": [{"string_val": "m1"}]}}}`))
			require.NoError(t, err)
			b, err := io.ReadAll(r.Body)
			r.Body.Close()
			require.NoError(t, err)
			require.NotEqual(t, http.StatusOK, r.StatusCode, string(b))
			require.Contains(t, string(b), `model \"`+tc.model+`\"`)
			require.NotContains(t, string(b), ":"+port, "nor over HTTP")

			require.Contains(t, logs.String(), tc.addr, "the address is in the server's log")
		})
	}
}
