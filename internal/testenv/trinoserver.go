package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/trinodb/trino-go-client/trino" // registers the "trino" database/sql driver
)

// Trino test server: Trino 483 assembled from Maven Central parts by scripts/trino.sh (lib/,
// plugin/iceberg, plugin/memory, launcher/). QUIVER_TRINO_HOME names the install directory;
// unset, the helper runs the script. It needs Java 25: QUIVER_TRINO_JAVA_HOME, default
// /usr/lib/jvm/temurin-25-jdk-amd64.
const (
	trinoHomeEnv      = "QUIVER_TRINO_HOME"
	trinoJavaEnv      = "QUIVER_TRINO_JAVA_HOME"
	trinoScript       = "trino.sh"
	trinoDefaultJava  = "/usr/lib/jvm/temurin-25-jdk-amd64"
	trinoDefaultHeap  = "1G"
	trinoStartTimeout = 4 * time.Minute
	trinoUser         = "quiver-test"
)

// QuiverCatalogName is the catalog name Quiver's Iceberg SQL catalog writes in every row of the
// iceberg_tables table (offline/iceberg.DefaultCatalogName, which this package cannot import);
// a Trino JDBC catalog with the same iceberg.jdbc-catalog.catalog-name sees the same tables.
const QuiverCatalogName = "quiver"

// TrinoCatalog is one catalog properties file, etc/catalog/NAME.properties.
type TrinoCatalog struct {
	// Name is the catalog's name in SQL (catalog.schema.table).
	Name string
	// Properties are the file's keys and values; "connector.name" is required.
	Properties map[string]string
}

// TrinoOptions configure a Trino server. The zero value is a server with no catalogs but
// Trino's system catalog, a 1 GiB heap.
type TrinoOptions struct {
	// Catalogs are written to etc/catalog before the server starts.
	Catalogs []TrinoCatalog
	// Heap is the JVM's maximum heap (-Xmx), e.g. "768M"; empty means 1G.
	Heap string
	// Config are extra etc/config.properties entries; they replace the defaults of the same key.
	Config map[string]string
	// JVMOptions are added after the default JVM options (a later -XX option wins, e.g.
	// -XX:TieredStopAtLevel=4 for full JIT compilation in a benchmark).
	JVMOptions []string
	// Coordinator, when set, starts a worker that joins the coordinator at this URL instead of
	// a coordinator (StartTrinoWorker).
	Coordinator string
}

// TrinoServer is a throwaway Trino server: one coordinator that is also its only worker, on a
// free loopback port, its configuration, data and log in a temporary directory. Catalogs are
// dynamic (catalog.management=dynamic), so AddCatalog can add one to a running server.
type TrinoServer struct {
	// URL is the server's HTTP address, e.g. "http://127.0.0.1:41234".
	URL string `json:"url"`
	// Dir is the server's directory: etc/ (config.properties, catalog/), data/, the server's log
	// trino-server.log and the JVM's output trino.log.
	Dir string `json:"dir"`

	proc *process
}

// StartTrinoServer starts Trino with the catalogs of o on a free loopback port in a temporary
// directory, waits until it runs SELECT 1 and system.runtime.nodes lists it active, and stops it
// when t cleans up. It fails t naming what is missing (the install, Java 25) or the server's
// log when it does not start.
func StartTrinoServer(t TB, o TrinoOptions) *TrinoServer {
	t.Helper()
	s, err := startTrinoServer(t.TempDir(), o, false)
	if err != nil {
		t.Fatalf("start trino: %v", err)
	}
	t.Cleanup(s.proc.stop)
	t.Logf("trino listening on %s (dir %s)", s.URL, s.Dir)
	return s
}

// SharedTrinoServer returns the Trino server shared by the test run (see RunDirEnv) or, without
// a run directory, by this test binary (started on first use, stopped when t, normally
// TestMain's MainTB, cleans up). It has no catalogs of its own: tests add theirs with
// AddCatalog, which names them uniquely.
func SharedTrinoServer(t TB) *TrinoServer {
	t.Helper()
	return sharedServer(t, "trino", "trino", func(t TB) *TrinoServer { return StartTrinoServer(t, TrinoOptions{}) }, func(dir string) (*TrinoServer, *process, error) {
		s, err := startTrinoServer(dir, TrinoOptions{}, true)
		if err != nil {
			return nil, nil, err
		}
		return s, s.proc, nil
	}, func(s *TrinoServer) string { return fmt.Sprintf("%s (dir %s)", s.URL, s.Dir) })
}

