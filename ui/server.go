// Package ui is Quiver's read-only web UI (quiver ui): a catalog of a project's definitions,
// and pages for feature views, datasets, training runs and models, rendered on the server
// from the registry with html/template. Charts and the lineage graph are SVG drawn on the
// server, so every page works without JavaScript and every asset is embedded in the binary.
//
// Every page has a stable URL (see Routes); every list is paged and sorted on the server.
package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Registry is what the UI reads: definitions, materialization runs and watermarks, datasets,
// training runs, models, and the paged queries of registry.BrowseStore. It never writes.
type Registry interface {
	registry.DefinitionReader
	registry.BrowseStore
	ListRuns(ctx context.Context, filter registry.RunFilter) ([]registry.MaterializationRun, error)
	Watermark(ctx context.Context, project, view string) (registry.Watermark, error)
	GetDataset(ctx context.Context, project, name string, version int) (registry.Dataset, error)
	ListDatasets(ctx context.Context, project, name string) ([]registry.Dataset, error)
	GetTrainingRun(ctx context.Context, id registry.TrainingRunID) (registry.TrainingRun, error)
	RunParams(ctx context.Context, id registry.TrainingRunID) (map[string]string, error)
	RunTags(ctx context.Context, id registry.TrainingRunID) (map[string]string, error)
	GetModelVersion(ctx context.Context, project, name string, version int) (registry.ModelVersion, error)
	ListModelVersions(ctx context.Context, project, name string) ([]registry.ModelVersion, error)
	ResolveModelAlias(ctx context.Context, project, name, alias string) (registry.ModelVersion, error)
	ListModelAliases(ctx context.Context, project, name string) ([]registry.ModelAlias, error)
	ModelVersionsTrainedOn(ctx context.Context, project, datasetName string, datasetVersion int) ([]registry.ModelVersion, error)
}

// Options configure a Server. Project and Registry are required.
type Options struct {
	Project  string
	Registry Registry
	// Warehouse is the local warehouse directory dataset snapshots are read from for their
	// column statistics. Empty, or a remote URL: statistics are not shown.
	Warehouse string
	// MaxStatsRows is the largest snapshot, in rows, whose column statistics a page computes
	// (once; they are then kept in memory). Default 2,000,000; larger snapshots show none.
	MaxStatsRows int64
	// Guard, when set, authenticates every request but OpenPaths (HTTPMiddleware, built
	// with auth.Options{Resources: Resources, OpenHTTPPaths: OpenPaths}) and authorizes it for
	// the project. Nil: no authentication.
	Guard *auth.Guard
	// SignIn configures the sign-in pages a Guard brings: the session lifetime and key, and
	// OpenID Connect (auth.Config.UI, the serving.ui section). Unused without a Guard.
	SignIn auth.UIConfig
	// HTTPClient talks to the OpenID Connect provider. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives one line per failed request. Default: discard.
	Logger *slog.Logger
	// Now is the clock ages are measured with. Default time.Now.
	Now func() time.Time
}

// UIMethod is the method name the UI's requests are authorized as (auth.Guard.Authorize).
const UIMethod = "/quiver.ui/Browse"

// Resources is the auth.ResourcesFunc of the UI: every page needs the project's ui grant
// (auth.KindUI), which a project grant also gives. Pages that show feature values (dataset
// column statistics) check the value grants themselves and hide what is not granted.
func Resources(project, _ string, _ any) []auth.Resource {
	return []auth.Resource{{Kind: auth.KindUI, Project: project}}
}

// OpenPaths are served without credentials (auth.Options.OpenHTTPPaths): the health check and
// the stylesheet. A path ending in "/" opens everything under it. The sign-in pages are open
// too, but served by the UI's own handler.
var OpenPaths = []string{"/healthz", "/static/"}

func isOpen(path string) bool {
	for _, p := range OpenPaths {
		if path == p || (strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) {
			return true
		}
	}
	return false
}

// PageSize is the number of rows of each list page.
const PageSize = 50

