package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// histogramBins is the number of bars of a column's distribution sparkline.
const histogramBins = 20

// columnStats is a column's statistics with its distribution.
type columnStats struct {
	training.ColumnStats
	Histogram []int64
}

// statsCache keeps the statistics of recently viewed snapshots by content id: a snapshot
// never changes, so they are computed once.
type statsCache struct {
	mu    sync.Mutex
	max   int
	order []string
	m     map[string][]columnStats
}

func newStatsCache(n int) *statsCache { return &statsCache{max: n, m: map[string][]columnStats{}} }

func (c *statsCache) get(id string) ([]columnStats, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[id]
	return v, ok
}

func (c *statsCache) put(id string, v []columnStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		return
	}
	if len(c.order) >= c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, id)
	c.m[id] = v
}

// snapshotStats reads a dataset's snapshot for its column statistics and histograms.
func (s *Server) snapshotStats(ctx context.Context, ds registry.Dataset) ([]columnStats, error) {
	if st, ok := s.stats.get(ds.ContentID); ok {
		return st, nil
	}
	wh := s.opts.Warehouse
	if wh == "" || strings.Contains(wh, "://") {
		return nil, fmt.Errorf("the warehouse %q is not a local directory", wh)
	}
	if ds.Rows > s.opts.MaxStatsRows {
		return nil, fmt.Errorf("the snapshot has %d rows and the UI computes statistics for up to %d (quiver dataset diff computes them for any size)", ds.Rows, s.opts.MaxStatsRows)
	}
	dir := training.DatasetDir(wh, ds)
	m, _, err := training.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	base, err := training.Stats(ctx, dir, m)
	if err != nil {
		return nil, err
	}
	out := make([]columnStats, len(base))
	for i, b := range base {
		out[i] = columnStats{ColumnStats: b}
		if b.Numeric && b.Rows > b.Nulls {
			out[i].Histogram = make([]int64, histogramBins)
		}
	}
	rr, err := training.OpenFiles(ctx, dir, m)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	for rr.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for c, col := range rr.RecordBatch().Columns() {
			h := out[c].Histogram
			if h == nil {
				continue
			}
			lo, hi := out[c].Min, out[c].Max
			for i := 0; i < col.Len(); i++ {
				v, ok := numeric(col, i)
				if !ok {
					continue
				}
				b := 0
				if hi > lo {
					b = min(int((v-lo)/(hi-lo)*histogramBins), histogramBins-1)
				}
				h[b]++
			}
		}
	}
	if err := rr.Err(); err != nil {
		return nil, err
	}
	s.stats.put(ds.ContentID, out)
	return out, nil
}