func startTrinoServer(dir string, o TrinoOptions, detached bool) (*TrinoServer, error) {
	home, err := installed(trinoHomeEnv, trinoScript)
	if err != nil {
		return nil, err
	}
	javaHome := os.Getenv(trinoJavaEnv)
	if javaHome == "" {
		javaHome = trinoDefaultJava
	}
	java := filepath.Join(javaHome, "bin", "java")
	if fi, err := os.Stat(java); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("trino needs Java 25: no %s (install Temurin 25 at %s or set %s to a Java 25 home)", java, trinoDefaultJava, trinoJavaEnv)
	}
	catalogDir := filepath.Join(dir, "etc", "catalog")
	if err := os.MkdirAll(catalogDir, 0o755); err != nil {
		return nil, err
	}
	for _, c := range o.Catalogs {
		if err := writeTrinoCatalog(catalogDir, c); err != nil {
			return nil, err
		}
	}
	heap := o.Heap
	if heap == "" {
		heap = trinoDefaultHeap
	}
	for attempt := 1; ; attempt++ {
		s, err := tryStartTrino(java, home, heap, dir, o, detached)
		if err == nil || attempt == 3 || !portTaken(err) {
			return s, err
		}
	}
}

func writeTrinoCatalog(dir string, c TrinoCatalog) error {
	if c.Name == "" || strings.ContainsAny(c.Name, "/.\\ ") {
		return fmt.Errorf("trino catalog name %q: want a plain SQL identifier", c.Name)
	}
	if c.Properties["connector.name"] == "" {
		return fmt.Errorf("trino catalog %s: no connector.name property", c.Name)
	}
	return os.WriteFile(filepath.Join(dir, c.Name+".properties"), []byte(propertiesFile(c.Properties)), 0o600)
}

// propertiesFile renders a Java properties file, keys sorted, values escaped.
func propertiesFile(props map[string]string) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	esc := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, esc.Replace(props[k]))
	}
	return b.String()
}

func tryStartTrino(java, home, heap, dir string, o TrinoOptions, detached bool) (*TrinoServer, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	s := &TrinoServer{URL: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir}
	config := map[string]string{
		"coordinator":                        "true",
		"node-scheduler.include-coordinator": "true",
		"http-server.http.port":              strconv.Itoa(port),
		"discovery.uri":                      s.URL,
		"plugin.dir":                         filepath.Join(home, "plugin"),
		"catalog.management":                 "dynamic",
		"catalog.store":                      "file",
		"http-server.log.enabled":            "false",
		"web-ui.enabled":                     "false",
		// A 2-core machine shared with other tests: few threads, small memory pools.
		"task.concurrency":          "2",
		"task.max-worker-threads":   "4",
		"query.max-memory":          "256MB",
		"query.max-memory-per-node": "256MB",
	}
	if o.Coordinator != "" { // a worker: it runs the tasks the coordinator sends it
		config["coordinator"] = "false"
		config["discovery.uri"] = o.Coordinator
		delete(config, "node-scheduler.include-coordinator")
		delete(config, "web-ui.enabled")
		delete(config, "catalog.store") // the coordinator sends a worker the catalogs it needs
	}
	for k, v := range o.Config {
		config[k] = v
	}
	configPath := filepath.Join(dir, "etc", "config.properties")
	if err := os.WriteFile(configPath, []byte(propertiesFile(config)), 0o644); err != nil {
		return nil, err
	}
	// The file catalog store reads its own settings from etc/catalog-store.properties in the
	// working directory; CREATE CATALOG writes NAME.properties into its directory.
	store := "catalog.config-dir=" + filepath.Join(dir, "etc", "catalog") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "etc", "catalog-store.properties"), []byte(store), 0o644); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	args := []string{
		"-Xmx" + heap,
		"-XX:+UseSerialGC",
		"-XX:TieredStopAtLevel=1",
		"-XX:+ExitOnOutOfMemoryError",
		"-XX:-OmitStackTraceInFastThrow",
		"-XX:+EnableDynamicAgentLoading",
		"--add-modules=jdk.incubator.vector",
		"--enable-native-access=ALL-UNNAMED",
		"-Djdk.attach.allowAttachSelf=true",
		"-Dfile.encoding=UTF-8",
		"-Dconfig=" + configPath,
		"-Dnode.environment=quiver_test",
		"-Dnode.id=quiver-test-" + strconv.Itoa(port),
		"-Dnode.data-dir=" + data,
		"-Dnode.bind-ip=127.0.0.1",
		"-Dnode.internal-address=127.0.0.1",
		"-Dlog.path=" + filepath.Join(dir, "trino-server.log"),
		"-cp", filepath.Join(home, "lib", "*") + string(os.PathListSeparator) + filepath.Join(home, "launcher"),
	}
	args = append(args, o.JVMOptions...)
	args = append(args, "QuiverTrinoServer")
	p, err := startProcess("trino", java, args, processOptions{
		Dir: dir, Log: filepath.Join(dir, "trino.log"), Detached: detached,
		ServerLogs: []string{filepath.Join(dir, "trino-server.log")},
	})
	if err != nil {
		return nil, err
	}
	s.proc = p
	ready := s.probe
	if o.Coordinator != "" {
		ready = func() error { return s.probeWorker(o.Coordinator, "quiver-test-"+strconv.Itoa(port)) }
	}
	if err := waitReady(p, trinoStartTimeout, ready); err != nil {
		p.stop()
		return nil, err
	}
	// A catalog that fails to load does not stop a server with dynamic catalogs: it is disabled,
	// and queries fail later with a vaguer message. Fail now, with the reason from the log.
	for _, c := range o.Catalogs {
		if err := s.checkCatalog(c.Name); err != nil {
			p.stop()
			return nil, err
		}
	}
	return s, nil
}

