package iceberg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ice "github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/quiverfs/quiver/offline"
)

// Table properties gc leaves on a table, so readers can tell a time whose snapshot was
// expired from one that never had one.
const (
	// PropExpiredBefore is the RFC 3339 time before which snapshots may have been expired.
	PropExpiredBefore = "quiver.gc.expired-before"
	// PropRetention is the --older-than retention that expiry ran with.
	PropRetention = "quiver.gc.retention"
)

// ErrBeforeRetention is returned for a read as of a time whose snapshots gc has expired.
var ErrBeforeRetention = errors.New("before the offline store's retention horizon")

// GCOptions tune CollectGarbage.
type GCOptions struct {
	// OlderThan is the retention: snapshots committed before Now minus OlderThan are expired
	// unless pinned or current.
	OlderThan time.Duration
	// Pinned are snapshot ids that must stay (those registered datasets were built from).
	Pinned map[int64]bool
	// DryRun reports what would be removed without removing anything.
	DryRun bool
	// OrphansOnly expires no snapshot: only files no snapshot references go (what a failed
	// or killed write left).
	OrphansOnly bool
	// MinOrphanAge is how old a file no snapshot ever referenced must be before it is removed:
	// another engine's (Trino, another Quiver process, a writer on object storage) files are
	// unreferenced until its commit, and look exactly like a killed write's. The files of the
	// snapshots this collection expires, and metadata files the table's metadata log names, are
	// known to be committed and go at once. Zero means no minimum (only for a caller that knows
	// no other writer is at work, like a failed run's cleanup under the exclusive lock).
	MinOrphanAge time.Duration
	// Now is the clock; zero means time.Now.
	Now time.Time
}

// RemovedFile is one file CollectGarbage removed (or would remove).
type RemovedFile struct {
	Path  string
	Bytes int64
	// Kind is data, manifest, manifest-list, metadata or other.
	Kind string
}

// GCResult reports one table's collection.
type GCResult struct {
	View             string
	ExpiredSnapshots []int64
	KeptSnapshots    int
	Files            []RemovedFile
	// YoungOrphans is how many unreferenced files were kept because they are younger than
	// MinOrphanAge (a write in flight, possibly another engine's).
	YoungOrphans int
}

// Views lists the tables in the store's namespace: one per view and definition generation
// (TableName), as CollectGarbage takes them.
func (s *Store) Views(ctx context.Context) ([]string, error) {
	var out []string
	for id, err := range s.cat.cat.ListTables(ctx, s.ns) {
		if err != nil {
			return nil, fmt.Errorf("list offline tables: %w", err)
		}
		out = append(out, id[len(id)-1])
	}
	sort.Strings(out)
	return out, nil
}

// RetentionHorizon is the time before which the view's snapshots may have been expired by
// CollectGarbage, and the retention it ran with; zero when never.
func (s *Store) RetentionHorizon(ctx context.Context, view string, generation int) (time.Time, string, error) {
	tbl, err := s.load(ctx, view, generation)
	if err != nil {
		return time.Time{}, "", err
	}
	props := tbl.Properties()
	h := props[PropExpiredBefore]
	if h == "" {
		return time.Time{}, "", nil
	}
	t, err := time.Parse(time.RFC3339Nano, h)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("offline table %s: property %s=%q: %w", s.tableName(view, generation), PropExpiredBefore, h, err)
	}
	return t, props[PropRetention], nil
}