// Server serves the UI. It is an http.Handler, safe for concurrent use.
type Server struct {
	opts     Options
	pages    map[string]*template.Template
	handler  http.Handler
	stats    *statsCache
	catalogC catalogCache
	signin   *signIn // nil without a Guard
}

// New builds a Server; it parses the embedded templates.
func New(opts Options) (*Server, error) {
	if opts.Project == "" || opts.Registry == nil {
		return nil, errors.New("ui: a project and a registry are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxStatsRows <= 0 {
		opts.MaxStatsRows = 2_000_000
	}
	s := &Server{opts: opts, pages: map[string]*template.Template{}, stats: newStatsCache(64)}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("ui: parse %s: %w", n, err)
		}
		s.pages[base] = t
	}
	if opts.Guard != nil {
		if s.signin, err = newSignIn(opts); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", noDirectories(static, http.FileServerFS(static))))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok\n") })
	mux.HandleFunc("GET /{$}", s.wrap(s.catalog))
	mux.HandleFunc("GET /views/{name}", s.wrap(s.featureView))
	mux.HandleFunc("GET /objects/{kind}/{name}", s.wrap(s.object))
	mux.HandleFunc("GET /datasets", s.wrap(s.datasets))
	mux.HandleFunc("GET /datasets/{name}", s.wrap(s.datasetVersions))
	mux.HandleFunc("GET /datasets/{name}/v/{version}", s.wrap(s.dataset))
	mux.HandleFunc("GET /datasets/{name}/diff", s.wrap(s.datasetDiff))
	mux.HandleFunc("GET /runs", s.wrap(s.runs))
	mux.HandleFunc("GET /runs/compare", s.wrap(s.compareRuns))
	mux.HandleFunc("GET /runs/{id}", s.wrap(s.run))
	mux.HandleFunc("GET /models", s.wrap(s.models))
	mux.HandleFunc("GET /models/{name}", s.wrap(s.model))
	mux.HandleFunc("GET /models/{name}/v/{version}", s.wrap(s.modelVersion))
	mux.HandleFunc("/", s.wrap(func(*http.Request) (*page, error) {
		return nil, notFoundf("no such page")
	}))
	var h http.Handler = mux
	if s.opts.Guard != nil {
		h = s.guarded(mux, s.signInPages())
	}
	return headers(h)
}