// checkCatalog lists the schemas of catalog name, and when that fails returns the error with
// the server log's account of the catalog's failure.
func (s *TrinoServer) checkCatalog(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := sql.Open("trino", s.DSN("", ""))
	if err != nil {
		return err
	}
	defer closeTrinoDB(db)
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM "+name+".information_schema.schemata").Scan(&n)
	if err == nil {
		return nil
	}
	why := ""
	if b, rerr := os.ReadFile(filepath.Join(s.Dir, "trino-server.log")); rerr == nil {
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			if strings.Contains(l, "Failed to load catalog "+name+" ") {
				why = "\n" + strings.Join(lines[i:min(i+15, len(lines))], "\n")
				break
			}
		}
	}
	return fmt.Errorf("trino catalog %s did not load: %w%s", name, err, why)
}

// started checks that the server answers GET /v1/info and is no longer starting.
func (s *TrinoServer) started(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/v1/info", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	var info struct {
		Starting bool `json:"starting"`
	}
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("GET /v1/info: %w", err)
	}
	if info.Starting {
		return fmt.Errorf("GET /v1/info: still starting")
	}
	return nil
}

// probe checks that the server has finished starting, runs SELECT 1, and lists itself as an
// active node.
func (s *TrinoServer) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.started(ctx); err != nil {
		return err
	}
	db, err := sql.Open("trino", s.DSN("system", "runtime"))
	if err != nil {
		return err
	}
	defer closeTrinoDB(db)
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("SELECT 1: %w", err)
	}
	var active int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active'").Scan(&active); err != nil {
		return fmt.Errorf("system.runtime.nodes: %w", err)
	}
	if active < 1 {
		return fmt.Errorf("system.runtime.nodes lists no active node")
	}
	return nil
}

// StartTrinoWorker starts a second Trino process, a worker with its own node id, port and
// data directory, that joins coordinator, and waits until the coordinator lists it active in
// system.runtime.nodes. It stops when t cleans up. The coordinator keeps scheduling work on
// itself too (node-scheduler.include-coordinator), so queries run on both processes.
func StartTrinoWorker(t TB, coordinator *TrinoServer, o TrinoOptions) *TrinoServer {
	t.Helper()
	o.Coordinator = coordinator.URL
	s, err := startTrinoServer(t.TempDir(), o, false)
	if err != nil {
		t.Fatalf("start trino worker: %v", err)
	}
	t.Cleanup(s.proc.stop)
	t.Logf("trino worker on %s joined %s (dir %s)", s.URL, coordinator.URL, s.Dir)
	return s
}

// probeWorker checks that a worker has started and that the coordinator lists it (node id)
// as active.
func (s *TrinoServer) probeWorker(coordinator, nodeID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.started(ctx); err != nil {
		return err
	}
	c := &TrinoServer{URL: coordinator}
	db, err := sql.Open("trino", c.DSN("system", "runtime"))
	if err != nil {
		return err
	}
	defer closeTrinoDB(db)
	var active int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM system.runtime.nodes WHERE state = 'active' AND node_id = ?", nodeID).Scan(&active); err != nil {
		return fmt.Errorf("system.runtime.nodes: %w", err)
	}
	if active != 1 {
		return fmt.Errorf("the coordinator does not list worker %s as active yet", nodeID)
	}
	return nil
}

// Kill ends the server with SIGKILL at once (its whole process group: a crash, not a
// shutdown) and waits for it to exit; the cleanup that would stop it then does nothing. For
// tests of what a client does when Trino dies mid-query.
func (s *TrinoServer) Kill() {
	if s.proc != nil {
		s.proc.kill()
	}
}

// DSN is the trino-go-client data source name for the server with a default catalog and
// schema (either may be empty).
func (s *TrinoServer) DSN(catalog, schema string) string {
	u, _ := url.Parse(s.URL)
	u.User = url.User(trinoUser)
	q := url.Values{}
	if catalog != "" {
		q.Set("catalog", catalog)
	}
	if schema != "" {
		q.Set("schema", schema)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// DB opens a database/sql handle on the server (trino-go-client) with a default catalog and
// schema; it is closed when t cleans up.
func (s *TrinoServer) DB(t TB, catalog, schema string) *sql.DB {
	t.Helper()
	db, err := sql.Open("trino", s.DSN(catalog, schema))
	if err != nil {
		t.Fatalf("open trino %s: %v", s.URL, err)
	}
	t.Cleanup(func() { closeTrinoDB(db) })
	return db
}

var catalogSeq atomic.Int64

// AddCatalog creates catalog c on the running server (CREATE CATALOG) under a unique name, c.Name
// followed by a suffix, returns that name, and drops the catalog when t cleans up. Tests sharing
// one server use it to point Trino at their own databases and warehouses.
func (s *TrinoServer) AddCatalog(t TB, c TrinoCatalog) string {
	t.Helper()
	connector := c.Properties["connector.name"]
	if connector == "" {
		t.Fatalf("trino catalog %s: no connector.name property", c.Name)
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("%s_%d_%s", c.Name, catalogSeq.Add(1), hex.EncodeToString(rnd[:]))
	keys := make([]string, 0, len(c.Properties))
	for k := range c.Properties {
		if k != "connector.name" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	props := make([]string, len(keys))
	for i, k := range keys {
		props[i] = fmt.Sprintf(`"%s" = '%s'`, k, strings.ReplaceAll(c.Properties[k], "'", "''"))
	}
	stmt := fmt.Sprintf("CREATE CATALOG %s USING %s", name, connector)
	if len(props) > 0 {
		stmt += " WITH (" + strings.Join(props, ", ") + ")"
	}
	db, err := sql.Open("trino", s.DSN("", ""))
	if err != nil {
		t.Fatalf("open trino %s: %v", s.URL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		closeTrinoDB(db)
		t.Fatalf("create trino catalog %s (%s): %v", name, connector, err)
	}
	t.Cleanup(func() {
		defer closeTrinoDB(db)
		if s.proc != nil && s.proc.exited() != nil {
			return // killed (Kill) or crashed: the catalog went with it
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP CATALOG IF EXISTS "+name); err != nil {
			t.Logf("drop trino catalog %s: %v", name, err)
		}
	})
	return name
}

// MemoryCatalog is a catalog of Trino's memory connector: tables held in the server's memory,
// a source catalog for tests.
func MemoryCatalog(name string) TrinoCatalog {
	return TrinoCatalog{Name: name, Properties: map[string]string{"connector.name": "memory"}}
}

// IcebergJDBCCatalog is an Iceberg catalog kept in the PostgreSQL database at postgresURL
// (postgres://user[:password]@host:port/db) under QuiverCatalogName, the same rows Quiver's
// Iceberg SQL catalog reads and writes, with new tables under warehouse. A local warehouse (an
// absolute path or file:// URL) is read and written through Trino's local file system; for an
// s3:// warehouse add the S3 server's TrinoProperties.
func IcebergJDBCCatalog(name, postgresURL, warehouse string) (TrinoCatalog, error) {
	u, err := url.Parse(postgresURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return TrinoCatalog{}, fmt.Errorf("iceberg jdbc catalog %s: want a postgres://user@host:port/db URL", name)
	}
	props := map[string]string{
		"connector.name":                             "iceberg",
		"iceberg.catalog.type":                       "jdbc",
		"iceberg.jdbc-catalog.catalog-name":          QuiverCatalogName,
		"iceberg.jdbc-catalog.driver-class":          "org.postgresql.Driver",
		"iceberg.jdbc-catalog.connection-url":        "jdbc:postgresql://" + u.Host + u.Path,
		"iceberg.jdbc-catalog.connection-user":       u.User.Username(),
		"iceberg.jdbc-catalog.default-warehouse-dir": warehouse,
	}
	if pw, ok := u.User.Password(); ok {
		props["iceberg.jdbc-catalog.connection-password"] = pw
	}
	switch {
	case strings.HasPrefix(warehouse, "/"):
		props["iceberg.jdbc-catalog.default-warehouse-dir"] = (&url.URL{Scheme: "file", Path: warehouse}).String()
		fallthrough
	case strings.HasPrefix(warehouse, "file:"):
		// Trino's local file system resolves file:///a/b against local.location.
		props["fs.native-local.enabled"] = "true"
		props["local.location"] = "/"
	}
	return TrinoCatalog{Name: name, Properties: props}, nil
}

// closeTrinoDB closes a trino-go-client handle and the idle keep-alive connections of the
// HTTP client the driver uses (http.DefaultClient), whose reader goroutines would otherwise
// outlive the test (goleak).
func closeTrinoDB(db *sql.DB) {
	_ = db.Close()
	http.DefaultClient.CloseIdleConnections()
}