// CollectGarbage expires the view's snapshots committed before the retention horizon (now
// minus OlderThan) that are neither current, pinned, nor the one current at the horizon, in one catalog commit that asserts the table did not
// change meanwhile, then removes every file under the table's location that no remaining
// snapshot needs: data and delete files, manifests, manifest lists and statistics files of
// expired snapshots, files of writes that never committed (killed or failed runs), and
// superseded metadata files.
//
// iceberg-go v0.7.0 has Transaction.ExpireSnapshots and Table.DeleteOrphanFiles; they are
// not used because expiry there can keep a snapshot only through a branch or tag ref (a
// dataset's pin would become a tag written into the table), and a dry run here must list the
// very files the real run removes, superseded metadata files included, from one walk.
//
// The caller must hold the warehouse lock exclusively (see internal/warehouselock): a
// writer's files are unreferenced until its commit, and would otherwise look orphaned. Other
// engines (Trino) and writers on object storage (s3://) are not held off by that lock: an
// unreferenced file not known to be committed goes only once older than MinOrphanAge, on
// local disk and object storage alike.
func (s *Store) CollectGarbage(ctx context.Context, view string, opts GCOptions) (GCResult, error) {
	// view is a table name as Views lists it (TableName of a view and generation); generation
	// 1 names a table by exactly that name.
	res := GCResult{View: view}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	cutoff := now.Add(-opts.OlderThan)
	tbl, err := s.load(ctx, view, 1)
	if err != nil {
		return res, err
	}
	name := s.tableName(view, 1)
	meta := tbl.Metadata()
	var cur int64
	if c := meta.CurrentSnapshot(); c != nil {
		cur = c.SnapshotID
	}
	// The snapshot that was current at the horizon stays too, so the table reads as it was at
	// any time from the horizon on.
	var atHorizon int64
	var atHorizonMs int64 = -1 << 63
	for _, snap := range meta.Snapshots() {
		if time.UnixMilli(snap.TimestampMs).Before(cutoff) && snap.TimestampMs >= atHorizonMs {
			atHorizon, atHorizonMs = snap.SnapshotID, snap.TimestampMs
		}
	}
	var keep []table.Snapshot
	for _, snap := range meta.Snapshots() {
		committed := time.UnixMilli(snap.TimestampMs)
		if opts.OrphansOnly || snap.SnapshotID == cur || snap.SnapshotID == atHorizon || opts.Pinned[snap.SnapshotID] || !committed.Before(cutoff) {
			keep = append(keep, snap)
			continue
		}
		res.ExpiredSnapshots = append(res.ExpiredSnapshots, snap.SnapshotID)
	}
	res.KeptSnapshots = len(keep)
	// Files known to be committed: those of the snapshots expired now, and the metadata files
	// the metadata log names (the current one too, which the expiry commit supersedes). They
	// go whatever their age; any other unreferenced file only past MinOrphanAge.
	known, err := s.committedFiles(ctx, tbl, res.ExpiredSnapshots)
	if err != nil {
		return res, err
	}
	if len(res.ExpiredSnapshots) > 0 && !opts.DryRun {
		props := ice.Properties{PropExpiredBefore: cutoff.UTC().Format(time.RFC3339Nano), PropRetention: opts.OlderThan.String()}
		if old := tbl.Properties()[PropExpiredBefore]; old != "" {
			if t, err := time.Parse(time.RFC3339Nano, old); err == nil && t.After(cutoff) {
				props = nil // an earlier gc, with a shorter retention, set a later horizon: keep it
			}
		}
		updates := []table.Update{table.NewRemoveSnapshotsUpdate(res.ExpiredSnapshots, false)}
		if props != nil {
			updates = append(updates, table.NewSetPropertiesUpdate(props))
		}
		var reqs []table.Requirement
		if cur != 0 {
			reqs = append(reqs, table.AssertRefSnapshotID(table.MainBranch, &cur))
		}
		if _, _, err := s.cat.cat.CommitTable(ctx, s.Identifier(view, 1), reqs, updates); err != nil {
			return res, fmt.Errorf("offline table %s: expire %d snapshots: %w", name, len(res.ExpiredSnapshots), err)
		}
		if tbl, err = s.load(ctx, view, 1); err != nil {
			return res, err
		}
	}

	fsys, err := tbl.FS(ctx)
	if err != nil {
		return res, fmt.Errorf("offline table %s: %w", name, err)
	}
	root, local := localPath(tbl.Location())
	// On object storage (s3://...) the table's files are listed and removed through the
	// table's file IO, by URL; there is no warehouse lock there, so a file is only removed
	// when it was last modified before the retention horizon as well (see objectSweep).
	norm := func(p string) (string, bool) {
		if local {
			return localPath(p)
		}
		return strings.TrimSuffix(p, "/"), strings.Contains(p, "://")
	}
	live := map[string]bool{}
	mark := func(p string) {
		if lp, ok := norm(p); ok {
			live[lp] = true
		}
	}
	if !opts.DryRun {
		keep = tbl.Metadata().Snapshots()
	}
	// The expiry commit supersedes the current metadata file: a dry run lists it too.
	if !opts.DryRun || len(res.ExpiredSnapshots) == 0 {
		mark(tbl.MetadataLocation())
	}
	kept := map[int64]bool{}
	for _, snap := range keep {
		kept[snap.SnapshotID] = true
	}
	// Statistics files (Puffin files Trino's ANALYZE writes) and partition statistics files are
	// named by the table metadata, per snapshot, and by no manifest: those of the snapshots that
	// stay stay too (an expiry drops the others from the metadata).
	for st := range tbl.Metadata().Statistics() {
		if kept[st.SnapshotID] {
			mark(st.StatisticsPath)
		}
	}
	for st := range tbl.Metadata().PartitionStatistics() {
		if kept[st.SnapshotID] {
			mark(st.StatisticsPath)
		}
	}
	for _, snap := range keep {
		mark(snap.ManifestList)
		mans, err := snap.Manifests(fsys)
		if err != nil {
			return res, fmt.Errorf("offline table %s snapshot %d: read manifest list: %w", name, snap.SnapshotID, err)
		}
		for _, m := range mans {
			mark(m.FilePath())
			for entry, err := range m.Entries(fsys, true) {
				if err != nil {
					return res, fmt.Errorf("offline table %s: read manifest %s: %w", name, m.FilePath(), err)
				}
				mark(entry.DataFile().FilePath())
			}
		}
	}
	orphanCutoff := now.Add(-opts.MinOrphanAge)
	young := func(p string, mod time.Time) bool {
		if opts.MinOrphanAge <= 0 || known[p] || mod.Before(orphanCutoff) {
			return false
		}
		res.YoungOrphans++
		return true
	}
	if !local {
		return objectSweep(tbl.Location(), fsys, live, young, opts.DryRun, res)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || live[filepath.Clean(p)] {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil //nolint:nilerr // removed meanwhile: nothing to collect
		}
		if young(filepath.Clean(p), fi.ModTime()) {
			return nil
		}
		res.Files = append(res.Files, RemovedFile{Path: p, Bytes: fi.Size(), Kind: fileKind(p)})
		if opts.DryRun {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("offline table %s: remove unreferenced files: %w", name, err)
	}
	if !opts.DryRun {
		removeEmptyDirs(root)
	}
	return res, nil
}

// objectSweep removes the files under an object-store table location (a URL) that live does
// not hold and that young does not keep. Nothing keeps quiver gc and a writer on object
// storage apart (the warehouse lock is a local flock), and a writer's files are unreferenced
// until its commit: MinOrphanAge is their grace period, as on local disk.
func objectSweep(location string, fsys icebergio.IO, live map[string]bool, young func(string, time.Time) bool, dryRun bool, res GCResult) (GCResult, error) {
	name := location
	lister, ok := fsys.(icebergio.ListableIO)
	if !ok {
		return res, fmt.Errorf("offline table at %s: its file system cannot list files: unreferenced files are not removed", name)
	}
	var doomed []string
	err := lister.WalkDir(location, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || live[strings.TrimSuffix(p, "/")] {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil //nolint:nilerr // removed meanwhile: nothing to collect
		}
		if young(strings.TrimSuffix(p, "/"), fi.ModTime()) {
			return nil
		}
		res.Files = append(res.Files, RemovedFile{Path: p, Bytes: fi.Size(), Kind: fileKind(p)})
		doomed = append(doomed, p)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("offline table at %s: list files: %w", name, err)
	}
	if dryRun {
		return res, nil
	}
	for _, p := range doomed {
		if err := fsys.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("offline table at %s: remove unreferenced file %s: %w", name, p, err)
		}
	}
	return res, nil
}

