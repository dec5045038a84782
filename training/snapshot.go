// Package training owns what turns features into models: immutable, reproducible dataset
// snapshots (create, verify, diff, export), and — with the training issue — job specs,
// runners, run tracking and model versions.
package training

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/fsutil"
)

// ManifestFile is the name of a snapshot's manifest inside its directory.
const ManifestFile = "manifest.json"

// ManifestFormat identifies the manifest layout; it changes only with an incompatible change.
const ManifestFormat = "quiver.dataset/v1"

// Errors.
var (
	// ErrCorrupt: a snapshot's files do not match its manifest.
	ErrCorrupt = errkind.New(errkind.Failed, "dataset snapshot does not match its manifest")
	// ErrInvalidInput: the entity rows or the request cannot make a dataset.
	ErrInvalidInput = errkind.New(errkind.Invalid, "invalid dataset input")
)

// Manifest describes a snapshot completely: its schema, its files and where it came from. The
// snapshot's content id is the SHA-256 of the manifest's bytes, so it changes when any file,
// the schema or the lineage does, and not when the dataset's name, version or creation time do
// (those live in the registry).
type Manifest struct {
	Format  string       `json:"format"`
	Schema  []ColumnInfo `json:"schema"`
	Rows    int64        `json:"rows"`
	Files   []FileInfo   `json:"files"`
	Lineage Lineage      `json:"lineage"`
}

// ColumnInfo is one column of a snapshot.
type ColumnInfo struct {
	Name string `json:"name"`
	// Type is the Arrow type, as arrow-go prints it (int64, timestamp[us, tz=UTC], list<item: float, nullable>).
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
	// Role is "entity" for the entity rows' own columns (keys, timestamp, labels) and
	// "feature" for joined features.
	Role string `json:"role"`
	// Feature is the view:feature a feature column came from.
	Feature string `json:"feature,omitempty"`
}

// FileInfo is one Parquet file of a snapshot.
type FileInfo struct {
	Path   string `json:"path"` // relative to the snapshot directory
	Size   int64  `json:"size"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// Lineage says what a snapshot was built from.
type Lineage struct {
	FeatureService ObjectRef   `json:"feature_service"`
	FeatureViews   []ViewInput `json:"feature_views"`
	// OnDemandViews are the on-demand feature views computed, by definition version.
	OnDemandViews []ObjectRef `json:"on_demand_views,omitempty"`
	Entities      EntityInput `json:"entities"`
	Engine        string      `json:"engine"` // local or trino
	CreatedCutoff bool        `json:"created_cutoff,omitempty"`
	QuiverVersion string      `json:"quiver_version"`
}

// ObjectRef names a registered definition version.
type ObjectRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Hash    string `json:"hash"`
}

// ViewInput is one feature view read, at the offline table snapshot that was read.
type ViewInput struct {
	ObjectRef
	OfflineSnapshotID int64 `json:"offline_snapshot_id"`
	// Generation is the view's definition generation read, when past the first.
	Generation int `json:"generation,omitempty"`
}

// EntityInput is the entity rows: a file (by content hash) or a SQL query (by its text).
type EntityInput struct {
	Kind   string `json:"kind"` // file or sql
	Path   string `json:"path,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	SQL    string `json:"sql,omitempty"`
	Rows   int64  `json:"rows"`
}

// ContentID is the id of a manifest: "sha256:" and the hex SHA-256 of its bytes.
func ContentID(manifest []byte) string {
	sum := sha256.Sum256(manifest)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// EncodeManifest is the canonical encoding of a manifest (indented JSON, trailing newline).
func EncodeManifest(m *Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// WriteOptions tune how a snapshot's Parquet files are laid out. The defaults are part of what
// makes a rebuild byte-identical; change them and the content id changes.
type WriteOptions struct {
	// RowsPerFile is the most rows in one Parquet file; default 4,194,304.
	RowsPerFile int64
	// RowGroupRows is the most rows per row group; default 131,072.
	RowGroupRows int64
	// Parallelism is how many goroutines encode a row group's columns; zero means GOMAXPROCS.
	// It does not change the files' bytes.
	Parallelism int
}

func (o WriteOptions) withDefaults() WriteOptions {
	if o.RowsPerFile <= 0 {
		o.RowsPerFile = 4 << 20
	}
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = 128 << 10
	}
	if o.Parallelism <= 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	return o
}

// Staged is a snapshot written to a temporary directory, not yet visible under its final name.
type Staged struct {
	Dir       string
	Manifest  *Manifest
	Raw       []byte // the manifest's bytes
	ContentID string
}

// Discard removes the staged files.
func (s *Staged) Discard() error { return os.RemoveAll(s.Dir) }

// WriteStaged writes the record batches from next (nil, io.EOF at the end) as the Parquet
// files of a snapshot, in a new temporary directory under parent, and its manifest. Nothing
// is visible under a final name until Publish. columns describes each column's role; they
// must match schema in order. lineage is read once all batches are written.
func WriteStaged(ctx context.Context, parent string, schema *arrow.Schema, columns []ColumnInfo, lineage *Lineage, next func(context.Context) (arrow.RecordBatch, error), opts WriteOptions) (_ *Staged, err error) {
	opts = opts.withDefaults()
	if len(columns) != schema.NumFields() {
		return nil, fmt.Errorf("write snapshot: %d column descriptions for %d columns", len(columns), schema.NumFields())
	}
	for i, f := range schema.Fields() {
		columns[i].Name, columns[i].Type, columns[i].Nullable = f.Name, f.Type.String(), f.Nullable
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	dir, err := os.MkdirTemp(parent, ".staging-")
	if err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	m := &Manifest{Format: ManifestFormat, Schema: columns}
	props, arrowProps := snapshotWriterProps(opts), snapshotArrowProps()

	var (
		w        groupWriter
		fileRows int64
	)
	closeFile := func() error {
		if w == nil {
			return nil
		}
		err := w.Close() // closes the file too
		w = nil
		if err != nil {
			return err
		}
		info, err := hashFile(filepath.Join(dir, m.Files[len(m.Files)-1].Path))
		if err != nil {
			return err
		}
		last := &m.Files[len(m.Files)-1]
		last.Size, last.SHA256, last.Rows = info.Size, info.SHA256, fileRows
		fileRows = 0
		return nil
	}
	openFile := func() error {
		name := fmt.Sprintf("part-%05d.parquet", len(m.Files))
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if w, err = newGroupWriter(schema, f, props, arrowProps, opts.Parallelism); err != nil {
			f.Close()
			return err
		}
		m.Files = append(m.Files, FileInfo{Path: name})
		return nil
	}
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	// One goroutine pulls batches and cuts them into row groups while this one encodes the
	// previous group (its columns on several goroutines), so the join and the encoder overlap.
	// A row group ends at RowGroupRows rows or at the end of a file, so the layout depends only
	// on the rows, not on how the engine batched them or on the parallelism.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	groups := make(chan rowGroup, 1)
	var perr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(groups)
		perr = cutGroups(ctx, schema, next, opts, groups)
	}()
	drain := func() {
		cancel()
		for grp := range groups {
			grp.release()
		}
		<-done
	}
	for grp := range groups {
		if w == nil {
			if err := openFile(); err != nil {
				grp.release()
				drain()
				return nil, fmt.Errorf("write snapshot: %w", err)
			}
		}
		err := w.writeGroup(ctx, grp.parts)
		grp.release()
		if err != nil {
			drain()
			return nil, fmt.Errorf("write snapshot: %w", err)
		}
		fileRows += grp.rows
		m.Rows += grp.rows
		if fileRows == opts.RowsPerFile {
			if err := closeFile(); err != nil {
				drain()
				return nil, fmt.Errorf("write snapshot: %w", err)
			}
		}
	}
	<-done
	if perr != nil {
		return nil, perr
	}
	if m.Rows == 0 || w != nil {
		if w == nil { // no rows at all: still write one (empty) file with the schema
			if err := openFile(); err != nil {
				return nil, fmt.Errorf("write snapshot: %w", err)
			}
		}
		if err := closeFile(); err != nil {
			return nil, fmt.Errorf("write snapshot: %w", err)
		}
	}
	m.Lineage = *lineage // read at the end: the caller may fill in what it learns while streaming
	raw, err := EncodeManifest(m)
	if err != nil {
		return nil, fmt.Errorf("write snapshot manifest: %w", err)
	}
	if err := fsutil.WriteFileSync(filepath.Join(dir, ManifestFile), raw); err != nil {
		return nil, fmt.Errorf("write snapshot manifest: %w", err)
	}
	return &Staged{Dir: dir, Manifest: m, Raw: raw, ContentID: ContentID(raw)}, nil
}

// snapshotWriterProps are the Parquet settings of a snapshot's files.
func snapshotWriterProps(opts WriteOptions) *parquet.WriterProperties {
	return parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithMaxRowGroupLength(opts.RowGroupRows),
		parquet.WithCreatedBy("quiver"),
		parquet.WithStats(true),
		parquet.WithDictionaryPageSizeLimit(snapshotDictLimit),
	)
}

