// Package project is an opened feature repo: its quiver.yaml, the stores it names (opened
// when first needed, through the one backend switch in stores.go), its applied definitions
// (a catalog snapshot, read once) and the warehouse lock. Beside it live the use cases that
// span packages — plan and apply, materialize, train, reap, gc, push, serve and stream (each
// one run group), status — so that cmd/quiver only parses flags, calls one of them and
// renders the result.
package project

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// Options are how a feature repo is opened. Dir is required; the zero value of the rest is
// usable.
type Options struct {
	// Dir is the feature repo's directory (the one holding quiver.yaml).
	Dir string
	// Getenv reads the environment (QUIVER_* overrides, $QUIVER_USER, $TMPDIR, ...);
	// os.Getenv when nil.
	Getenv func(string) string
	// Logger receives the logs of the servers, committers and consumers the use cases run;
	// nil discards.
	Logger *slog.Logger
	// Notices receives one line per thing a person should know that is not the result (a
	// reaped run, a reused dataset, a warning); nil discards.
	Notices io.Writer
	// Version is the Quiver version recorded in lineage and run info.
	Version string
	// Secret is told every secret a use case reads from the configuration (a session key,
	// a client secret), so that the caller can keep it out of what it prints; nil: nobody.
	Secret func(string)
}

// Project is an opened feature repo. Its stores are opened on first use and closed by Close.
// It is safe for concurrent use.
type Project struct {
	Config *config.Config
	opts   Options

	mu      sync.Mutex // guards the stores below
	reg     registry.Store
	online  online.Store
	offline *Offline
	snap    *catalog.Snapshot
}

// Open reads dir's quiver.yaml with the environment's overrides. It opens no store.
func Open(opts Options) (*Project, error) {
	if opts.Secret == nil {
		opts.Secret = func(string) {}
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notices == nil {
		opts.Notices = io.Discard
	}
	cfg, err := config.Load(opts.Dir, opts.Getenv)
	if err != nil {
		return nil, err
	}
	return &Project{Config: cfg, opts: opts}, nil
}

// Name is the project's name.
func (p *Project) Name() string { return p.Config.Project }

// Logger is the logger the project's servers log to.
func (p *Project) Logger() *slog.Logger { return p.opts.Logger }

// notice writes one line to Options.Notices.
func (p *Project) notice(format string, args ...any) {
	fmt.Fprintf(p.opts.Notices, format+"\n", args...)
}

// Definitions loads and validates the definitions in the repo's files (not the registry's).
func (p *Project) Definitions() (*definitions.Repo, error) {
	return definitions.LoadAllowing(p.Config.Root, p.Config.AllowedPaths, p.Config.Definitions...)
}

// Registry is the configured registry, opened on first use.
func (p *Project) Registry(ctx context.Context) (registry.Store, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reg == nil {
		reg, err := OpenRegistry(ctx, p.Config)
		if err != nil {
			return nil, err
		}
		p.reg = reg
	}
	return p.reg, nil
}

// Online is the configured online store, opened on first use.
func (p *Project) Online(ctx context.Context) (online.Store, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.online == nil {
		on, err := OpenOnline(ctx, p.Config)
		if err != nil {
			return nil, err
		}
		p.online = on
	}
	return p.online, nil
}

// Offline is the project's offline store, opened on first use: its namespace is checked
// against the registry's owners and claimed (OpenOffline).
func (p *Project) Offline(ctx context.Context) (*Offline, error) {
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.offline == nil {
		off, err := OpenOffline(ctx, p.Config, reg)
		if err != nil {
			return nil, err
		}
		p.offline = off
	}
	return p.offline, nil
}

// Catalog is the project's applied definitions, read from the registry on first use (one
// consistent read) and then the same for the life of the Project.
func (p *Project) Catalog(ctx context.Context) (*catalog.Snapshot, error) {
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.snap == nil {
		snap, err := catalog.Load(ctx, reg, p.Config.Project)
		if err != nil {
			return nil, err
		}
		p.snap = snap
	}
	return p.snap, nil
}

// LockShared holds the warehouse lock shared while a command writes to the warehouse, so that
// gc never removes files it has written but not committed yet. Call the returned func to
// let go. With the warehouse on object storage the lock is on FilesDir, on this host: it keeps
// gc from the dataset and run files there, and gc keeps from the bucket's young files by
// itself (docs/storage.md).
func (p *Project) LockShared(ctx context.Context) (func(), error) {
	return warehouselock.Shared(ctx, p.FilesDir())
}

// FilesDir is the local directory of the project's dataset snapshots and run artifacts: the
// warehouse itself when it is a local directory; the repo's .quiver/files when the warehouse
// is on object storage (s3://...), where only the offline tables are kept — datasets and
// run artifacts are not written to object storage.
func (p *Project) FilesDir() string {
	if IsObjectStore(p.Config.Offline.Warehouse) {
		return filepath.Join(p.Config.Root, ".quiver", "files")
	}
	return strings.TrimPrefix(p.Config.Offline.Warehouse, "file://")
}

// Close closes the stores that were opened.
func (p *Project) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.offline != nil {
		errs = append(errs, p.offline.Close())
	}
	if p.online != nil {
		errs = append(errs, p.online.Close())
	}
	if p.reg != nil {
		errs = append(errs, p.reg.Close())
	}
	p.offline, p.online, p.reg = nil, nil, nil
	return errors.Join(errs...)
}

// Actor names the person or service running a command, for the registry's records:
// $QUIVER_USER, else user@host, sanitized. It is not authenticated.
func (p *Project) Actor() string { return Actor(p.opts.Getenv) }

// Actor is Project.Actor for a command that opens no project.
func Actor(getenv func(string) string) string {
	name := getenv("QUIVER_USER")
	if name == "" {
		name = getenv("USER")
		if u, err := user.Current(); err == nil && u.Username != "" {
			name = u.Username
		}
		if host, err := os.Hostname(); err == nil && host != "" {
			name += "@" + host
		}
	}
	return registry.SanitizePrincipal(name)
}

// Lease is how long a running job may go without a heartbeat before it is reaped:
// $QUIVER_RUN_LEASE (a Go duration such as 2m or 500ms), default registry.DefaultLease.
func (p *Project) Lease() (time.Duration, error) {
	s := p.opts.Getenv("QUIVER_RUN_LEASE")
	if s == "" {
		return registry.DefaultLease, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errkind.Errorf(errkind.Usage, "QUIVER_RUN_LEASE=%q is not a positive duration (e.g. 2m, 30s)", s)
	}
	return d, nil
}

// tempDir is $TMPDIR, where runs keep their work folders ("" for the system's default).
func (p *Project) tempDir() string { return p.opts.Getenv("TMPDIR") }