// committedFiles are the files known to have been committed to tbl that gc may remove
// whatever their age, keyed as CollectGarbage's sweep sees them (a clean local path, or a URL):
// the manifest lists, manifests and data files of the snapshots in expired, and the metadata
// files of the table's metadata log and its current one. What the remaining snapshots still
// need is never removed (the sweep checks that first).
func (s *Store) committedFiles(ctx context.Context, tbl *table.Table, expired []int64) (map[string]bool, error) {
	known := map[string]bool{}
	_, local := localPath(tbl.Location())
	add := func(p string) {
		if local {
			if lp, ok := localPath(p); ok {
				known[lp] = true
			}
			return
		}
		known[strings.TrimSuffix(p, "/")] = true
	}
	meta := tbl.Metadata()
	add(tbl.MetadataLocation())
	for e := range meta.PreviousFiles() {
		add(e.MetadataFile)
	}
	if len(expired) == 0 {
		return known, nil
	}
	fsys, err := tbl.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("offline table %s: %w", tbl.Identifier(), err)
	}
	for _, id := range expired {
		snap := meta.SnapshotByID(id)
		if snap == nil {
			continue
		}
		add(snap.ManifestList)
		mans, err := snap.Manifests(fsys)
		if err != nil {
			return nil, fmt.Errorf("offline table %s snapshot %d: read manifest list: %w", tbl.Identifier(), id, err)
		}
		for _, m := range mans {
			add(m.FilePath())
			for entry, err := range m.Entries(fsys, true) {
				if err != nil {
					return nil, fmt.Errorf("offline table %s: read manifest %s: %w", tbl.Identifier(), m.FilePath(), err)
				}
				add(entry.DataFile().FilePath())
			}
		}
	}
	return known, nil
}

