package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const redisPackage = "redis-server" // the Debian package holding redis-server, redis-cli and redis-benchmark

// redisStartTimeout bounds how long a redis-server may take to answer PING.
const redisStartTimeout = 15 * time.Second

// Redis is a throwaway redis-server on a loopback port, persisting nothing. It is killed when the
// test (or the MainTB) that started it cleans up. Kill, Start, Pause and Resume let a test take
// it down and bring it back on the same port and directory.
type Redis struct {
	// Addr is host:port of the server, e.g. "127.0.0.1:41234".
	Addr string
	// Port is the TCP port of Addr.
	Port int
	// Dir is the server's working directory (its log is Dir/redis.log).
	Dir string

	tb    TB
	bin   string
	extra []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRedis starts a single redis-server on a free loopback port in a temporary directory.
// It fails the test naming the binary and its Debian package when redis-server is missing.
func StartRedis(t TB) *Redis {
	t.Helper()
	r := newRedis(t, nil)
	t.Cleanup(r.Kill)
	r.Start()
	return r
}

func newRedis(t TB, extra []string) *Redis {
	t.Helper()
	bin, err := LookBinary("redis-server", redisPackage)
	if err != nil {
		t.Fatalf("start redis: %v", err)
	}
	port, err := freeRedisPort(extra != nil)
	if err != nil {
		t.Fatalf("start redis: %v", err)
	}
	return &Redis{
		Addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port:  port,
		Dir:   t.TempDir(),
		tb:    t,
		bin:   bin,
		extra: extra,
	}
}

// freeRedisPort finds a free port; for a cluster node the bus port (port+10000) must be free too.
func freeRedisPort(cluster bool) (int, error) {
	for range 50 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		if !cluster {
			return p, nil
		}
		if p+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("find a free loopback port pair for a redis cluster node")
}

// Start starts the server (again) on its port and directory and waits until it answers PING.
// It is a no-op while the server runs.
func (r *Redis) Start() {
	r.tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	args := []string{
		"--port", strconv.Itoa(r.Port),
		"--bind", "127.0.0.1",
		"--dir", r.Dir,
		"--logfile", filepath.Join(r.Dir, "redis.log"),
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--protected-mode", "no",
	}
	args = append(args, r.extra...)
	cmd := exec.Command(r.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server on %s: %v", r.Addr, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.cmd, r.exited = cmd, exited
	if err := waitRedis(r.Addr, exited); err != nil {
		r.killLocked()
		r.tb.Fatalf("start redis-server on %s: %v\n%s", r.Addr, err, redisLogTail(filepath.Join(r.Dir, "redis.log")))
	}
}

// Kill stops the server at once (SIGKILL) and waits for it to exit. It is a no-op when the
// server is not running. The port and directory are kept for a later Start.
func (r *Redis) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killLocked()
}

func (r *Redis) killLocked() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT) // a paused server must still die
	_ = r.cmd.Process.Kill()
	<-r.exited
	r.cmd, r.exited = nil, nil
}

// Pause stops the server process (SIGSTOP) without closing its sockets: clients connect but
// never get an answer, as with a hung server. Resume undoes it.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		_ = r.cmd.Process.Signal(sig)
	}
}

