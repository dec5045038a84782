package training

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/pitjoin"
	"github.com/quiverfs/quiver/offline/trino"
	"github.com/quiverfs/quiver/registry"
)

// Registry is the part of the registry dataset building needs. It reads no definitions:
// those joined, and named in the lineage, are the catalog snapshot's.
type Registry interface {
	registry.DatasetStore
	registry.DatasetBuilds
}

// DatasetRequest asks for a training dataset of a feature service's features for entity rows.
type DatasetRequest struct {
	Project string
	Name    string
	Service string
	// Entities is the entity rows file (Parquet or CSV).
	Entities string
	// At pins the offline tables: each view is read at its latest snapshot committed at or
	// before At; zero means each view's latest snapshot.
	At time.Time
	// CreatedCutoff also requires created_ts <= the row's event_timestamp.
	CreatedCutoff bool
	// RejectNaiveTimestamps refuses an entity file whose timestamps have no time zone
	// instead of reading them as UTC.
	RejectNaiveTimestamps bool
	// Rebuild builds a new version even when one with the same inputs exists.
	Rebuild bool
	// Engine is "local" (the in-process join over Entities, the default) or "trino" (the join
	// pushed down to Trino over EntitiesSQL, reading the offline tables through Trino's Iceberg
	// catalog under TrinoNamespace).
	Engine         string
	EntitiesSQL    string
	Trino          *trino.Client
	TrinoNamespace string
	// TrinoStage, when set, makes the trino engine write the join's result with CREATE TABLE
	// AS into TrinoStageSchema of the shared catalog and read its files back through
	// TrinoStage (trinostage.go), instead of pulling the rows through the coordinator.
	TrinoStage       StagedTables
	TrinoStageSchema string
	// TrinoStagePartitionRows is how many entity rows one partition of the staging table
	// holds; 0 means StagePartitionRows.
	TrinoStagePartitionRows int64
	// Pause, if set, is called at named points of a build ("dataset-staged": after Trino
	// wrote the staging table, before it is read); a fault-injection hook for the kill -9
	// tests.
	Pause func(ctx context.Context, point string)
	// Warehouse is the warehouse root; the dataset's files go under
	// projects/PROJECT/datasets/ (see ProjectDir).
	Warehouse string
	// MemoryBudget bounds the join's memory (see pitjoin.Options); 0 means its default.
	MemoryBudget int64
	// QuiverVersion is recorded in the lineage.
	QuiverVersion string
	// CreatedBy names who built it.
	CreatedBy string
	// Progress, if set, is called with output rows written so far and the total.
	Progress func(done, total int64)
}

// DatasetResult is a built (or reused) dataset version.
type DatasetResult struct {
	Dataset registry.Dataset
	Dir     string
	Stats   pitjoin.Stats
	// Warnings name the views whose offline tables begin after some of the entity rows:
	// those rows have nulls for the view's features whatever its source holds.
	Warnings []CoverageWarning
	// Reused: a version of the same name built from the same inputs exists and is intact;
	// it is returned and nothing was built.
	Reused bool
}

// CreateDataset builds a point-in-time-correct dataset snapshot of the definitions in snap
// and registers it as the next version of req.Name. Its lineage names the versions and hashes
// of snap's definitions, exactly those joined, whatever is applied meanwhile. It reads each of the service's views from the offline store at a pinned
// snapshot (only the needed columns and the needed time range) and joins them onto the entity
// rows. The build is recorded in the registry before any file is written; the snapshot is
// written to the build's own staging folder, moved with one rename to the folder named by its
// content id (or dropped, when identical content is stored already), and registered: the
// registry numbers the version in the same transaction that ends the build. A failure or a
// kill registers nothing, and the next build removes what a dead one left.
func CreateDataset(ctx context.Context, reg Registry, store offline.Reader, snap *catalog.Snapshot, req DatasetRequest) (*DatasetResult, error) {
	repo := snap.Repo
	if !definitions.ValidName(req.Name) {
		return nil, fmt.Errorf("%w: dataset name %q: use letters, digits and '_'", ErrInvalidInput, req.Name)
	}
	svc := repo.FeatureService(req.Service)
	if svc == nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, repo.UnknownError(definitions.KindFeatureService, req.Service))
	}
	features, err := repo.ResolveService(req.Service)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	// Views in the order the service first names them, each with its requested features.
	type viewPlan struct {
		view     *definitions.FeatureView
		features []string
		keys     []definitions.Field
		ref      ViewInput
	}
	var plans []*viewPlan
	byView := map[string]*viewPlan{}
	keySet := map[string]definitions.Field{}
	var keys []definitions.Field
	addFeature := func(v *definitions.FeatureView, feature string) error {
		p := byView[v.Name]
		if p == nil {
			p = &viewPlan{view: v, keys: repo.JoinKeys(v)}
			byView[v.Name] = p
			plans = append(plans, p)
			for _, k := range p.keys {
				if prev, ok := keySet[k.Name]; ok && prev.Type != k.Type {
					return fmt.Errorf("%w: join key %q is %s in one view and %s in another", ErrInvalidInput, k.Name, prev.Type, k.Type)
				} else if !ok {
					keySet[k.Name] = k
					keys = append(keys, k)
				}
			}
		}
		if !slices.Contains(p.features, feature) {
			p.features = append(p.features, feature)
		}
		return nil
	}
	for _, f := range features {
		if f.OnDemand != nil {
			continue
		}
		if err := addFeature(f.View, f.Feature.Name); err != nil {
			return nil, err
		}
	}
	// On-demand features: the stored features they read are joined too (ondemand.go).
	od, err := planOnDemand(repo, features)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if od != nil {
		for _, n := range od.in.Store {
			if err := addFeature(repo.FeatureView(n.Input), n.Field.Name); err != nil {
				return nil, err
			}
		}
	}

	// Lineage: the definition versions resolved to, and the offline snapshot of each view.
	lineage := Lineage{
		FeatureService: objectRef(snap.Ref(definitions.KindFeatureService, req.Service)),
		Engine:         "local",
		CreatedCutoff:  req.CreatedCutoff,
		QuiverVersion:  req.QuiverVersion,
	}
	// Each view is read from the table of its current definition generation only: rows
	// written for an earlier definition are never joined.
	for _, p := range plans {
		gen := snap.Generation(p.view.Name)
		pinned, err := pinSnapshot(ctx, store, p.view.Name, gen, req.At)
		if err != nil {
			return nil, err
		}
		p.ref = ViewInput{ObjectRef: objectRef(snap.Ref(definitions.KindFeatureView, p.view.Name)), OfflineSnapshotID: pinned}
		if gen > 1 {
			p.ref.Generation = gen
		}
		lineage.FeatureViews = append(lineage.FeatureViews, p.ref)
	}
	if od != nil {
		for _, v := range od.views {
			lineage.OnDemandViews = append(lineage.OnDemandViews, objectRef(snap.Ref(definitions.KindOnDemandView, v.view.Def.Name)))
		}
	}

	var (
		inputsHash string
		out        *joined
		bld        *build
	)
	switch req.Engine {
	case "", EngineLocal:
		ent := EntityFile{Path: req.Entities, Keys: keys, RejectNaiveTimestamps: req.RejectNaiveTimestamps}
		sum, err := HashFile(req.Entities)
		if err != nil {
			return nil, fmt.Errorf("%w: entity file: %w", ErrInvalidInput, err)
		}
		lineage.Engine = EngineLocal
		lineage.Entities = EntityInput{Kind: "file", Path: filepath.Base(req.Entities), SHA256: sum}
		inputsHash = InputsHash(lineage)
		if prev, err := reg.FindDatasetByInputs(ctx, req.Project, req.Name, inputsHash); err == nil && !req.Rebuild {
			// The same inputs were built before under this name: reuse, never rebuild.
			dir := DatasetDir(req.Warehouse, prev)
			if _, verr := Verify(dir, prev.ContentID); verr == nil {
				return &DatasetResult{Dataset: prev, Dir: dir, Reused: true}, nil
			}
		} else if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return nil, fmt.Errorf("look up datasets: %w", err)
		}
		if bld, err = beginBuild(ctx, reg, req); err != nil {
			return nil, err
		}
		defer bld.abandon()
		var views []pitjoin.View
		for _, p := range plans {
			views = append(views, localView(store, p.view, p.ref.Generation, p.keys, p.features, p.ref.OfflineSnapshotID))
		}
		if out, err = joinLocal(ctx, ent, views, bld.dir, req); err != nil {
			return nil, err
		}
		if out.total == 0 {
			out.close()
			return nil, fmt.Errorf("%w: entity file %s has no rows", ErrInvalidInput, req.Entities)
		}
		lineage.Entities.Rows = out.total
	case EngineTrino:
		if req.Trino == nil || req.EntitiesSQL == "" {
			return nil, fmt.Errorf("%w: the trino engine needs a Trino connection (trino.dsn) and entity rows as SQL (--entities-sql)", ErrInvalidInput)
		}
		lineage.Engine = EngineTrino
		lineage.Entities = EntityInput{Kind: "sql", SQL: req.EntitiesSQL}
		// A query's result changes as its tables do, so SQL inputs are never reused.
		inputsHash = InputsHash(lineage)
		var views []trino.JoinView
		for _, p := range plans {
			names := make([]string, len(p.keys))
			for j, k := range p.keys {
				names[j] = k.Name
			}
			jv := trino.JoinView{Name: p.view.Name, Table: req.TrinoNamespace + "." + iceberg.TableName(p.view.Name, p.ref.Generation), SnapshotID: p.ref.OfflineSnapshotID,
				JoinKeys: names, TTL: p.view.TTL.Std(), Features: p.features}
			if p.view.IsAggregation() {
				jv.Features, jv.TTL, jv.Aggregations = nil, 0, trinoAggregations(p.view, p.features)
			}
			views = append(views, jv)
		}
		if bld, err = beginBuild(ctx, reg, req); err != nil {
			return nil, err
		}
		defer bld.abandon()
		if out, err = joinTrino(ctx, req, views, bld); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: unknown engine %q; valid engines: local, trino", ErrInvalidInput, req.Engine)
	}
	defer out.close()

	// The engines emit features view by view; a dataset has them in the service's declared
	// order, which is also the order serving feeds a model.
	nJoined := 0
	for _, p := range plans {
		nJoined += len(p.features)
	}
	nEntity := out.schema.NumFields() - nJoined
	// joinedCol is the joined column of a view's feature: the engines emit them view by view.
	joinedCol := func(view, feature string) int {
		n := nEntity
		for _, p := range plans {
			if p.view.Name == view {
				return n + slices.Index(p.features, feature)
			}
			n += len(p.features)
		}
		return -1
	}
	if od != nil {
		if err := od.bind(out.schema, nEntity, joinedCol); err != nil {
			return nil, err
		}
	}
	// perm[i] is the joined column of output column i, or -1-k for the k-th on-demand column.
	perm := make([]int, nEntity+len(features))
	columns := make([]ColumnInfo, len(perm))
	fields := make([]arrow.Field, len(perm))
	var odIdx [][2]int // on-demand output columns: (view, feature) of od
	for i := range perm {
		perm[i] = i
		columns[i].Role = "entity"
		if i < nEntity {
			fields[i] = out.schema.Field(i)
			continue
		}
		f := features[i-nEntity]
		columns[i].Role, columns[i].Feature = "feature", f.Ref()
		if f.OnDemand == nil {
			perm[i] = joinedCol(f.View.Name, f.Feature.Name)
			fields[i] = out.schema.Field(perm[i])
			continue
		}
		vi := slices.IndexFunc(od.views, func(v *datasetODView) bool { return v.view.Def.Name == f.OnDemand.Name })
		k := slices.IndexFunc(od.views[vi].features, func(fi int) bool { return od.views[vi].view.Def.Features[fi].Name == f.Feature.Name })
		perm[i] = -1 - len(odIdx)
		odIdx = append(odIdx, [2]int{vi, k})
		dt, err := offline.ArrowType(f.Feature.Type)
		if err != nil {
			return nil, err
		}
		fields[i] = arrow.Field{Name: f.Feature.Name, Type: dt, Nullable: true}
	}
	md := out.schema.Metadata()
	schema := arrow.NewSchema(fields, &md)
	cov, err := newCoverage(ctx, store, lineage.FeatureViews)
	if err != nil {
		return nil, err
	}
	cov.bind(schema)
	var done int64
	staged, err := WriteStaged(ctx, bld.dir, schema, columns, &lineage,
		func(ctx context.Context) (arrow.RecordBatch, error) {
			joinedRec, err := out.next(ctx)
			if err != nil {
				return nil, err
			}
			var computed [][]arrow.Array
			if od != nil {
				if computed, err = od.compute(joinedRec, done); err != nil {
					joinedRec.Release()
					return nil, err
				}
			}
			cols := make([]arrow.Array, len(perm))
			for i, j := range perm {
				if j >= 0 {
					cols[i] = joinedRec.Column(j)
				} else {
					x := odIdx[-1-j]
					cols[i] = computed[x[0]][x[1]]
				}
			}
			rec := array.NewRecordBatch(schema, cols, joinedRec.NumRows())
			joinedRec.Release()
			for _, cs := range computed {
				for _, c := range cs {
					c.Release()
				}
			}
			done += rec.NumRows()
			cov.add(rec)
			if lineage.Entities.Kind == "sql" {
				lineage.Entities.Rows = done
			}
			if req.Progress != nil {
				req.Progress(done, out.total)
			}
			return rec, nil
		}, WriteOptions{})
	if err != nil {
		return nil, err
	}
	ds, dir, err := publish(ctx, reg, staged, bld, req, inputsHash)
	if err != nil {
		return nil, err
	}
	return &DatasetResult{Dataset: ds, Dir: dir, Stats: out.stats(), Warnings: cov.result()}, nil
}