// CheckRetention fails with ErrBeforeRetention, naming the horizon and the retention, when a
// read of view as of at could need a snapshot gc has expired.
func (s *Store) CheckRetention(ctx context.Context, view string, generation int, at time.Time) error {
	if at.IsZero() {
		return nil
	}
	h, ret, err := s.RetentionHorizon(ctx, view, generation)
	if errors.Is(err, offline.ErrTableNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !h.IsZero() && at.Before(h) {
		return fmt.Errorf("feature view %q as of %s: %w: quiver gc expired its snapshots before %s (retention --older-than %s); use a time at or after the horizon, or a dataset built before",
			view, at.UTC().Format(time.RFC3339), ErrBeforeRetention, h.UTC().Format(time.RFC3339), ret)
	}
	return nil
}

// localPath turns a file:// URL or a plain path into a clean local path.
func localPath(loc string) (string, bool) {
	if strings.HasPrefix(loc, "/") {
		return filepath.Clean(loc), true
	}
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	return filepath.Clean(filepath.FromSlash(u.Path)), true
}

func fileKind(p string) string {
	base := filepath.Base(p)
	switch {
	case strings.HasSuffix(base, ".metadata.json"):
		return "metadata"
	case strings.HasPrefix(base, "snap-") && strings.HasSuffix(base, ".avro"):
		return "manifest-list"
	case strings.HasSuffix(base, ".avro"):
		return "manifest"
	case strings.HasSuffix(base, ".parquet"):
		return "data"
	}
	return "other"
}

// removeEmptyDirs removes the empty directories under root (not root itself), deepest first.
func removeEmptyDirs(root string) {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i]) // fails when not empty
	}
}
