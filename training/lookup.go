package training

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving/model"
)

// ParseModelRef parses NAME, NAME@vN, NAME@N or NAME@ALIAS.
func ParseModelRef(s string) (name string, version int, alias string) {
	r := model.ParseRef(s)
	version, _ = strconv.Atoi(r.Version)
	return r.Name, version, r.Alias
}

// ModelReader is the part of the registry model lookups read.
type ModelReader interface {
	GetModelVersion(ctx context.Context, project, name string, version int) (registry.ModelVersion, error)
	ResolveModelAlias(ctx context.Context, project, name, alias string) (registry.ModelVersion, error)
}

// ResolveModel resolves a model reference (see ParseModelRef) to a version of the project.
func ResolveModel(ctx context.Context, reg ModelReader, project, ref string) (registry.ModelVersion, error) {
	name, version, alias := ParseModelRef(ref)
	if alias != "" {
		return reg.ResolveModelAlias(ctx, project, name, alias) // its errors name the alias
	}
	mv, err := reg.GetModelVersion(ctx, project, name, version)
	if err != nil {
		return mv, fmt.Errorf("model %s: %w", ref, err)
	}
	return mv, nil
}

// TraceRegistry is the part of the registry TraceModel reads.
type TraceRegistry interface {
	ModelReader
	GetTrainingRun(ctx context.Context, id registry.TrainingRunID) (registry.TrainingRun, error)
	GetDataset(ctx context.Context, project, name string, version int) (registry.Dataset, error)
	GetObject(ctx context.Context, project string, kind definitions.Kind, name string, version int) (registry.ObjectVersion, error)
}

// ModelTrace is a model version's lineage: the run that made it, the dataset it trained on,
// what the dataset was built from, and each feature view's source.
type ModelTrace struct {
	Model   registry.ModelVersion
	Run     registry.TrainingRun
	Info    RunInfo
	Dataset registry.Dataset
	Lineage Lineage
	// Views are the dataset's feature views, in the lineage's order.
	Views []ViewTrace
	// OnDemand are the on-demand feature views the dataset computed, in the lineage's order.
	OnDemand []OnDemandTrace
}

// OnDemandTrace is one on-demand feature view a traced dataset computed, and what it reads.
type OnDemandTrace struct {
	ObjectRef
	// RequestSources are the request sources it reads, at the version the run recorded
	// (Version 0 when unknown); Views the feature views it reads. Both are empty when its
	// definition cannot be read.
	RequestSources []ObjectRef
	Views          []string
}

// ViewTrace is one feature view a traced dataset read.
type ViewTrace struct {
	ViewInput
	// Source is the view's source at the version read ("" when its definition cannot be
	// read); SourceVersion the source version the run recorded (0 when unknown).
	Source        string
	SourceVersion int
}

// TraceModel follows a model reference of project to its run, dataset and definitions.
func TraceModel(ctx context.Context, reg TraceRegistry, project, ref string) (*ModelTrace, error) {
	mv, err := ResolveModel(ctx, reg, project, ref)
	if err != nil {
		return nil, err
	}
	run, err := reg.GetTrainingRun(ctx, mv.RunID)
	if err != nil {
		return nil, fmt.Errorf("run %s of model %s v%d: %w", mv.RunID, mv.Name, mv.Version, err)
	}
	ds, err := reg.GetDataset(ctx, project, run.DatasetName, run.DatasetVersion)
	if err != nil {
		return nil, fmt.Errorf("dataset %s@v%d of run %s: %w", run.DatasetName, run.DatasetVersion, run.ID, err)
	}
	var m Manifest
	if err := json.Unmarshal(ds.Manifest, &m); err != nil {
		return nil, fmt.Errorf("dataset %s@v%d: unreadable manifest: %w", ds.Name, ds.Version, err)
	}
	tr := &ModelTrace{Model: mv, Run: run, Dataset: ds, Lineage: m.Lineage}
	_ = json.Unmarshal(run.Info, &tr.Info)
	for _, v := range m.Lineage.FeatureViews {
		vt := ViewTrace{ViewInput: v}
		if o, err := reg.GetObject(ctx, project, definitions.KindFeatureView, v.Name, v.Version); err == nil {
			if obj, err := definitions.DecodeSpec(definitions.KindFeatureView, o.Spec); err == nil {
				vt.Source = obj.(*definitions.FeatureView).Source
				vt.SourceVersion = tr.Info.Definitions["source/"+vt.Source]
			}
		}
		tr.Views = append(tr.Views, vt)
	}
	for _, od := range m.Lineage.OnDemandViews {
		ot := OnDemandTrace{ObjectRef: od}
		if o, err := reg.GetObject(ctx, project, definitions.KindOnDemandView, od.Name, od.Version); err == nil {
			if obj, err := definitions.DecodeSpec(definitions.KindOnDemandView, o.Spec); err == nil {
				for _, in := range obj.(*definitions.OnDemandFeatureView).Inputs {
					if v, ok := tr.Info.Definitions[string(definitions.KindRequestSource)+"/"+in]; ok {
						ot.RequestSources = append(ot.RequestSources, ObjectRef{Name: in, Version: v})
						continue
					}
					if _, err := reg.GetObject(ctx, project, definitions.KindRequestSource, in, 0); err == nil {
						ot.RequestSources = append(ot.RequestSources, ObjectRef{Name: in})
						continue
					}
					ot.Views = append(ot.Views, in)
				}
			}
		}
		tr.OnDemand = append(tr.OnDemand, ot)
	}
	return tr, nil
}

