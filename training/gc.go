package training

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/quiverfs/quiver/registry"
)

// DefaultGCGrace is how old an unreferenced dataset folder must be before CollectDatasetGarbage
// removes it.
const DefaultGCGrace = time.Hour

// GCRegistry is the part of the registry dataset garbage collection reads.
type GCRegistry interface {
	ListDatasets(ctx context.Context, project, name string) ([]registry.Dataset, error)
	registry.DatasetBuilds
}

// GCOptions tune CollectDatasetGarbage. The zero value removes garbage older than
// DefaultGCGrace.
type GCOptions struct {
	// DryRun lists what would be removed and removes nothing.
	DryRun bool
	// Grace spares folders modified more recently than this, so that a build that is about
	// to register a version pointing at an existing folder never loses it; 0 means
	// DefaultGCGrace.
	Grace time.Duration
	// StaleBuildAge is how old a build in flight on another host must be to count as dead;
	// 0 means DefaultStaleBuildAge.
	StaleBuildAge time.Duration
}

// GCItem is one folder garbage collection removed (or, in a dry run, would remove).
type GCItem struct {
	Path   string `json:"path"`
	Bytes  int64  `json:"bytes"`
	Reason string `json:"reason"`
}

// GCResult is what a garbage collection found.
type GCResult struct {
	Items []GCItem `json:"items"`
	Bytes int64    `json:"bytes"` // the total of Items' bytes
}

// CollectDatasetGarbage finds, and unless opts.DryRun removes, the dataset files of project
// under warehouse/projects/PROJECT/datasets/ that no live (not removed) registered dataset
// version references: the content of removed versions, and staging folders of builds that are
// no longer in flight or whose process died. Content a live version references is never
// touched, whichever version or name it was built for; so are folders younger than opts.Grace.
// Datasets written before the per-project layout (warehouse/datasets/NAME/vN) are left alone.
func CollectDatasetGarbage(ctx context.Context, reg GCRegistry, warehouse, project string, opts GCOptions) (GCResult, error) {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGCGrace
	}
	if opts.StaleBuildAge <= 0 {
		opts.StaleBuildAge = DefaultStaleBuildAge
	}
	var res GCResult
	root := DatasetsDir(warehouse, project)
	candidates, err := unreferencedContent(ctx, reg, warehouse, project, opts.Grace)
	if err != nil {
		return res, err
	}
	// Builds: dead ones' folders and folders without a build in flight are garbage. The
	// folders are read before the builds (see ReapStaleBuilds).
	staging, err := os.ReadDir(StagingRoot(warehouse, project))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fmt.Errorf("list %s: %w", StagingRoot(warehouse, project), err)
	}
	builds, err := reg.ListDatasetBuilds(ctx, project)
	if err != nil {
		return res, fmt.Errorf("list dataset builds of project %q: %w", project, err)
	}
	host, _ := os.Hostname()
	inFlight := map[string]registry.DatasetBuild{}
	for _, b := range builds {
		inFlight[filepath.Base(StagingDir(warehouse, project, b.ID))] = b
	}
	var deadBuilds []registry.DatasetBuildID
	for _, e := range staging {
		path := filepath.Join(StagingRoot(warehouse, project), e.Name())
		b, ok := inFlight[e.Name()]
		switch {
		case ok && buildDead(b, host, opts.StaleBuildAge):
			candidates = append(candidates, GCItem{Path: path, Reason: fmt.Sprintf("staging of dead dataset build %d (%s)", b.ID, b.Name)})
			deadBuilds = append(deadBuilds, b.ID)
		case ok:
			// A build in flight.
		case isBuildFolder(e.Name()) || olderThan(path, opts.Grace):
			candidates = append(candidates, GCItem{Path: path, Reason: "staging folder of no build in flight"})
		}
	}
	// Dead builds' rows without a folder are cleared too.
	for _, b := range builds {
		if _, err := os.Stat(StagingDir(warehouse, project, b.ID)); errors.Is(err, os.ErrNotExist) && buildDead(b, host, opts.StaleBuildAge) {
			deadBuilds = append(deadBuilds, b.ID)
		}
	}
	sort.Slice(candidates, func(i, j int) bool { return candidates[i].Path < candidates[j].Path })

	if !opts.DryRun {
		// Look again just before removing: a build may have registered a version pointing
		// at a candidate since.
		again, err := unreferencedContent(ctx, reg, warehouse, project, opts.Grace)
		if err != nil {
			return res, err
		}
		still := map[string]bool{}
		for _, c := range again {
			still[c.Path] = true
		}
		kept := candidates[:0]
		for _, c := range candidates {
			if filepath.Dir(c.Path) == root && !still[c.Path] {
				continue
			}
			kept = append(kept, c)
		}
		candidates = kept
	}
	for _, c := range candidates {
		c.Bytes = folderBytes(c.Path)
		if !opts.DryRun {
			if err := os.RemoveAll(c.Path); err != nil {
				return res, fmt.Errorf("remove %s: %w", c.Path, err)
			}
		}
		res.Items = append(res.Items, c)
		res.Bytes += c.Bytes
	}
	if !opts.DryRun {
		for _, id := range deadBuilds {
			if err := reg.AbandonDatasetBuild(ctx, id); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// unreferencedContent lists the content folders of project that no live dataset version
// references and that are older than grace.
func unreferencedContent(ctx context.Context, reg GCRegistry, warehouse, project string, grace time.Duration) ([]GCItem, error) {
	live, err := reg.ListDatasets(ctx, project, "")
	if err != nil {
		return nil, fmt.Errorf("list datasets of project %q: %w", project, err)
	}
	referenced := map[string]bool{}
	for _, d := range live {
		referenced[filepath.Clean(DatasetDir(warehouse, d))] = true
	}
	root := DatasetsDir(warehouse, project)
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	var out []GCItem
	for _, e := range entries {
		path := filepath.Join(root, e.Name())
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "sha256-") || referenced[path] || !olderThan(path, grace) {
			continue
		}
		out = append(out, GCItem{Path: path, Reason: "content of no live dataset version"})
	}
	return out, nil
}

func olderThan(path string, age time.Duration) bool {
	info, err := os.Stat(path)
	return err == nil && time.Since(info.ModTime()) > age
}

// folderBytes is the total size of the files under path.
func folderBytes(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
