package serving_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/registry/open"
	"github.com/quiverfs/quiver/serving"
)

// Seen item 1 of issue 12: a server that cannot start must say why — never hang. Each test
// here is one early return of NewServer or Serve; each checks Serve returned (hangGuard) with
// an error naming the cause, and that no goroutine of the server is left behind.

// hangGuard waits for Serve's result; a Serve that never returns fails the test (the bug was
// a process sitting at 0% CPU forever) instead of hanging the suite.
func hangGuard(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return: the server hangs instead of failing")
		return nil
	}
}

// busyPort holds a loopback port for the test and returns its address.
func busyPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String()
}

func serveAsync(srv *serving.Server, ctx context.Context, lis net.Listener) <-chan error {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	return done
}

func runAsync(srv *serving.Server, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	return done
}

func TestStartupFailures(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	cases := []struct {
		name  string
		opts  func(o *serving.Options)
		serve bool     // Serve on a fresh listener instead of Run
		want  []string // substrings of the error
	}{
		{name: "metrics port busy", serve: true,
			opts: func(o *serving.Options) { o.MetricsAddr = busyPort(t) },
			want: []string{"listen for metrics on 127.0.0.1:", "address already in use"}},
		{name: "HTTP port busy", serve: true,
			opts: func(o *serving.Options) { o.HTTPAddr = busyPort(t) },
			want: []string{"listen for HTTP/JSON on 127.0.0.1:", "address already in use"}},
		{name: "gRPC port busy",
			opts: func(o *serving.Options) { o.Addr = busyPort(t) },
			want: []string{"listen for gRPC on 127.0.0.1:", "address already in use"}},
		{name: "gRPC port busy with metrics",
			opts: func(o *serving.Options) { o.Addr = busyPort(t); o.MetricsAddr = "127.0.0.1:0" },
			want: []string{"listen for gRPC on 127.0.0.1:"}},
		{name: "bad gRPC address",
			opts: func(o *serving.Options) { o.Addr = "127.0.0.1:notaport" },
			want: []string{"listen for gRPC on 127.0.0.1:notaport"}},
		{name: "model cannot be opened", serve: true,
			opts: func(o *serving.Options) {
				o.PreloadModels = true
				o.MetricsAddr, o.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
				o.Models = serving.RuntimeOpener{BaseDir: t.TempDir()} // churn.onnx is not there
			},
			want: []string{`open model "churn" version 1 (onnx)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			opts := e.options(t)
			tc.opts(&opts)
			srv, err := serving.NewServer(context.Background(), opts)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel() // only after Serve returned on its own
			var done <-chan error
			if tc.serve {
				lis := mustListen(t)
				done = serveAsync(srv, ctx, lis)
				err = hangGuard(t, done)
				require.Error(t, err)
				// Serve closed the listener it was given.
				_, aerr := lis.Accept()
				require.ErrorIs(t, aerr, net.ErrClosed)
			} else {
				done = runAsync(srv, ctx)
				err = hangGuard(t, done)
				require.Error(t, err)
			}
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// TestNewServerFailures: what NewServer refuses, before anything listens.
func TestNewServerFailures(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	dir := t.TempDir()
	cert, key, _ := selfSigned(t, dir)
	unreadable := filepath.Join(dir, "unreadable.pem")
	require.NoError(t, os.WriteFile(unreadable, []byte("x"), 0o000))
	closedReg, err := open.Open(context.Background(), "sqlite://"+filepath.Join(dir, "closed.db"))
	require.NoError(t, err)
	require.NoError(t, closedReg.Close())

	cases := []struct {
		name string
		opts func(o *serving.Options)
		want []string
	}{
		{"TLS cert missing", func(o *serving.Options) { o.TLSCertFile, o.TLSKeyFile = filepath.Join(dir, "nope.pem"), key },
			[]string{"load TLS key pair", "nope.pem", "no such file"}},
		{"TLS key unreadable", func(o *serving.Options) { o.TLSCertFile, o.TLSKeyFile = cert, unreadable },
			[]string{"load TLS key pair", "unreadable.pem"}},
		{"TLS key not PEM", func(o *serving.Options) { o.TLSCertFile, o.TLSKeyFile = cert, cert },
			[]string{"load TLS key pair"}},
		{"TLS key without cert", func(o *serving.Options) { o.TLSKeyFile = key },
			[]string{"TLS needs both a certificate file and a key file"}},
		{"registry unreachable", func(o *serving.Options) { o.Registry = closedReg },
			[]string{"load definitions of project"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "TLS key unreadable" && os.Geteuid() == 0 {
				// root reads a 0o000 file: make it unreadable by making it a directory.
				require.NoError(t, os.Remove(unreadable))
				require.NoError(t, os.Mkdir(unreadable, 0o700))
			}
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			opts := e.options(t)
			tc.opts(&opts)
			_, err := serving.NewServer(context.Background(), opts)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

// TestServeFailsLater: a server that fails after starting (here its gRPC listener breaks)
// stops every other part and returns the cause.
func TestServeFailsLater(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	opts := e.options(t)
	opts.MetricsAddr, opts.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(t, err)
	lis := &failingListener{Listener: mustListen(t), fail: make(chan struct{})}
	done := serveAsync(srv, context.Background(), lis)
	close(lis.fail)
	err = hangGuard(t, done)
	require.ErrorContains(t, err, "gRPC server on 127.0.0.1:")
	require.ErrorContains(t, err, "listener broke")
}

// TestServeStopsEverything: a clean shutdown returns nil and leaves no goroutine behind, and
// a server serves once.
func TestServeStopsEverything(t *testing.T) {
	e := newEnv(t, redisSrv.Addr)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	opts := e.options(t)
	opts.MetricsAddr, opts.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	polled := &polledRegistry{Reader: opts.Registry, polls: make(chan struct{}, 1)}
	opts.Registry = polled
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(t, err)
	select { // NewServer's own load
	case <-polled.polls:
	default:
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := serveAsync(srv, ctx, mustListen(t))
	select { // the refresh loop ticked
	case <-polled.polls:
	case <-time.After(time.Minute):
		t.Fatal("the refresh loop never polled the registry")
	}
	cancel()
	require.NoError(t, hangGuard(t, done))

	err = srv.Serve(context.Background(), mustListen(t))
	require.ErrorContains(t, err, "called twice")
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return l
}

// failingListener's Accept fails (with a non-temporary error) once fail is closed.
type failingListener struct {
	net.Listener
	fail chan struct{}
}

func (l *failingListener) Accept() (net.Conn, error) {
	<-l.fail
	return nil, errors.New("listener broke")
}

// polledRegistry signals on polls each time the registry revision is read (without blocking:
// one pending signal at most), so a test can wait for the refresh loop's tick.
type polledRegistry struct {
	catalog.Reader
	polls chan struct{}
}

func (r *polledRegistry) CurrentRevision(ctx context.Context, project string) (int64, error) {
	select {
	case r.polls <- struct{}{}:
	default:
	}
	return r.Reader.CurrentRevision(ctx, project)
}