// noDirectories answers 404 for a path of fsys that is not a file — a directory, which next
// would list, or any path ending in "/" — and hands files to next.
func noDirectories(fsys fs.FS, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path
		if name == "" || strings.HasSuffix(name, "/") {
			http.NotFound(w, r)
			return
		}
		if fi, err := fs.Stat(fsys, name); err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headers sets the headers of every response: no framing, no sniffing, nothing loaded from
// elsewhere.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// page is what a handler renders: a template and its data.
type page struct {
	Template string
	Title    string
	Nav      string // the navigation entry to mark current: catalog, datasets, runs, models
	Crumbs   []crumb
	Data     any
	// Bare leaves the navigation and search out (the sign-in page).
	Bare bool
	// filled by render
	Project string
	Status  int
	// User is who the request is signed in as (with a Guard); SignOutCSRF, set for a
	// signed-in session, puts the Sign out button in the header.
	User        string
	SignOutCSRF string
}

type crumb struct{ Label, URL string }

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func notFoundf(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func badRequestf(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (s *Server) wrap(h func(*http.Request) (*page, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h(r)
		if err != nil {
			p = s.errorPage(r, err)
		}
		s.render(w, r, p)
	}
}

func (s *Server) errorPage(r *http.Request, err error) *page {
	status := http.StatusInternalServerError
	msg := "internal error; the server log has the cause"
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.Is(err, registry.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, registry.ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, context.Canceled):
		status, msg = 499, "request cancelled"
	default:
		s.opts.Logger.Error("ui request failed", "path", r.URL.Path, "err", err)
	}
	return &page{Template: "error", Title: http.StatusText(status), Status: status, Data: msg}
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, p *page) {
	t := s.pages[p.Template]
	if t == nil {
		http.Error(w, "no template "+p.Template, http.StatusInternalServerError)
		return
	}
	p.Project = s.opts.Project
	if pr := auth.FromContext(r.Context()); pr != nil && !p.Bare {
		p.User = pr.String()
		if sess := sessionFrom(r.Context()); sess != nil {
			p.SignOutCSRF = s.signin.seal.csrf("signout", sess.ID)
		}
	}
	if p.Status == 0 {
		p.Status = http.StatusOK
	}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		s.opts.Logger.Error("ui render failed", "template", p.Template, "err", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.Status)
	fmt.Fprint(w, b.String())
}

// pager is the paging state of a list.
type pager struct {
	Page, Pages int
	Total       int64
	From, To    int64 // 1-based rows shown
	Prev, Next  string
}

// MaxPage is the largest page number a list answers (50 million rows in): a larger one is a
// bad request, like page 0, so that no offset overflows.
const MaxPage = 1_000_000

// paginate reads ?page= (1-based, at most MaxPage) and returns the offset of that page and
// its pager. A page past the end of the list is empty.
func paginate(r *http.Request, total int64, size int) (int, pager, error) {
	n := 1
	if v := r.URL.Query().Get("page"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > MaxPage {
			return 0, pager{}, badRequestf("page %q: want a page number from 1 to %d", v, MaxPage)
		}
	}
	pages := int((total + int64(size) - 1) / int64(size))
	p := pager{Page: n, Pages: max(pages, 1), Total: total}
	off := (n - 1) * size
	p.From, p.To = min(int64(off)+1, total), min(int64(off+size), total)
	if n > 1 {
		p.Prev = withQuery(r.URL, "page", strconv.Itoa(min(n-1, p.Pages)))
	}
	if n < pages {
		p.Next = withQuery(r.URL, "page", strconv.Itoa(n+1))
	}
	return off, p, nil
}

// withQuery is u's path and query with key set to value (removed when value is empty).
func withQuery(u *url.URL, key, value string) string {
	q := u.Query()
	if value == "" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	if key != "page" {
		q.Del("page")
	}
	if len(q) == 0 {
		return u.Path
	}
	return u.Path + "?" + q.Encode()
}

// sortLink is a column header that sorts by key.
type sortLink struct {
	Label, URL string
	Current    bool
}

func sortLinks(u *url.URL, current string, cols ...[2]string) []sortLink {
	var out []sortLink
	for _, c := range cols {
		out = append(out, sortLink{Label: c[0], URL: withQuery(u, "sort", c[1]), Current: c[1] == current})
	}
	return out
}

func kindPath(k definitions.Kind, name string) string {
	if k == definitions.KindFeatureView {
		return "/views/" + url.PathEscape(name)
	}
	return "/objects/" + string(k) + "/" + url.PathEscape(name)
}

var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"kindPath": kindPath,
	"label":    func(k definitions.Kind) string { return k.Label() },
	"path":     url.PathEscape,
	"query":    url.QueryEscape,
	"num":      formatFloat,
	"pct":      pct,
	"short": func(s string) string {
		if len(s) > 19 {
			return s[:19] + "…"
		}
		return s
	},
	"add": func(a, b int) int { return a + b },
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', 6, 64)
}

// Listen binds addr, returning the listener and the URL to open.
func Listen(addr string) (net.Listener, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("ui: listen on %s: %w", addr, err)
	}
	return ln, "http://" + ln.Addr().String() + "/", nil
}

// Serve serves h on ln until ctx is done, then shuts down, waiting up to 5s for requests
// in flight.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serveErr := <-errc; err == nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = serveErr
	}
	return err
}

// IsLoopback reports whether a listen address only binds loopback interfaces.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func pathEscape(s string) string  { return url.PathEscape(s) }
func queryEscape(s string) string { return url.QueryEscape(s) }