func numeric(col arrow.Array, i int) (float64, bool) {
	if col.IsNull(i) {
		return 0, false
	}
	switch a := col.(type) {
	case *array.Int32:
		return float64(a.Value(i)), true
	case *array.Int64:
		return float64(a.Value(i)), true
	case *array.Float32:
		return float64(a.Value(i)), !math.IsNaN(float64(a.Value(i)))
	case *array.Float64:
		return a.Value(i), !math.IsNaN(a.Value(i))
	case *array.Boolean:
		if a.Value(i) {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

type datasetRow struct {
	Name     string
	Versions int
	Latest   registry.Dataset
}

type datasetsData struct {
	Datasets []datasetRow
	Pager    pager
}

// datasets is GET /datasets?page=: every dataset name with its latest version.
func (s *Server) datasets(r *http.Request) (*page, error) {
	all, err := s.opts.Registry.ListDatasets(r.Context(), s.opts.Project, "")
	if err != nil {
		return nil, err
	}
	byName := map[string]*datasetRow{}
	for _, ds := range all {
		row := byName[ds.Name]
		if row == nil {
			row = &datasetRow{Name: ds.Name}
			byName[ds.Name] = row
		}
		row.Versions++
		if ds.Version > row.Latest.Version {
			row.Latest = ds
		}
	}
	names := sortedKeys(byName)
	off, pg, err := paginate(r, int64(len(names)), PageSize)
	if err != nil {
		return nil, err
	}
	d := &datasetsData{Pager: pg}
	for _, n := range names[min(off, len(names)):min(off+PageSize, len(names))] {
		d.Datasets = append(d.Datasets, *byName[n])
	}
	return &page{Template: "datasets", Title: "Datasets", Nav: "datasets", Data: d}, nil
}

// datasetVersions is GET /datasets/{name}: the latest version's page.
func (s *Server) datasetVersions(r *http.Request) (*page, error) {
	ds, err := s.opts.Registry.GetDataset(r.Context(), s.opts.Project, r.PathValue("name"), 0)
	if err != nil {
		return nil, err
	}
	return s.datasetPage(r, ds)
}

// dataset is GET /datasets/{name}/v/{version}.
func (s *Server) dataset(r *http.Request) (*page, error) {
	v, err := versionArg(r.PathValue("version"))
	if err != nil {
		return nil, err
	}
	ds, err := s.opts.Registry.GetDataset(r.Context(), s.opts.Project, r.PathValue("name"), v)
	if err != nil {
		return nil, err
	}
	return s.datasetPage(r, ds)
}

func versionArg(s string) (int, error) {
	v, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || v < 1 {
		return 0, badRequestf("version %q: want a version number from 1", s)
	}
	return v, nil
}

type datasetData struct {
	Dataset    registry.Dataset
	Manifest   *training.Manifest
	Versions   []registry.Dataset
	Columns    []datasetColumn
	StatsError string
	Models     []registry.ModelVersion
}

type datasetColumn struct {
	training.ColumnInfo
	FeatureURL string
	Stats      *columnStats
	Spark      template.HTML
	// Hidden, when set, says why the column's statistics are not shown (values.go).
	Hidden string
}

func (s *Server) datasetPage(r *http.Request, ds registry.Dataset) (*page, error) {
	ctx, reg := r.Context(), s.opts.Registry
	d := &datasetData{Dataset: ds}
	var m training.Manifest
	if err := json.Unmarshal(ds.Manifest, &m); err != nil {
		return nil, fmt.Errorf("dataset %s v%d: unreadable manifest: %w", ds.Name, ds.Version, err)
	}
	d.Manifest = &m
	versions, err := reg.ListDatasets(ctx, s.opts.Project, ds.Name)
	if err != nil {
		return nil, err
	}
	slices.Reverse(versions)
	d.Versions = versions
	hidden := make([]string, len(m.Schema))
	anyShown := false
	for i, c := range m.Schema {
		hidden[i] = s.hiddenBecause(r, c)
		anyShown = anyShown || hidden[i] == ""
	}
	var stats []columnStats
	if anyShown {
		if stats, err = s.snapshotStats(ctx, ds); err != nil {
			d.StatsError = err.Error()
		}
	}
	byName := map[string]*columnStats{}
	for i := range stats {
		byName[stats[i].Name] = &stats[i]
	}
	for i, c := range m.Schema {
		col := datasetColumn{ColumnInfo: c, Stats: byName[c.Name], Hidden: hidden[i]}
		if col.Hidden != "" {
			col.Stats = nil
		}
		if view, _, ok := strings.Cut(c.Feature, ":"); ok {
			col.FeatureURL = kindPath(definitions.KindFeatureView, view)
		}
		if col.Stats != nil && col.Stats.Histogram != nil {
			col.Spark = sparkline(col.Stats.Histogram, fmt.Sprintf("distribution of %s from %s to %s", c.Name, formatFloat(col.Stats.Min), formatFloat(col.Stats.Max)))
		}
		d.Columns = append(d.Columns, col)
	}
	if d.Models, err = reg.ModelVersionsTrainedOn(ctx, s.opts.Project, ds.Name, ds.Version); err != nil {
		return nil, err
	}
	return &page{Template: "dataset", Title: fmt.Sprintf("Dataset %s v%d", ds.Name, ds.Version), Nav: "datasets",
		Crumbs: []crumb{{"Datasets", "/datasets"}, {ds.Name, "/datasets/" + pathEscape(ds.Name)}}, Data: d}, nil
}

type diffData struct {
	Name     string
	A, B     registry.Dataset
	Diff     *training.DatasetDiff
	Error    string
	Stats    []statDiff
	Versions []registry.Dataset
}

type statDiff struct {
	Name                   string
	RowsA, RowsB           int64
	NullA, NullB           string
	MinA, MinB, MaxA, MaxB string
	MeanA, MeanB           string
	DistinctA, DistinctB   int64
	Changed                bool
	Hidden                 string // why the values are not shown (values.go)
}

// datasetDiff is GET /datasets/{name}/diff?a=V&b=W: schema, lineage and statistics of two
// versions side by side.
func (s *Server) datasetDiff(r *http.Request) (*page, error) {
	ctx, reg, name := r.Context(), s.opts.Registry, r.PathValue("name")
	q := r.URL.Query()
	va, err := versionArg(q.Get("a"))
	if err != nil {
		return nil, err
	}
	vb, err := versionArg(q.Get("b"))
	if err != nil {
		return nil, err
	}
	a, err := reg.GetDataset(ctx, s.opts.Project, name, va)
	if err != nil {
		return nil, err
	}
	b, err := reg.GetDataset(ctx, s.opts.Project, name, vb)
	if err != nil {
		return nil, err
	}
	d := &diffData{Name: name, A: a, B: b}
	if d.Versions, err = reg.ListDatasets(ctx, s.opts.Project, name); err != nil {
		return nil, err
	}
	wh := s.opts.Warehouse
	if wh == "" || strings.Contains(wh, "://") {
		d.Error = fmt.Sprintf("the warehouse %q is not a local directory: the snapshots cannot be read", wh)
	} else if diff, err := training.DiffDatasets(ctx, wh, a, b); err != nil {
		d.Error = err.Error()
	} else {
		d.Diff = diff
		sa, sb := diff.A.StatsByName(), diff.B.StatsByName()
		for _, c := range diff.B.Manifest.Schema {
			x, okA := sa[c.Name]
			y := sb[c.Name]
			if !okA {
				continue
			}
			if why := s.hiddenBecause(r, c); why != "" {
				d.Stats = append(d.Stats, statDiff{Name: c.Name, Hidden: why})
				continue
			}
			row := statDiff{Name: c.Name, RowsA: x.Rows, RowsB: y.Rows, NullA: pct(x.NullRate()), NullB: pct(y.NullRate()),
				DistinctA: x.Distinct, DistinctB: y.Distinct}
			if x.Numeric {
				row.MinA, row.MaxA, row.MeanA = formatFloat(x.Min), formatFloat(x.Max), formatFloat(x.Mean)
			}
			if y.Numeric {
				row.MinB, row.MaxB, row.MeanB = formatFloat(y.Min), formatFloat(y.Max), formatFloat(y.Mean)
			}
			row.Changed = row.NullA != row.NullB || row.MinA != row.MinB || row.MaxA != row.MaxB || row.MeanA != row.MeanB || row.DistinctA != row.DistinctB
			d.Stats = append(d.Stats, row)
		}
	}
	return &page{Template: "dataset_diff", Title: fmt.Sprintf("Dataset %s: v%d → v%d", name, va, vb), Nav: "datasets",
		Crumbs: []crumb{{"Datasets", "/datasets"}, {name, "/datasets/" + pathEscape(name)}}, Data: d}, nil
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }
