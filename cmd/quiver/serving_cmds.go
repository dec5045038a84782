package main

// The serving commands: serve, serve-model, get-online, predict and health. They parse flags
// and call project (serve, a local get-online) or a quiver serve (the rest).

import (
	"context"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/internal/bytesize"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/project"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/client"
	"github.com/quiverfs/quiver/serving/model/oip"
	"github.com/quiverfs/quiver/serving/model/onnx"
)

// onnxFlags are the ONNX Runtime flags shared by serve and serve-model.
type onnxFlags struct {
	lib      string
	sessions int
	cuda     bool
	device   int
}

func (a *app) addONNXFlags(cmd *cobra.Command, f *onnxFlags) {
	cmd.Flags().StringVar(&f.lib, "onnxruntime-lib", a.getenv("QUIVER_ONNXRUNTIME_LIB"), "path of libonnxruntime.so (scripts/onnxruntime.sh installs it); default $QUIVER_ONNXRUNTIME_LIB")
	cmd.Flags().IntVar(&f.sessions, "onnx-sessions", 0, "ONNX Runtime sessions per model (default: the number of CPUs)")
	cmd.Flags().BoolVar(&f.cuda, "cuda", false, "run ONNX models on the GPU (CUDA execution provider; needs a GPU build of ONNX Runtime)")
	cmd.Flags().IntVar(&f.device, "cuda-device", 0, "GPU to use with --cuda")
}

func (f onnxFlags) options() onnx.Options {
	return onnx.Options{LibraryPath: f.lib, Sessions: f.sessions, CUDA: f.cuda, DeviceID: f.device}
}

func (a *app) serveCommand() *cobra.Command {
	var (
		opts project.ServeOptions
		ox   onnxFlags
		gogc int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve online features and predictions over gRPC",
		Long: `Serve GetOnlineFeatures and Predict (quiver.serving.v1.FeatureServing) over gRPC — and over
HTTP/JSON with --http-addr — with grpc.health.v1 health checking, server reflection and
Prometheus metrics. Definitions are read from the registry and reloaded when a new version is
applied. A server that cannot start (an address in use, unreadable TLS files, a registry that
does not answer, a model that cannot be opened) exits at once with the cause. See
docs/serving.md.

Authentication (mTLS, JWT bearer tokens, API tokens) and the policy granting callers
projects, feature services, views and models are configured in the serving: section of
quiver.yaml; without authentication the server listens on loopback addresses only unless
--allow-unauthenticated is given. /metrics is never authenticated: a non-loopback
--metrics-addr needs --allow-unauthenticated-metrics. --health-addr serves health alone, in
plain HTTP, for probes that cannot present a client certificate. See docs/security.md.`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, _ []string) error {
		if a.getenv("GOGC") == "" && gogc != 0 {
			defer debug.SetGCPercent(debug.SetGCPercent(gogc))
		}
		opts.ONNX = ox.options()
		return p.Serve(ctx, opts) // returns after graceful shutdown on SIGINT/SIGTERM
	})
	f, so := cmd.Flags(), &opts.Server
	f.StringVar(&so.Addr, "addr", serving.DefaultAddr, "gRPC listen address HOST:PORT")
	f.StringVar(&so.MetricsAddr, "metrics-addr", "127.0.0.1:9464", "Prometheus /metrics listen address HOST:PORT (empty: none); never authenticated, so loopback only unless --allow-unauthenticated-metrics")
	f.BoolVar(&so.AllowUnauthenticatedMetrics, "allow-unauthenticated-metrics", false, "serve /metrics on a non-loopback --metrics-addr (anyone who reaches it reads the server's metrics)")
	f.StringVar(&so.HealthAddr, "health-addr", "", "plain-HTTP health listen address HOST:PORT (GET /healthz; no TLS, no credentials, health only) for probes that cannot present a client certificate (empty: none)")
	f.StringVar(&so.HTTPAddr, "http-addr", "", "HTTP/JSON API listen address HOST:PORT (empty: none); see docs/serving.md")
	f.BoolVar(&so.PreloadModels, "preload-models", true, "open every model at startup and refuse to start when one cannot be opened (false: open each on its first request)")
	f.DurationVar(&so.StartupTimeout, "startup-timeout", serving.DefaultStartupTimeout, "give up starting when the registry or a model takes longer than this")
	f.StringVar(&so.TLSCertFile, "tls-cert", "", "TLS certificate file (PEM); with --tls-key, serve TLS")
	f.StringVar(&so.TLSKeyFile, "tls-key", "", "TLS private key file (PEM)")
	f.StringVar(&opts.ClientCA, "tls-client-ca", "", "CA certificates (PEM) client certificates must chain to: require mTLS (overrides serving.tls.client_ca)")
	f.BoolVar(&so.AllowUnauthenticated, "allow-unauthenticated", false, "serve without authentication on a non-loopback address (anyone who reaches it reads every feature and model)")
	f.DurationVar(&so.RefreshInterval, "refresh", serving.DefaultRefreshInterval, "how often to check the registry for new definitions")
	f.IntVar(&so.MaxEntityRows, "max-entity-rows", serving.DefaultMaxEntityRows, "most entity rows per request")
	f.Var(bytesize.NewIntValue(&so.MaxRecvMsgBytes, serving.DefaultMaxRecvMsgBytes), "max-recv-bytes", "largest request, a gRPC message or an HTTP/JSON body alike, e.g. 4MiB")
	f.Var(bytesize.NewIntValue(&so.MaxInflightRequestBytes, 0), "max-inflight-request-bytes", "most bytes of large requests (64KiB or more) decoded and served at once; others wait within their deadline (default 4 × --max-recv-bytes)")
	f.DurationVar(&so.RequestTimeout, "request-timeout", serving.DefaultRequestTimeout, "deadline for requests that come without one")
	f.DurationVar(&so.ShutdownTimeout, "shutdown-timeout", serving.DefaultShutdownTimeout, "how long to drain in-flight calls on shutdown")
	f.IntVar(&gogc, "gogc", 400, "the Go garbage collector's GOGC for this server: its live heap is small, and collecting it less often than Go's default (100) took 5-20% off the server CPU per call in docs/BENCHMARKS.md; 0 leaves Go's setting; the GOGC environment variable, when set, wins")
	a.addONNXFlags(cmd, &ox)
	f.BoolVar(&opts.Push.Enabled, "push", true, "accept PushFeatures for the project's push views (false: refuse them)")
	f.StringVar(&opts.Push.LogDir, "push-log", "", "directory of the push write-ahead log, on a local disk (default: .quiver/push-log/PROJECT in the feature repo); one server per directory")
	f.DurationVar(&opts.Push.CommitInterval, "push-commit-interval", ingest.DefaultCommitInterval, "most time an acknowledged push waits before its offline commit")
	return cmd
}