// Join engines.
const (
	EngineLocal = "local"
	EngineTrino = "trino"
)

// joined is a join's output, whichever engine ran it.
type joined struct {
	schema *arrow.Schema
	// next returns the next batch (owned by the caller), or io.EOF.
	next  func(ctx context.Context) (arrow.RecordBatch, error)
	total int64 // output rows, or -1 when unknown until the end
	stats func() pitjoin.Stats
	close func()
}

// localView reads a view's feature rows from the offline store at a pinned snapshot: only
// the needed columns, and only the time range the entity rows can reach (which the engine
// passes to Open).
func localView(store offline.Reader, v *definitions.FeatureView, generation int, keys []definitions.Field, features []string, snap int64) pitjoin.View {
	names := make([]string, len(keys))
	for j, k := range keys {
		names[j] = k.Name
	}
	view := pitjoin.View{Name: v.Name, JoinKeys: names, TTL: v.TTL.Std(), Features: features}
	if v.IsAggregation() { // the table holds raw events: read the columns the aggregations use
		view.Aggregations, features = pitjoin.AggregationsFor(v, features)
		view.Features, view.TTL = nil, 0
	}
	cols := append(append(append([]string{}, names...), pitjoin.EventTSColumn, pitjoin.CreatedTSColumn), features...)
	view.Open = func(ctx context.Context, er pitjoin.EventRange) (array.RecordReader, error) {
		if snap == 0 || er.Empty { // never materialized, or no entity row can match
			return emptyViewReader(v, keys, features)
		}
		rng := offline.Range{Start: er.From, End: er.To.Add(time.Microsecond)}
		if er.From.IsZero() {
			rng.Start = time.Unix(0, 0).UTC()
		}
		s, err := store.Scan(ctx, v.Name, offline.ScanRequest{SnapshotID: snap, Columns: cols, Range: rng, Generation: generation})
		if err != nil {
			return nil, fmt.Errorf("read offline table of %q at snapshot %d: %w", v.Name, snap, err)
		}
		return newStreamReader(ctx, s), nil
	}
	return view
}