// DatasetSide is one dataset version of a diff, with its manifest and column statistics.
type DatasetSide struct {
	Dataset  registry.Dataset
	Manifest *Manifest
	// Stats are the columns' statistics, in the snapshot's column order.
	Stats []ColumnStats
}

// StatsByName indexes the statistics by column name.
func (s DatasetSide) StatsByName() map[string]ColumnStats {
	out := make(map[string]ColumnStats, len(s.Stats))
	for _, c := range s.Stats {
		out[c.Name] = c
	}
	return out
}

// ColumnChange is a column added (+), removed (-) or changed in type (~) from A to B.
type ColumnChange struct {
	Op       string // "+", "-" or "~"
	Name     string
	Type     string // A's type ("-", "~") or B's ("+")
	NewType  string // B's type, for "~"
	Nullable bool
}

// ViewChange is a feature view whose version or offline snapshot differs from A to B (Old is
// zero when A did not read the view).
type ViewChange struct {
	Old, New ViewInput
}

// DatasetDiff compares two dataset versions.
type DatasetDiff struct {
	A, B DatasetSide
	// Identical: same content id (nothing else below is set).
	Identical bool
	Columns   []ColumnChange
	// ServiceChanged, EntitiesChanged: the lineage's feature service or entity input differ.
	ServiceChanged, EntitiesChanged bool
	Views                           []ViewChange
}

// DiffDatasets compares the dataset versions a and b, whose files are under warehouse: schema,
// lineage and per-column statistics.
func DiffDatasets(ctx context.Context, warehouse string, a, b registry.Dataset) (*DatasetDiff, error) {
	var sides [2]DatasetSide
	for i, ds := range []registry.Dataset{a, b} {
		dir := DatasetDir(warehouse, ds)
		m, _, err := ReadManifest(dir)
		if err != nil {
			return nil, fmt.Errorf("dataset %s@v%d: %w", ds.Name, ds.Version, err)
		}
		st, err := Stats(ctx, dir, m)
		if err != nil {
			return nil, fmt.Errorf("dataset %s@v%d: %w", ds.Name, ds.Version, err)
		}
		sides[i] = DatasetSide{Dataset: ds, Manifest: m, Stats: st}
	}
	d := &DatasetDiff{A: sides[0], B: sides[1], Identical: a.ContentID == b.ContentID}
	if d.Identical {
		return d, nil
	}
	types := func(m *Manifest) map[string]string {
		out := map[string]string{}
		for _, c := range m.Schema {
			out[c.Name] = c.Type
		}
		return out
	}
	ma, mb := d.A.Manifest, d.B.Manifest
	ta, tb := types(ma), types(mb)
	for _, c := range ma.Schema {
		if t, ok := tb[c.Name]; !ok {
			d.Columns = append(d.Columns, ColumnChange{Op: "-", Name: c.Name, Type: c.Type})
		} else if t != c.Type {
			d.Columns = append(d.Columns, ColumnChange{Op: "~", Name: c.Name, Type: c.Type, NewType: t})
		}
	}
	for _, c := range mb.Schema {
		if _, ok := ta[c.Name]; !ok {
			d.Columns = append(d.Columns, ColumnChange{Op: "+", Name: c.Name, Type: c.Type})
		}
	}
	la, lb := ma.Lineage, mb.Lineage
	d.ServiceChanged = la.FeatureService != lb.FeatureService
	d.EntitiesChanged = la.Entities != lb.Entities
	old := map[string]ViewInput{}
	for _, v := range la.FeatureViews {
		old[v.Name] = v
	}
	for _, v := range lb.FeatureViews {
		if o, ok := old[v.Name]; !ok || o != v {
			d.Views = append(d.Views, ViewChange{Old: o, New: v})
		}
	}
	return d, nil
}