func (a *app) serveModelCommand() *cobra.Command {
	var (
		addr   string
		models []string
		ox     onnxFlags
	)
	cmd := &cobra.Command{
		Use:   "serve-model --model NAME=FILE.onnx [--model ...]",
		Short: "Serve ONNX models over the Open Inference Protocol (KServe v2 gRPC)",
		Long: `Serve ONNX models over the Open Inference Protocol (inference.GRPCInferenceService), the
protocol of Triton, KServe and MLServer, so that a "runtime: oip" model can run on another
machine (a GPU host, say). See docs/serving.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(models) == 0 {
				return usage("serve-model: give at least one --model NAME=FILE.onnx")
			}
			var served []oip.ServedModel
			defer func() {
				for _, m := range served {
					m.Model.Close()
				}
			}()
			for _, spec := range models {
				name, path, ok := strings.Cut(spec, "=")
				if !ok || name == "" || path == "" {
					return usage("--model %q: want NAME=FILE.onnx", spec)
				}
				m, err := onnx.Open(path, ox.options())
				if err != nil {
					return err
				}
				served = append(served, oip.ServedModel{Name: name, Input: "features", Width: m.Inputs(), Outputs: m.Outputs(), Model: m})
			}
			return oip.ListenAndServe(cmd.Context(), addr, a.logger(), served...)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8001", "gRPC listen address HOST:PORT")
	cmd.Flags().StringArrayVar(&models, "model", nil, "a model to serve, NAME=FILE.onnx (repeatable)")
	a.addONNXFlags(cmd, &ox)
	return cmd
}

func (a *app) getOnlineCommand() *cobra.Command {
	var (
		service   string
		features  []string
		entities  []string
		request   []string
		fullNames bool
		remote    remoteFlags
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get-online (--service S | --feature VIEW:FEATURE ...) --entity KEY=VALUE ...",
		Short: "Look up online feature values for entities",
		Long: `Look up the online value, status and event time of each feature of a feature service (or of
the features named) for the entities given. A join key given several times makes several
rows. Reads the online store directly (typing values by the repo's join keys), or asks a
running quiver serve with --server, which needs no feature repo: values are typed by how
they are written (42 int, 0.5 float, true bool, "42" or anything else string). On-demand
features read request fields: give them with --request NAME=VALUE, once per row.`,
		Example: `  quiver get-online --service churn_v1 --entity user_id=42 --entity merchant_id=m3
  quiver get-online --service churn_v2 --entity user_id=42 --request amount=25.5
  quiver get-online --feature user_stats:clicks_7d --entity user_id=42 --entity user_id=43 -o json
  QUIVER_TOKEN=... quiver get-online --server features.internal:6566 --tls-ca ca.pem --service churn_v1 --entity user_id=42`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (service == "") == (len(features) == 0) {
				return usage("get-online: give either --service or --feature")
			}
			if len(entities) == 0 {
				return usage("get-online: give at least one --entity KEY=VALUE")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := serving.FeaturesRequest(service, features, fullNames, request)
			if err != nil {
				return err
			}
			var resp *pb.GetOnlineFeaturesResponse
			if remote.Server != "" {
				if req.Entities, err = serving.ParseUntyped("entity", entities); err != nil {
					return err
				}
				conn, err := a.dial(&remote)
				if err != nil {
					return err
				}
				defer conn.Close()
				if resp, err = pb.NewFeatureServingClient(conn).GetOnlineFeatures(ctx, req); err != nil {
					return statusError(err)
				}
			} else {
				p, err := a.open()
				if err != nil {
					return err
				}
				defer p.Close()
				if resp, err = p.GetOnline(ctx, req, entities); err != nil {
					return err
				}
			}
			if a.jsonOutput() {
				return a.printProto(resp)
			}
			return serving.WriteTable(a.stdout, resp)
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "feature service whose features to look up")
	f.StringArrayVar(&features, "feature", nil, "a feature VIEW:FEATURE or VIEW:* (repeatable)")
	f.StringArrayVar(&entities, "entity", nil, "a join-key value KEY=VALUE (repeatable)")
	f.BoolVar(&fullNames, "full-names", false, "name features VIEW__FEATURE")
	f.StringArrayVar(&request, "request", nil, "a request field value NAME=VALUE for on-demand features, one per row (repeatable); sent as request_context")
	a.addRemoteFlags(cmd, &remote, "ask a running quiver serve at HOST:PORT instead of reading the store (no feature repo needed)")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

func (a *app) predictCommand() *cobra.Command {
	var (
		modelRef string
		entities []string
		request  []string
		remote   remoteFlags
		include  bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "predict --server HOST:PORT --model NAME[@ALIAS|@vN] --entity KEY=VALUE ... [--request NAME=VALUE ...]",
		Short: "Ask a running quiver serve for predictions for entities",
		Long: `Call Predict on a running quiver serve: the server looks up the model's feature service's
features for the entities (one store round trip), feeds them to the model version the
reference resolves to, and returns its outputs. A join key given several times makes several
rows. --request NAME=VALUE sends a request-time value of one of the service's features (one
per row), used instead of the stored one. No feature repo is needed: values are typed by how
they are written (42 int, 0.5 float, true bool, "42" or anything else string).`,
		Example: `  quiver predict --server localhost:6566 --model churn@production --entity user_id=7 --entity user_id=8
  quiver predict --server localhost:6566 --model churn --entity user_id=7 --request spend_30d=12.5 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remote.Server == "" || modelRef == "" || len(entities) == 0 {
				return usage("predict needs --server, --model and at least one --entity KEY=VALUE")
			}
			req, err := serving.PredictRequestOf(modelRef, entities, request, include)
			if err != nil {
				return err
			}
			conn, err := a.dial(&remote)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			resp, err := pb.NewFeatureServingClient(conn).Predict(ctx, req)
			if err != nil {
				return statusError(err)
			}
			if a.jsonOutput() {
				return a.printProto(resp)
			}
			return serving.WritePrediction(a.stdout, resp)
		},
	}
	f := cmd.Flags()
	a.addRemoteFlags(cmd, &remote, "the quiver serve to ask, HOST:PORT")
	f.StringVar(&modelRef, "model", "", "the model: NAME, NAME@ALIAS or NAME@vN")
	f.StringArrayVar(&entities, "entity", nil, "a join-key value KEY=VALUE (repeatable)")
	f.StringArrayVar(&request, "request", nil, "a request field of on-demand features, or a request-time value of a stored feature, NAME=VALUE, one per row (repeatable); sent as request_context")
	f.BoolVar(&include, "include-features", false, "also return the feature values the model was fed (with -o json)")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return cmd
}

// healthJSON is health's -o json result.
type healthJSON struct {
	Server string `json:"server"`
	Status string `json:"status"`
}

func (a *app) healthCommand() *cobra.Command {
	var remote remoteFlags
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "health --server HOST:PORT [--wait D]",
		Short: "Check a quiver serve's grpc.health.v1 status (exit 0 when SERVING, 3 otherwise)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if remote.Server == "" {
				return usage("health needs --server HOST:PORT")
			}
			server := remote.Server
			conn, err := a.dial(&remote)
			if err != nil {
				return err
			}
			defer conn.Close()
			st, err := client.WaitServing(cmd.Context(), conn, wait)
			if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
				return statusError(err)
			} else if err != nil {
				return errkind.Errorf(errkind.Unavailable, "%s: %v", server, status.Convert(err).Message())
			}
			return a.render(healthJSON{Server: server, Status: st.String()}, func() { a.printf("%s: SERVING\n", server) })
		},
	}
	a.addRemoteFlags(cmd, &remote, "the quiver serve to check, HOST:PORT")
	cmd.Flags().DurationVar(&wait, "wait", 0, "keep trying for this long until SERVING")
	return cmd
}
