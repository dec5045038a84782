package ui

import (
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

type modelRow struct {
	Name           string
	Versions       int
	Latest         registry.ModelVersion
	Aliases        []string
	Declared       bool
	FeatureService string
}

type modelsData struct {
	Models []modelRow
	Pager  pager
}

// models is GET /models?page=: every model registered or declared, by name.
func (s *Server) models(r *http.Request) (*page, error) {
	ctx, reg, project := r.Context(), s.opts.Registry, s.opts.Project
	versions, err := reg.ListModelVersions(ctx, project, "")
	if err != nil {
		return nil, err
	}
	byName := map[string]*modelRow{}
	for _, v := range versions {
		m := byName[v.Name]
		if m == nil {
			m = &modelRow{Name: v.Name}
			byName[v.Name] = m
		}
		m.Versions++
		if v.Version > m.Latest.Version {
			m.Latest = v
			m.FeatureService = v.FeatureService
		}
	}
	declared, err := reg.ListObjects(ctx, project, definitions.KindModel)
	if err != nil {
		return nil, err
	}
	for _, o := range declared {
		m := byName[o.Name]
		if m == nil {
			m = &modelRow{Name: o.Name}
			byName[o.Name] = m
		}
		m.Declared = true
		if obj, err := definitions.DecodeSpec(definitions.KindModel, o.Spec); err == nil && m.FeatureService == "" {
			m.FeatureService = obj.(*definitions.Model).FeatureService
		}
	}
	aliases, err := reg.ListModelAliases(ctx, project, "")
	if err != nil {
		return nil, err
	}
	for _, a := range aliases {
		if m := byName[a.Name]; m != nil {
			m.Aliases = append(m.Aliases, fmt.Sprintf("%s → v%d", a.Alias, a.Version))
		}
	}
	names := sortedKeys(byName)
	off, pg, err := paginate(r, int64(len(names)), PageSize)
	if err != nil {
		return nil, err
	}
	d := &modelsData{Pager: pg}
	for _, n := range names[min(off, len(names)):min(off+PageSize, len(names))] {
		d.Models = append(d.Models, *byName[n])
	}
	return &page{Template: "models", Title: "Models", Nav: "models", Data: d}, nil
}

type modelData struct {
	Name     string
	Declared *definitions.Model
	Versions []registry.ModelVersion
	Pager    pager
	Aliases  []registry.ModelAlias
	History  []aliasMove
}

// aliasMove is one entry of an alias's audit trail, in words.
type aliasMove struct {
	registry.AliasEvent
	What string
}

// model is GET /models/{name}?page=: versions, aliases and who moved them when.
func (s *Server) model(r *http.Request) (*page, error) {
	ctx, reg, project, name := r.Context(), s.opts.Registry, s.opts.Project, r.PathValue("name")
	d := &modelData{Name: name}
	if o, err := reg.GetObject(ctx, project, definitions.KindModel, name, 0); err == nil {
		if obj, err := definitions.DecodeSpec(definitions.KindModel, o.Spec); err == nil {
			d.Declared = obj.(*definitions.Model)
		}
	}
	versions, err := reg.ListModelVersions(ctx, project, name)
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 && d.Declared == nil {
		return nil, notFoundf("model %q is neither declared nor registered in project %s", name, project)
	}
	slices.Reverse(versions) // newest first
	off, pg, err := paginate(r, int64(len(versions)), PageSize)
	if err != nil {
		return nil, err
	}
	d.Pager, d.Versions = pg, versions[min(off, len(versions)):min(off+PageSize, len(versions))]
	if d.Aliases, err = reg.ListModelAliases(ctx, project, name); err != nil {
		return nil, err
	}
	evs, err := reg.ModelAliasEvents(ctx, project, name, 200)
	if err != nil {
		return nil, err
	}
	for _, e := range evs {
		d.History = append(d.History, aliasMove{AliasEvent: e, What: describeMove(e)})
	}
	return &page{Template: "model", Title: "Model " + name, Nav: "models", Crumbs: []crumb{{"Models", "/models"}}, Data: d}, nil
}

func describeMove(e registry.AliasEvent) string {
	switch {
	case e.FromVersion == 0:
		return fmt.Sprintf("set %s to v%d", e.Alias, e.ToVersion)
	case e.ToVersion == 0:
		return fmt.Sprintf("removed %s (was v%d)", e.Alias, e.FromVersion)
	}
	return fmt.Sprintf("moved %s from v%d to v%d", e.Alias, e.FromVersion, e.ToVersion)
}

type modelVersionData struct {
	Version registry.ModelVersion
	Aliases []string
	Trace   *training.ModelTrace
	// TraceError says why the lineage stops early (the run or dataset cannot be read).
	TraceError string
	Graph      template.HTML
	Nodes      []gnode
}

// modelVersion is GET /models/{name}/v/{version}: the version and its lineage graph.
func (s *Server) modelVersion(r *http.Request) (*page, error) {
	ctx, reg, project, name := r.Context(), s.opts.Registry, s.opts.Project, r.PathValue("name")
	v, err := strconv.Atoi(strings.TrimPrefix(r.PathValue("version"), "v"))
	if err != nil || v < 1 {
		return nil, badRequestf("version %q: want a version number from 1", r.PathValue("version"))
	}
	mv, err := reg.GetModelVersion(ctx, project, name, v)
	if err != nil {
		return nil, err
	}
	d := &modelVersionData{Version: mv}
	aliases, err := reg.ListModelAliases(ctx, project, name)
	if err != nil {
		return nil, err
	}
	for _, a := range aliases {
		if a.Version == v {
			d.Aliases = append(d.Aliases, a.Alias)
		}
	}
	ref := fmt.Sprintf("%s@v%d", name, v)
	label := fmt.Sprintf("%s v%d", name, v)
	sub := strings.Join(d.Aliases, ", ")
	nodes := []gnode{{ID: "model", Kind: "model version", Label: label, Sub: sub, URL: fmt.Sprintf("/models/%s/v/%d", pathEscape(name), v), Col: 0}}
	var edges []gedge
	tr, err := training.TraceModel(ctx, reg, project, ref)
	if err != nil {
		d.TraceError = err.Error()
		if mv.FeatureService != "" {
			nodes = append(nodes, gnode{ID: "service", Kind: "feature service", Label: mv.FeatureService, URL: kindPath(definitions.KindFeatureService, mv.FeatureService), Col: 1})
			edges = append(edges, gedge{"model", "service"})
		}
	} else {
		d.Trace = tr
		nodes = append(nodes,
			gnode{ID: "run", Kind: "run", Label: string(tr.Run.ID), Sub: tr.Run.Job + " · " + string(tr.Run.Status), URL: "/runs/" + pathEscape(string(tr.Run.ID)), Col: 1},
			gnode{ID: "dataset", Kind: "dataset", Label: fmt.Sprintf("%s v%d", tr.Dataset.Name, tr.Dataset.Version), Sub: fmt.Sprintf("%d rows", tr.Dataset.Rows),
				URL: fmt.Sprintf("/datasets/%s/v/%d", pathEscape(tr.Dataset.Name), tr.Dataset.Version), Col: 2},
			gnode{ID: "service", Kind: "feature service", Label: tr.Lineage.FeatureService.Name, Sub: fmt.Sprintf("version %d", tr.Lineage.FeatureService.Version),
				URL: kindPath(definitions.KindFeatureService, tr.Lineage.FeatureService.Name), Col: 3})
		edges = append(edges, gedge{"model", "run"}, gedge{"run", "dataset"}, gedge{"dataset", "service"})
		for _, vt := range tr.Views {
			id := "view/" + vt.Name
			sub := fmt.Sprintf("version %d", vt.Version)
			if vt.Source != "" {
				sub += " · " + vt.Source
			}
			nodes = append(nodes, gnode{ID: id, Kind: "feature view", Label: vt.Name, Sub: sub, URL: kindPath(definitions.KindFeatureView, vt.Name), Col: 4})
			edges = append(edges, gedge{"service", id})
			if vt.OfflineSnapshotID != 0 {
				sid := "snapshot/" + vt.Name
				nodes = append(nodes, gnode{ID: sid, Kind: "offline snapshot", Label: strconv.FormatInt(vt.OfflineSnapshotID, 10), Sub: vt.Name,
					URL: kindPath(definitions.KindFeatureView, vt.Name) + "#snapshots", Col: 5})
				edges = append(edges, gedge{id, sid})
			}
		}
		// On-demand views: computed from request sources and the stored views they read.
		requests := map[string]bool{}
		for _, od := range tr.OnDemand {
			id := "ondemand/" + od.Name
			nodes = append(nodes, gnode{ID: id, Kind: "on-demand view", Label: od.Name, Sub: fmt.Sprintf("version %d", od.Version),
				URL: kindPath(definitions.KindOnDemandView, od.Name), Col: 4})
			edges = append(edges, gedge{"service", id})
			for _, rs := range od.RequestSources {
				rid := "request/" + rs.Name
				if !requests[rs.Name] {
					requests[rs.Name] = true
					sub := "request-time fields"
					if rs.Version != 0 {
						sub = fmt.Sprintf("version %d · request-time fields", rs.Version)
					}
					nodes = append(nodes, gnode{ID: rid, Kind: "request source", Label: rs.Name, Sub: sub, URL: kindPath(definitions.KindRequestSource, rs.Name), Col: 5})
				}
				edges = append(edges, gedge{id, rid})
			}
			for _, v := range od.Views {
				edges = append(edges, gedge{id, "view/" + v})
			}
		}
	}
	d.Nodes = nodes
	d.Graph = graphSVG("Lineage of "+label, nodes, edges)
	return &page{Template: "model_version", Title: "Model " + label, Nav: "models",
		Crumbs: []crumb{{"Models", "/models"}, {name, "/models/" + pathEscape(name)}}, Data: d}, nil
}
