// Package testenv starts throwaway servers for tests: redis-server (single node and a
// three-master Cluster) and a PostgreSQL cluster made with initdb, each on free loopback ports
// in a temporary directory, stopped when the test (or TestMain) ends. It never touches a
// database already running on the machine.
//
// When a binary is missing the test fails with a message naming it and the Debian package
// that provides it; tests never skip for a missing server.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
)

// TB is the subset of testing.TB the helpers need, so they can be used from TestMain through
// a small adapter as well as from tests.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// LookBinary finds an executable on PATH, then in extra directories (globs allowed, newest
// match first). The error names the binary and the Debian package that provides it.
func LookBinary(name, debianPackage string, extraDirs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, pattern := range extraDirs {
		dirs, _ := filepath.Glob(pattern)
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found on PATH: install the Debian package %q (apt-get install -y %s)", name, debianPackage, debianPackage)
}
