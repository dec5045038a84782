package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresDirs is where Debian's postgresql package puts initdb and postgres (they are not
// on PATH there).
var postgresDirs = []string{"/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin"}

// Postgres is a throwaway PostgreSQL cluster: initdb'd into a temporary directory, listening
// on a free loopback port and a unix socket in that directory, with fsync off. It is stopped
// and its directory removed when the TB that started it cleans up.
type Postgres struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the server process has exited
	// exitErr is the server's exit status; read only after done is closed.
	exitErr error
	dbSeq   atomic.Int64
}

// StartPostgres initdb's a new cluster and starts postgres on a free loopback port. It fails
// t, naming the missing binary and the Debian package "postgresql", when initdb or postgres
// cannot be found. When running as root, initdb and postgres (which refuse root) run as the
// "postgres" user when it exists, otherwise as "nobody".
func StartPostgres(t TB) *Postgres {
	t.Helper()
	initdb, err := LookBinary("initdb", "postgresql", postgresDirs...)
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	server, err := LookBinary("postgres", "postgresql", postgresDirs...)
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}

	dir, err := os.MkdirTemp("", "quiver-pg-")
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	cred, err := unprivilegedCredential()
	if err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	if cred != nil {
		// MkdirTemp makes the directory 0700 and owned by root; the server's user needs it.
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("start postgres: %v", err)
		}
	}

	data := filepath.Join(dir, "data")
	out, err := runAs(cred, initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--no-locale", "--no-sync", "--no-instructions")
	if err != nil {
		t.Fatalf("start postgres: initdb: %v\n%s", err, out)
	}

	p := &Postgres{dir: dir}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken between lookup and bind
		if lastErr = p.start(server, data, cred); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("start postgres: %v", lastErr)
	}
	t.Cleanup(p.stop)
	t.Logf("postgres listening on 127.0.0.1:%d (data in %s)", p.port, data)
	return p
}

func (p *Postgres) start(server, data string, cred *syscall.Credential) error {
	port, err := FreePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(p.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logFile.Close()

	cmd := exec.Command(server, "-D", data,
		"-p", strconv.Itoa(port),
		"-k", p.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
	)
	cmd.Dir = p.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", server, err)
	}
	p.port, p.cmd, p.done = port, cmd, make(chan struct{})
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, p.URL())
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("postgres exited before accepting connections (%v):\n%s", p.exitErr, tail(logPath))
		case <-ctx.Done():
			p.stop()
			return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, tail(logPath))
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// stop asks the server for a fast shutdown and kills it if it has not exited in 10 seconds.
func (p *Postgres) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// URL is the connection URL of the cluster's "postgres" database, as the superuser
// "postgres" (no password).
func (p *Postgres) URL() string { return p.databaseURL("postgres") }

// Port is the loopback TCP port the server listens on.
func (p *Postgres) Port() int { return p.port }

func (p *Postgres) databaseURL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     "127.0.0.1:" + strconv.Itoa(p.port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

var unsafeDBChars = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDatabase creates a new, empty database for one test and returns its URL. It is dropped
// when t cleans up (connections still open then are terminated).
func (p *Postgres) NewDatabase(t TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", p.dbSeq.Add(1))
	if n, ok := t.(interface{ Name() string }); ok {
		s := unsafeDBChars.ReplaceAllString(strings.ToLower(n.Name()), "_")
		if len(s) > 40 {
			s = s[len(s)-40:]
		}
		name += "_" + strings.Trim(s, "_")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	return p.databaseURL(name)
}

func (p *Postgres) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

var (
	credOnce sync.Once
	credVal  *syscall.Credential
	credErr  error
)

// unprivilegedCredential is nil when not root, else the uid/gid of "postgres" or "nobody".
func unprivilegedCredential() (*syscall.Credential, error) {
	credOnce.Do(func() {
		if os.Geteuid() != 0 {
			return
		}
		for _, name := range []string{"postgres", "nobody"} {
			u, err := user.Lookup(name)
			if err != nil {
				continue
			}
			uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
			gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			credVal = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
			return
		}
		credErr = errors.New("running as root and neither a \"postgres\" nor a \"nobody\" user exists to run initdb and postgres")
	})
	return credVal, credErr
}

func runAs(cred *syscall.Credential, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = os.TempDir()
	return cmd.CombinedOutput()
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// Stop shuts the server down (fast shutdown), for tests of a database lost mid-use. The
// cluster's files stay until the test cleans up; Stop twice is harmless.
func (p *Postgres) Stop() { p.stop() }
