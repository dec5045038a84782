package ui

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

type viewData struct {
	View       *definitions.FeatureView
	Latest     registry.ObjectVersion
	Generation int
	History    []viewVersion
	Runs       []registry.MaterializationRun
	// RunsPrev and RunsNext link the neighbouring pages of runs (empty at either end).
	RunsPrev, RunsNext string
	RunsFrom           int
	Watermark          *registry.Watermark
	// Freshness is how far behind now the watermark is (the newest data materialized);
	// empty when the view has never been materialized.
	Freshness string
	Snapshots []snapshotRow
	Services  []relation
	Models    []relation
	TagList   []string
	// Features are the view's features, described (an aggregation's say what makes them).
	Features []definitions.Field
	// Aggregations and Windows (every window, shortest first) are set for an aggregation view.
	Aggregations []aggRow
	Windows      string
}

// aggRow is one aggregation of an aggregation view: a function of an event column over
// windows, and the features it makes.
type aggRow struct {
	Column, Function, Windows string
	Features                  []string
}

type snapshotRow struct {
	ID        int64
	RunID     registry.RunID
	Start     time.Time
	End       time.Time
	Committed time.Time
}

type viewVersion struct {
	registry.ObjectVersion
	Changes []fieldChange
}

// fieldChange is one difference between a view version and the one before it.
type fieldChange struct {
	Op   string // "added", "removed", "changed"
	What string
	From string
	To   string
}

// viewRunsPage is the number of materialization runs a feature view page shows at a time.
const viewRunsPage = 20

// diffViews is the field-level diff of one apply of a view (a is nil for the first
// version). An aggregation view's changes are told in its own terms — event columns and
// aggregations (function(column) and its windows) — not as the features they make.
func diffViews(a, b *definitions.FeatureView) []fieldChange {
	if a == nil {
		a = &definitions.FeatureView{TTL: b.TTL, Source: b.Source, Entities: b.Entities, Online: b.Online, Description: b.Description}
	}
	var out []fieldChange
	out = append(out, diffFields("feature", plainFeatures(a), plainFeatures(b))...)
	out = append(out, diffFields("column", a.Columns, b.Columns)...)
	out = append(out, diffAggregations(a.Aggregations, b.Aggregations)...)
	scalar := func(what, x, y string) {
		if x != y {
			out = append(out, fieldChange{Op: "changed", What: what, From: x, To: y})
		}
	}
	scalar("ttl", a.TTL.String(), b.TTL.String())
	scalar("source", a.Source, b.Source)
	scalar("entities", fmt.Sprint(a.Entities), fmt.Sprint(b.Entities))
	scalar("online", fmt.Sprint(a.Online), fmt.Sprint(b.Online))
	scalar("description", a.Description, b.Description)
	return out
}

// plainFeatures are a view's declared features; none for an aggregation view, whose
// features its aggregations make.
func plainFeatures(v *definitions.FeatureView) []definitions.Field {
	if v.IsAggregation() {
		return nil
	}
	return v.Features
}

// diffFields diffs two lists of fields (features or event columns) by name: added, removed,
// type or description changed.
func diffFields(what string, a, b []definitions.Field) []fieldChange {
	var out []fieldChange
	old := map[string]definitions.Field{}
	for _, f := range a {
		old[f.Name] = f
	}
	for _, f := range b {
		o, ok := old[f.Name]
		switch {
		case !ok:
			out = append(out, fieldChange{Op: "added", What: what + " " + f.Name, To: f.Type.String()})
		case o.Type.String() != f.Type.String():
			out = append(out, fieldChange{Op: "changed", What: "type of " + f.Name, From: o.Type.String(), To: f.Type.String()})
		}
		if ok && o.Description != f.Description {
			out = append(out, fieldChange{Op: "changed", What: "description of " + f.Name, From: o.Description, To: f.Description})
		}
		delete(old, f.Name)
	}
	for _, f := range a {
		if _, gone := old[f.Name]; gone {
			out = append(out, fieldChange{Op: "removed", What: what + " " + f.Name, From: f.Type.String()})
		}
	}
	return out
}

// aggName is how an aggregation is named in words: "sum(fare)".
func aggName(a definitions.Aggregation) string { return string(a.Function) + "(" + a.Column + ")" }

// windowList is an aggregation's windows as written: "1h, 1d, 7d".
func windowList(ws []definitions.Duration) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return strings.Join(parts, ", ")
}

// diffAggregations diffs two aggregation lists by function and column: added, removed, or
// windows changed.
func diffAggregations(a, b []definitions.Aggregation) []fieldChange {
	var out []fieldChange
	old := map[string]definitions.Aggregation{}
	for _, g := range a {
		old[aggName(g)] = g
	}
	for _, g := range b {
		o, ok := old[aggName(g)]
		switch {
		case !ok:
			out = append(out, fieldChange{Op: "added", What: "aggregation " + aggName(g), To: windowList(g.Windows)})
		case windowList(o.Windows) != windowList(g.Windows):
			out = append(out, fieldChange{Op: "changed", What: "windows of " + aggName(g), From: windowList(o.Windows), To: windowList(g.Windows)})
		}
		delete(old, aggName(g))
	}
	for _, g := range a {
		if _, gone := old[aggName(g)]; gone {
			out = append(out, fieldChange{Op: "removed", What: "aggregation " + aggName(g), From: windowList(g.Windows)})
		}
	}
	return out
}