// joinLocal runs the in-process engine over the entity file.
func joinLocal(ctx context.Context, ent EntityFile, views []pitjoin.View, buildDir string, req DatasetRequest) (*joined, error) {
	entityRows, err := ent.Open(ctx)
	if err != nil {
		return nil, err
	}
	// Spill files live in the build's staging folder, so a killed build's are reaped with it.
	spillDir := filepath.Join(buildDir, "spill")
	if err := os.MkdirAll(spillDir, 0o755); err != nil {
		entityRows.Release()
		return nil, fmt.Errorf("create spill directory: %w", err)
	}
	result, err := pitjoin.Join(ctx, entityRows, views, pitjoin.Options{
		MemoryBudget:  req.MemoryBudget,
		TempDir:       spillDir,
		CreatedCutoff: req.CreatedCutoff,
		Fold:          true, // fixed-width views with small keys join in O(entity rows) memory (pitjoin.Options.Fold)
	})
	entityRows.Release()
	if err != nil {
		return nil, classifyJoinError(err)
	}
	return &joined{
		schema: result.Schema(),
		total:  result.NumRows(),
		next: func(ctx context.Context) (arrow.RecordBatch, error) {
			if !result.Next() {
				if err := result.Err(); err != nil {
					return nil, classifyJoinError(err)
				}
				return nil, io.EOF
			}
			rec := result.RecordBatch()
			rec.Retain()
			return rec, nil
		},
		stats: result.Stats,
		close: result.Release,
	}, nil
}

// joinTrino pushes the join down to Trino as one statement and streams its result.
func joinTrino(ctx context.Context, req DatasetRequest, views []trino.JoinView, bld *build) (*joined, error) {
	cols, err := req.Trino.Columns(ctx, req.EntitiesSQL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	spec := trino.JoinSpec{Entities: req.EntitiesSQL, EntityColumns: cols, Views: views, CreatedCutoff: req.CreatedCutoff}
	if req.TrinoStage != nil {
		return joinTrinoStaged(ctx, req, spec, bld)
	}
	q, err := trino.BuildJoinSQL(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	stream, err := req.Trino.Query(ctx, q, 0, nil)
	if err != nil {
		return nil, err
	}
	return &joined{
		schema: stream.Schema(),
		total:  -1,
		next:   stream.Next,
		stats:  func() pitjoin.Stats { return pitjoin.Stats{} },
		close:  func() { stream.Close() },
	}, nil
}

// objectRef is a catalog reference as the lineage records it.
func objectRef(r catalog.Ref) ObjectRef {
	return ObjectRef{Name: r.Name, Version: r.Version, Hash: r.Hash}
}

// publish moves the staged snapshot to the folder named by its content id and registers it as
// the next version, ending the build. When that folder exists already (the same content was
// built before) and is intact, the staged copy is dropped and the version points at the stored
// one; a damaged stored copy is replaced.
func publish(ctx context.Context, reg Registry, staged *Staged, bld *build, req DatasetRequest, inputsHash string) (registry.Dataset, string, error) {
	dir := ContentDir(req.Warehouse, req.Project, staged.ContentID)
	if err := staged.Publish(dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, ManifestFile)); serr != nil {
			return registry.Dataset{}, "", err
		}
		if _, verr := Verify(dir, staged.ContentID); verr == nil {
			_ = staged.Discard()
		} else {
			// Replace the damaged copy: versions pointing at it get intact files back.
			if err := os.Rename(dir, filepath.Join(bld.dir, "damaged")); err != nil {
				return registry.Dataset{}, "", fmt.Errorf("replace damaged dataset content %s: %w", dir, err)
			}
			if err := staged.Publish(dir); err != nil {
				return registry.Dataset{}, "", err
			}
		}
	}
	// A fresh modification time keeps gc, which spares recent content, away from the folder
	// until the version below is registered.
	now := time.Now()
	_ = os.Chtimes(dir, now, now)
	rel, rerr := filepath.Rel(req.Warehouse, dir)
	if rerr != nil {
		return registry.Dataset{}, "", fmt.Errorf("dataset %s location: %w", req.Name, rerr)
	}
	ds, err := reg.FinishDatasetBuild(ctx, bld.rec.ID, registry.Dataset{
		Project: req.Project, Name: req.Name, ContentID: staged.ContentID, InputsHash: inputsHash,
		Location: filepath.ToSlash(rel), Rows: staged.Manifest.Rows, Manifest: json.RawMessage(staged.Raw), CreatedBy: req.CreatedBy,
	})
	if err != nil {
		return registry.Dataset{}, "", fmt.Errorf("register dataset %s: %w", req.Name, err)
	}
	bld.finished = true
	return ds, dir, nil
}

// InputsHash identifies what a dataset is built from (everything in the lineage but the row
// count, which is learnt while building), so an identical request can reuse it.
func InputsHash(l Lineage) string {
	l.Entities.Rows = 0
	b, _ := json.Marshal(l)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pinSnapshot picks the snapshot of a view's table to read: the latest, or the latest
// committed at or before at. 0 when the view has never been materialized.
func pinSnapshot(ctx context.Context, store offline.Reader, view string, generation int, at time.Time) (int64, error) {
	// A store that expires snapshots (quiver gc) says when a time is before what it kept.
	if rc, ok := store.(interface {
		CheckRetention(ctx context.Context, view string, generation int, at time.Time) error
	}); ok && !at.IsZero() {
		if err := rc.CheckRetention(ctx, view, generation, at); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
	}
	snaps, err := store.Snapshots(ctx, view, generation)
	if errors.Is(err, offline.ErrTableNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list offline snapshots of %q: %w", view, err)
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].Committed.Before(snaps[j].Committed) })
	var id int64
	for _, s := range snaps {
		if at.IsZero() || !s.Committed.After(at) {
			id = s.ID
		}
	}
	if id == 0 && !at.IsZero() && len(snaps) > 0 {
		return 0, fmt.Errorf("%w: feature view %q has no offline snapshot at or before %s (its first is %s)", ErrInvalidInput, view, at.Format(time.RFC3339), snaps[0].Committed.Format(time.RFC3339))
	}
	return id, nil
}

func classifyJoinError(err error) error {
	if errors.Is(err, pitjoin.ErrInvalidInput) {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return err
}

// trinoAggregations are the pushed-down aggregations for the named features of an aggregation
// view.
func trinoAggregations(v *definitions.FeatureView, features []string) []trino.JoinAggregation {
	var out []trino.JoinAggregation
	for _, af := range v.AggFeatures() {
		if !slices.Contains(features, af.Name) {
			continue
		}
		el := af.Column.Type.Elem
		out = append(out, trino.JoinAggregation{Name: af.Name, Column: af.Column.Name, Function: string(af.Function), Window: af.Window,
			Float: el == definitions.Float32 || el == definitions.Float64})
	}
	// In the order the features were asked for, which is the order the join emits them.
	slices.SortStableFunc(out, func(a, b trino.JoinAggregation) int {
		return slices.Index(features, a.Name) - slices.Index(features, b.Name)
	})
	return out
}
