package training

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quiverfs/quiver/registry"
)

// DefaultStaleBuildAge is how long a dataset build may run before another process on a
// different host treats it as dead. A build on the same host is judged by whether its process
// is alive.
const DefaultStaleBuildAge = 24 * time.Hour

// build is a dataset build in flight: its registry row and its staging folder.
type build struct {
	reg      Registry
	rec      registry.DatasetBuild
	dir      string
	finished bool
}

// beginBuild records a build in the registry before any file is written, then removes what
// builds that died left behind.
func beginBuild(ctx context.Context, reg Registry, req DatasetRequest) (*build, error) {
	host, _ := os.Hostname()
	rec, err := reg.BeginDatasetBuild(ctx, registry.DatasetBuild{Project: req.Project, Name: req.Name, Host: host, PID: os.Getpid()})
	if err != nil {
		return nil, fmt.Errorf("record build of dataset %s: %w", req.Name, err)
	}
	b := &build{reg: reg, rec: rec, dir: StagingDir(req.Warehouse, req.Project, rec.ID)}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		b.abandon()
		return nil, fmt.Errorf("create staging folder of dataset %s: %w", req.Name, err)
	}
	if _, err := ReapStaleBuilds(ctx, reg, req.Warehouse, req.Project, DefaultStaleBuildAge); err != nil {
		b.abandon()
		return nil, err
	}
	return b, nil
}

// abandon removes the build's staging folder and, unless it finished, its registry row. It
// runs even when ctx was cancelled (Ctrl-C).
func (b *build) abandon() {
	_ = os.RemoveAll(b.dir)
	if !b.finished {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.reg.AbandonDatasetBuild(ctx, b.rec.ID)
	}
}

// ReapStaleBuilds removes the staging folders of a project's dataset builds that died (their
// process on this host is gone, or they started more than maxAge ago) and their registry rows,
// and staging folders no build in flight owns. It returns the folders removed.
func ReapStaleBuilds(ctx context.Context, reg registry.DatasetBuilds, warehouse, project string, maxAge time.Duration) ([]string, error) {
	// Read the folders before the builds: a folder is made after its build's row, so every
	// folder seen here whose build is still in flight has its row in the list below.
	entries, err := os.ReadDir(StagingRoot(warehouse, project))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list staging folders: %w", err)
	}
	builds, err := reg.ListDatasetBuilds(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("list dataset builds: %w", err)
	}
	host, _ := os.Hostname()
	live := map[string]bool{}
	var removed []string
	for _, b := range builds {
		dir := StagingDir(warehouse, project, b.ID)
		if !buildDead(b, host, maxAge) {
			live[filepath.Base(dir)] = true
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, fmt.Errorf("remove staging folder of dead dataset build %d: %w", b.ID, err)
		}
		if err := reg.AbandonDatasetBuild(ctx, b.ID); err != nil {
			return removed, err
		}
		removed = append(removed, dir)
	}
	// A folder whose build is no longer in flight is garbage: a row goes away only when its
	// build finished or was abandoned.
	for _, e := range entries {
		dir := filepath.Join(StagingRoot(warehouse, project), e.Name())
		if live[e.Name()] || !isBuildFolder(e.Name()) || slices.Contains(removed, dir) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return removed, fmt.Errorf("remove staging folder %s: %w", dir, err)
		}
		removed = append(removed, dir)
	}
	return removed, nil
}

func isBuildFolder(name string) bool {
	n, ok := strings.CutPrefix(name, "b")
	if !ok {
		return false
	}
	_, err := strconv.ParseInt(n, 10, 64)
	return err == nil
}

// buildDead reports whether a build in flight is dead: its process on this host is gone, or
// it started more than maxAge ago.
func buildDead(b registry.DatasetBuild, host string, maxAge time.Duration) bool {
	if maxAge > 0 && time.Since(b.StartedAt) > maxAge {
		return true
	}
	if b.Host != host || b.PID <= 0 {
		return false
	}
	return !processAlive(b.PID)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