// describeAggregations fills d's aggregation rows, the view's windows, and its features
// with descriptions of what makes each ("sum of fare over 1h").
func (d *viewData) describeAggregations() {
	v := d.View
	d.Features = slices.Clone(v.Features)
	if !v.IsAggregation() {
		return
	}
	made := map[string]definitions.AggFeature{}
	for _, f := range v.AggFeatures() {
		made[f.Name] = f
	}
	for i, f := range d.Features {
		if af, ok := made[f.Name]; ok && f.Description == "" {
			d.Features[i].Description = fmt.Sprintf("%s of %s over %s", af.Function, af.Column.Name, definitions.Duration(af.Window))
		}
	}
	var windows []definitions.Duration
	for _, g := range v.Aggregations {
		row := aggRow{Column: g.Column, Function: string(g.Function), Windows: windowList(g.Windows)}
		for _, w := range g.Windows {
			row.Features = append(row.Features, definitions.AggFeatureName(g.Column, g.Function, w))
			if !slices.Contains(windows, w) {
				windows = append(windows, w)
			}
		}
		d.Aggregations = append(d.Aggregations, row)
	}
	slices.Sort(windows)
	d.Windows = windowList(windows)
}

// featureView is GET /views/{name}.
func (s *Server) featureView(r *http.Request) (*page, error) {
	ctx, name, project := r.Context(), r.PathValue("name"), s.opts.Project
	reg := s.opts.Registry
	hist, err := reg.ObjectHistory(ctx, project, definitions.KindFeatureView, name)
	if err != nil {
		return nil, err
	}
	d := &viewData{Latest: hist[len(hist)-1]}
	var prev *definitions.FeatureView
	for _, h := range hist {
		vv := viewVersion{ObjectVersion: h}
		if h.Deleted {
			vv.Changes = []fieldChange{{Op: "removed", What: "the view"}}
			prev = nil
		} else if o, err := definitions.DecodeSpec(definitions.KindFeatureView, h.Spec); err == nil {
			cur := o.(*definitions.FeatureView)
			vv.Changes = diffViews(prev, cur)
			prev = cur
			d.View = cur
		}
		d.History = append(d.History, vv)
	}
	slices.Reverse(d.History)
	if d.View == nil || d.Latest.Deleted {
		return nil, notFoundf("feature view %q was removed in revision %d", name, d.Latest.Revision)
	}
	d.TagList = (&item{Tags: d.View.Tags}).tagList()
	d.describeAggregations()
	gens, err := reg.Generations(ctx, project)
	if err != nil {
		return nil, err
	}
	d.Generation = registry.Generation(gens, name)
	// Runs are paged with ?runs=N (1-based), newest first. The registry lists runs from the
	// newest with a limit, so page N reads N pages; views rarely have more than a few
	// thousand runs.
	pageN := 1
	if v := r.URL.Query().Get("runs"); v != "" {
		if pageN, err = strconv.Atoi(v); err != nil || pageN < 1 || pageN > 1000 {
			return nil, badRequestf("runs page %q: want a page number from 1 to 1000", v)
		}
	}
	off := (pageN - 1) * viewRunsPage
	runs, err := reg.ListRuns(ctx, registry.RunFilter{Project: project, View: name, Limit: off + viewRunsPage + 1})
	if err != nil {
		return nil, err
	}
	d.Runs = runs[min(off, len(runs)):min(off+viewRunsPage, len(runs))]
	d.RunsFrom = off + 1
	if len(runs) > off+viewRunsPage {
		d.RunsNext = withQuery(r.URL, "runs", strconv.Itoa(pageN+1)) + "#runs-h"
	}
	if pageN > 1 {
		d.RunsPrev = withQuery(r.URL, "runs", strconv.Itoa(pageN-1)) + "#runs-h"
	}
	switch wm, err := reg.Watermark(ctx, project, name); {
	case err == nil:
		d.Watermark = &wm
		d.Freshness = age(s.opts.Now().Sub(wm.Time))
	case !errors.Is(err, registry.ErrNotFound):
		return nil, err
	}
	for _, run := range d.Runs {
		if run.OfflineSnapshotID != 0 {
			d.Snapshots = append(d.Snapshots, snapshotRow{ID: run.OfflineSnapshotID, RunID: run.ID, Start: run.Start, End: run.End, Committed: run.FinishedAt})
		}
	}
	services, err := reg.ListObjects(ctx, project, definitions.KindFeatureService)
	if err != nil {
		return nil, err
	}
	using := map[string]bool{}
	for _, sv := range services {
		o, err := definitions.DecodeSpec(definitions.KindFeatureService, sv.Spec)
		if err != nil {
			continue
		}
		for _, f := range o.(*definitions.FeatureService).Features {
			if f.View == name {
				using[sv.Name] = true
				d.Services = append(d.Services, relation{"feature service", sv.Name, kindPath(definitions.KindFeatureService, sv.Name)})
				break
			}
		}
	}
	if len(using) > 0 {
		if d.Models, err = s.modelsUsing(r, using); err != nil {
			return nil, err
		}
	}
	return &page{Template: "view", Title: "Feature view " + name, Nav: "catalog",
		Crumbs: []crumb{{"Catalog", "/?kind=feature_view"}}, Data: d}, nil
}

// age writes a duration the way people say it: "3 days", "5 hours", "40 minutes".
func age(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d >= 48*time.Hour:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		s = fmt.Sprintf("%d hours", int(d/time.Hour))
	case d >= 2*time.Minute:
		s = fmt.Sprintf("%d minutes", int(d/time.Minute))
	default:
		s = fmt.Sprintf("%d seconds", int(d/time.Second))
	}
	if neg {
		return s + " ahead of now"
	}
	return s + " behind now"
}
