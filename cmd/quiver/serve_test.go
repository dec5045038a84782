package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServeStartupFailures is seen item 1 of issue 12 through the real CLI: `quiver serve`
// that cannot start exits non-zero with a message naming the cause — it never hangs.
func TestServeStartupFailures(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	r := quiver(t, nil, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"metrics port busy", []string{"--addr", "127.0.0.1:0", "--metrics-addr", busy.Addr().String()},
			[]string{"listen for metrics on " + busy.Addr().String(), "address already in use"}},
		{"gRPC port busy", []string{"--addr", busy.Addr().String(), "--metrics-addr", ""},
			[]string{"listen for gRPC on " + busy.Addr().String()}},
		{"HTTP port busy", []string{"--addr", "127.0.0.1:0", "--metrics-addr", "", "--http-addr", busy.Addr().String()},
			[]string{"listen for HTTP/JSON on " + busy.Addr().String()}},
		{"TLS files missing", []string{"--addr", "127.0.0.1:0", "--metrics-addr", "", "--tls-cert", filepath.Join(dir, "no.pem"), "--tls-key", filepath.Join(dir, "no-key.pem")},
			[]string{"TLS certificate", "no.pem"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan result, 1)
			go func() {
				done <- quiver(t, onnxEnv(), append([]string{"-C", dir, "serve", "--preload-models=false"}, tc.args...)...)
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("quiver serve hangs instead of failing")
			}
			require.NotEqual(t, exitOK, r.code, r.stderr)
			for _, w := range tc.want {
				require.Contains(t, r.stderr, w)
			}
		})
	}
}

// TestServePreloadModels: with models opened at startup (the default), a model whose file is
// missing stops `quiver serve` with the model named; a model with nothing to serve yet (the
// scaffold's, before training) does not.
func TestServePreloadModels(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)

	h, r := serveUntilHealthy(t, dir, onnxEnv())
	require.Equal(t, exitOK, h.code, h.stderr+r.stderr)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, "model has no version to serve")

	churn := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(churn)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(churn, []byte(strings.Replace(string(b), "    runtime: onnx\n", "    runtime: onnx\n    path: models/missing.onnx\n", 1)), 0o644))
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	r = quiver(t, onnxEnv(), "-C", dir, "serve", "--addr", "127.0.0.1:0", "--metrics-addr", "")
	require.NotEqual(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, `open model "churn"`)
}

// onnxEnv passes the ONNX Runtime library make test installs: quiver serve checks at start that
// the runtimes its models need can be loaded.
func onnxEnv() map[string]string {
	return map[string]string{"QUIVER_ONNXRUNTIME_LIB": os.Getenv("QUIVER_ONNXRUNTIME_LIB")}
}