// snapshotDictLimit bounds a column chunk's dictionary. A column with few distinct values per
// row group (categories, flags, counters) stays dictionary-encoded; one whose dictionary passes
// this size (continuous features, timestamps, ids) falls back to plain encoding early instead of
// hashing every value of the row group into a dictionary as large as the column. Part of the
// file layout: changing it changes the content id of new builds.
const snapshotDictLimit = 64 << 10

func snapshotArrowProps() pqarrow.ArrowWriterProperties {
	return pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
}

// rowGroup is the rows of one row group: slices of the engine's batches, in order.
type rowGroup struct {
	parts []arrow.RecordBatch
	rows  int64
}

func (g rowGroup) release() {
	for _, p := range g.parts {
		p.Release()
	}
}

// cutGroups reads batches from next until io.EOF and sends them, sliced, as row groups of
// at most RowGroupRows rows that never cross a file boundary (every RowsPerFile rows).
func cutGroups(ctx context.Context, schema *arrow.Schema, next func(context.Context) (arrow.RecordBatch, error), opts WriteOptions, out chan<- rowGroup) error {
	var (
		cur      rowGroup
		fileRows int64
	)
	send := func() error {
		g := cur
		cur = rowGroup{}
		select {
		case out <- g:
			return nil
		case <-ctx.Done():
			g.release()
			return ctx.Err()
		}
	}
	for {
		rec, err := next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cur.release()
			return err
		}
		if !rec.Schema().Equal(schema) {
			rec.Release()
			cur.release()
			return fmt.Errorf("write snapshot: batch schema %s differs from %s", rec.Schema(), schema)
		}
		for off := int64(0); off < rec.NumRows(); {
			n := min(rec.NumRows()-off, opts.RowGroupRows-cur.rows, opts.RowsPerFile-fileRows-cur.rows)
			cur.parts = append(cur.parts, rec.NewSlice(off, off+n))
			cur.rows += n
			off += n
			if cur.rows == opts.RowGroupRows || fileRows+cur.rows == opts.RowsPerFile {
				fileRows = (fileRows + cur.rows) % opts.RowsPerFile
				if err := send(); err != nil {
					rec.Release()
					return err
				}
			}
		}
		rec.Release()
	}
	if cur.rows > 0 {
		return send()
	}
	return nil
}