// waitRedis polls addr with PING until it answers PONG, the process exits, or the timeout.
func waitRedis(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(redisStartTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited during start-up")
		default:
		}
		reply, err := redisCommand(addr, "PING")
		if err == nil && strings.HasPrefix(reply, "+PONG") {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("unexpected reply %q", reply)
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no PONG within %s: %w", redisStartTimeout, lastErr)
}

// redisCommand sends one inline command and returns the first reply line, or the whole bulk
// string for a bulk reply.
func redisCommand(addr, command string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, "$") {
		return line, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 0 {
		return line, nil
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(rd, buf); err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func redisLogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "redis log " + path + ":\n" + string(bytes.Join(lines, []byte("\n")))
}

// RedisCluster is a throwaway Redis Cluster of three masters (no replicas) on loopback ports,
// every slot assigned, killed when the test (or the MainTB) that started it cleans up.
type RedisCluster struct {
	// Nodes are the three masters. Kill and Start a node to take it down and bring it back on
	// the same port; it rejoins the cluster from its nodes.conf.
	Nodes []*Redis
}

// Addrs returns the nodes' host:port addresses, the seed list for a cluster client.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// StartRedisCluster starts three redis-server --cluster-enabled yes masters, assigns all slots
// with redis-cli --cluster create, and waits until every node reports cluster_state:ok.
func StartRedisCluster(t TB) *RedisCluster {
	t.Helper()
	cli, err := LookBinary("redis-cli", redisPackage)
	if err != nil {
		t.Fatalf("start redis cluster: %v", err)
	}
	c := &RedisCluster{}
	for range 3 {
		n := newRedis(t, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
			"--cluster-require-full-coverage", "yes",
		})
		t.Cleanup(n.Kill)
		n.Start()
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create %s: %v\n%s", strings.Join(c.Addrs(), " "), err, out)
	}
	if err := c.WaitOK(); err != nil {
		t.Fatalf("start redis cluster: %v", err)
	}
	return c
}

// WaitOK waits until every running node reports cluster_state:ok and knows all three masters.
func (c *RedisCluster) WaitOK() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		bad := ""
		for _, n := range c.Nodes {
			info, err := redisCommand(n.Addr, "CLUSTER INFO")
			if err != nil {
				bad = fmt.Sprintf("%s: %v", n.Addr, err)
				break
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				bad = fmt.Sprintf("%s: cluster not ready: %s", n.Addr, strings.ReplaceAll(strings.TrimSpace(info), "\r\n", " "))
				break
			}
		}
		if bad == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis cluster %s not ok within 30s: %s", strings.Join(c.Addrs(), ","), bad)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MainTB adapts TestMain to TB, so servers can be started once per package:
//
//	func TestMain(m *testing.M) {
//		tb := testenv.NewMainTB("online/redis")
//		srv = testenv.StartRedis(tb)
//		code := m.Run()
//		tb.Close()
//		os.Exit(code)
//	}
//
// Fatalf prints the message, runs the cleanups and exits the process with status 1.
type MainTB struct {
	name string

	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

// NewMainTB returns a TB for TestMain; name prefixes its messages and temporary directories.
func NewMainTB(name string) *MainTB { return &MainTB{name: name} }

// Helper does nothing; it exists to satisfy TB.
func (m *MainTB) Helper() {}

// Logf prints to standard error.
func (m *MainTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, m.name+": "+format+"\n", args...)
}

// Fatalf prints, runs the cleanups and exits with status 1.
func (m *MainTB) Fatalf(format string, args ...any) {
	m.Logf(format, args...)
	m.Close()
	os.Exit(1)
}

// Cleanup registers f to run at Close, last registered first.
func (m *MainTB) Cleanup(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups = append(m.cleanups, f)
}

// TempDir makes a new temporary directory, removed at Close.
func (m *MainTB) TempDir() string {
	prefix := strings.NewReplacer("/", "_", " ", "_").Replace(m.name)
	d, err := os.MkdirTemp("", "quiver-"+prefix+"-")
	if err != nil {
		m.Fatalf("make temp dir: %v", err)
	}
	m.mu.Lock()
	m.dirs = append(m.dirs, d)
	m.mu.Unlock()
	return d
}

// Close runs the cleanups, last registered first, then removes the temporary directories.
func (m *MainTB) Close() {
	m.mu.Lock()
	cleanups, dirs := m.cleanups, m.dirs
	m.cleanups, m.dirs = nil, nil
	m.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	for _, d := range dirs {
		_ = os.RemoveAll(d)
	}
}

// RequirePassword makes the running server demand password from every new connection
// (CONFIG SET requirepass), for tests of authentication failures.
func (r *Redis) RequirePassword(password string) error {
	reply, err := redisCommand(r.Addr, "CONFIG SET requirepass "+password)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(reply, "+OK") {
		return fmt.Errorf("config set requirepass: %q", reply)
	}
	return nil
}