// Publish moves a staged snapshot to dir (which must not exist), making it visible whole or
// not at all (one rename), and marks its files read-only. Every file, the snapshot's directory
// and its new parent are fsynced first, so a snapshot the registry records after Publish
// survives a crash of the machine, not only of the process.
func (s *Staged) Publish(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(s.Dir, e.Name())
		if err := syncFile(p); err != nil {
			return fmt.Errorf("publish snapshot: %w", err)
		}
		_ = os.Chmod(p, 0o444)
	}
	if err := fsutil.SyncDir(s.Dir); err != nil {
		return fmt.Errorf("publish snapshot: %w", err)
	}
	if err := os.Rename(s.Dir, dir); err != nil {
		return fmt.Errorf("publish snapshot to %s: %w", dir, err)
	}
	s.Dir = dir
	if err := fsutil.SyncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("publish snapshot to %s: %w", dir, err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

type fileHash struct {
	Size   int64
	SHA256 string
}

func hashFile(path string) (fileHash, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileHash{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fileHash{}, err
	}
	return fileHash{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// HashFile returns the hex SHA-256 of a file, for entity inputs' lineage.
func HashFile(path string) (string, error) {
	h, err := hashFile(path)
	return h.SHA256, err
}

// ReadManifest reads a snapshot directory's manifest and its content id.
func ReadManifest(dir string) (*Manifest, string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, "", fmt.Errorf("read snapshot manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, "", fmt.Errorf("read snapshot manifest %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.Format != ManifestFormat {
		return nil, "", fmt.Errorf("read snapshot manifest %s: format %q, want %q", dir, m.Format, ManifestFormat)
	}
	return &m, ContentID(raw), nil
}

// Mismatch is one file of a snapshot that does not match its manifest.
type Mismatch struct {
	Path   string
	Reason string
}

// Verify re-hashes every file of the snapshot in dir and compares it, and the manifest's own
// hash, with what was recorded. It returns the mismatches (none when the snapshot is intact)
// and an error matching ErrCorrupt when there are any. wantContentID, if not empty, is the id
// the registry recorded.
func Verify(dir, wantContentID string) ([]Mismatch, error) {
	m, id, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	var bad []Mismatch
	if wantContentID != "" && id != wantContentID {
		bad = append(bad, Mismatch{Path: ManifestFile, Reason: fmt.Sprintf("content id %s, registered %s", id, wantContentID)})
	}
	for _, f := range m.Files {
		h, err := hashFile(filepath.Join(dir, f.Path))
		switch {
		case errors.Is(err, os.ErrNotExist):
			bad = append(bad, Mismatch{Path: f.Path, Reason: "missing"})
		case err != nil:
			bad = append(bad, Mismatch{Path: f.Path, Reason: err.Error()})
		case h.Size != f.Size:
			bad = append(bad, Mismatch{Path: f.Path, Reason: fmt.Sprintf("size %d, manifest says %d", h.Size, f.Size)})
		case h.SHA256 != f.SHA256:
			bad = append(bad, Mismatch{Path: f.Path, Reason: fmt.Sprintf("sha256 %s, manifest says %s", h.SHA256, f.SHA256)})
		}
	}
	if len(bad) > 0 {
		return bad, fmt.Errorf("%w: %d of %d file(s) differ, first %s (%s)", ErrCorrupt, len(bad), len(m.Files), bad[0].Path, bad[0].Reason)
	}
	return nil, nil
}

// OpenFiles opens every Parquet file of a snapshot as one stream of record batches, in order.
func OpenFiles(ctx context.Context, dir string, m *Manifest) (array.RecordReader, error) {
	if len(m.Files) == 0 {
		return nil, fmt.Errorf("%w: %s lists no files", ErrCorrupt, filepath.Join(dir, ManifestFile))
	}
	var readers []array.RecordReader
	var files []*os.File
	cleanup := func() {
		for _, r := range readers {
			r.Release()
		}
		for _, f := range files {
			f.Close()
		}
	}
	for _, fi := range m.Files {
		f, err := os.Open(filepath.Join(dir, fi.Path))
		if err != nil {
			cleanup()
			return nil, err
		}
		files = append(files, f)
		pf, err := pqarrowOpen(f)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("open %s: %w", fi.Path, err)
		}
		rr, err := pf.GetRecordReader(ctx, nil, nil)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("read %s: %w", fi.Path, err)
		}
		readers = append(readers, rr)
	}
	return newConcatReader(readers, files), nil
}
