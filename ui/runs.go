package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// chartPoints is the most points drawn per series: three pixels apart on a 900-pixel-wide chart.
const chartPoints = 300

// maxCompare is the most runs one comparison draws.
const maxCompare = 10

type runsData struct {
	Job, Status, Tag, Sort string
	Statuses               []registry.TrainingStatus
	Runs                   []registry.TrainingRun
	Pager                  pager
	Sorts                  []sortLink
}

// runs is GET /runs?job=&status=&tag=KEY[=VALUE]&sort=&page=.
func (s *Server) runs(r *http.Request) (*page, error) {
	q := r.URL.Query()
	d := &runsData{Job: q.Get("job"), Status: strings.ToUpper(q.Get("status")), Tag: q.Get("tag"), Sort: q.Get("sort"),
		Statuses: []registry.TrainingStatus{registry.TrainingRunning, registry.TrainingFinished, registry.TrainingFailed, registry.TrainingKilled}}
	if d.Sort == "" {
		d.Sort = registry.SortStartedDesc
	}
	if d.Status != "" && !slices.Contains(d.Statuses, registry.TrainingStatus(d.Status)) {
		return nil, badRequestf("status %q: valid statuses are %v", q.Get("status"), d.Statuses)
	}
	pq := registry.TrainingRunPage{Project: s.opts.Project, Job: d.Job, Status: registry.TrainingStatus(d.Status), Sort: d.Sort, Limit: PageSize}
	pq.Tag.Key, pq.Tag.Value, _ = strings.Cut(d.Tag, "=")
	// One query for the count first would cost a second round trip; the page query returns
	// the total with the rows, so the offset is checked against it afterwards.
	off, _, err := paginate(r, 1<<62, PageSize)
	if err != nil {
		return nil, err
	}
	pq.Offset = off
	runs, total, err := s.opts.Registry.PageTrainingRuns(r.Context(), pq)
	if err != nil {
		return nil, err
	}
	if _, d.Pager, err = paginate(r, total, PageSize); err != nil {
		return nil, err
	}
	d.Runs = runs
	d.Sorts = sortLinks(r.URL, d.Sort, [2]string{"Newest", registry.SortStartedDesc}, [2]string{"Oldest", registry.SortStartedAsc},
		[2]string{"Job", registry.SortJob}, [2]string{"Status", registry.SortStatus})
	return &page{Template: "runs", Title: "Training runs", Nav: "runs", Data: d}, nil
}

type runData struct {
	Run         registry.TrainingRun
	Info        training.RunInfo
	Params      []kv
	Tags        []kv
	Metrics     []registry.Metric // the last point of each metric
	Charts      []template.HTML
	Models      []registry.ModelVersion
	ChartPoints int
}

type kv struct{ Key, Value string }

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// run is GET /runs/{id}.
func (s *Server) run(r *http.Request) (*page, error) {
	ctx, reg := r.Context(), s.opts.Registry
	id := registry.TrainingRunID(r.PathValue("id"))
	run, err := reg.GetTrainingRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if run.Project != s.opts.Project {
		return nil, notFoundf("training run %s is not in project %s", id, s.opts.Project)
	}
	d := &runData{Run: run, ChartPoints: chartPoints}
	_ = json.Unmarshal(run.Info, &d.Info)
	params, err := reg.RunParams(ctx, id)
	if err != nil {
		return nil, err
	}
	tags, err := reg.RunTags(ctx, id)
	if err != nil {
		return nil, err
	}
	d.Params, d.Tags = sortedKV(params), sortedKV(tags)
	if d.Metrics, err = reg.LatestMetrics(ctx, id); err != nil {
		return nil, err
	}
	for _, m := range d.Metrics[:min(len(d.Metrics), 6)] {
		pts, err := reg.MetricSeries(ctx, id, m.Name, chartPoints)
		if err != nil {
			return nil, err
		}
		d.Charts = append(d.Charts, lineChart(m.Name+" of run "+string(id), "step", []series{{Label: m.Name, Points: toXY(pts)}}))
	}
	return &page{Template: "run", Title: "Run " + string(id), Nav: "runs", Crumbs: []crumb{{"Runs", "/runs"}, {run.Job, "/runs?job=" + queryEscape(run.Job)}}, Data: d}, nil
}

func toXY(ms []registry.Metric) []xy {
	out := make([]xy, len(ms))
	for i, m := range ms {
		out[i] = xy{float64(m.Step), m.Value}
	}
	return out
}

type compareData struct {
	Runs    []registry.TrainingRun
	IDs     []string
	Params  []paramRow
	Metrics []string // names logged by any of the runs
	Metric  string   // the metric drawn
	Chart   template.HTML
	Legend  []legendEntry
	Finals  []finalRow
}

type paramRow struct {
	Name   string
	Values []string
	Differ bool
}

type legendEntry struct {
	Swatch template.HTML
	Label  string
	URL    string
	Points int
}

type finalRow struct {
	Name   string
	Values []string
}

// compareRuns is GET /runs/compare?id=A&id=B[&id=...][&metric=NAME]: params side by side
// and one metric of every run on one chart.
func (s *Server) compareRuns(r *http.Request) (*page, error) {
	ctx, reg := r.Context(), s.opts.Registry
	q := r.URL.Query()
	var ids []string
	for _, v := range q["id"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) < 2 {
		return nil, badRequestf("compare needs at least two runs: /runs/compare?id=RUN&id=RUN (pick them on the runs page)")
	}
	if len(ids) > maxCompare {
		return nil, badRequestf("compare draws at most %d runs; %d were given", maxCompare, len(ids))
	}
	d := &compareData{IDs: ids, Metric: q.Get("metric")}
	params := map[string][]string{}
	finals := map[string][]string{}
	for i, id := range ids {
		run, err := reg.GetTrainingRun(ctx, registry.TrainingRunID(id))
		if err != nil {
			return nil, err
		}
		if run.Project != s.opts.Project {
			return nil, notFoundf("training run %s is not in project %s", id, s.opts.Project)
		}
		d.Runs = append(d.Runs, run)
		p, err := reg.RunParams(ctx, run.ID)
		if err != nil {
			return nil, err
		}
		for k, v := range p {
			if params[k] == nil {
				params[k] = make([]string, len(ids))
			}
			params[k][i] = v
		}
		sums, err := reg.LatestMetrics(ctx, run.ID)
		if err != nil {
			return nil, err
		}
		for _, m := range sums {
			if finals[m.Name] == nil {
				finals[m.Name] = make([]string, len(ids))
				d.Metrics = append(d.Metrics, m.Name)
			}
			finals[m.Name][i] = fmt.Sprintf("%s (step %d)", formatFloat(m.Value), m.Step)
		}
	}
	sort.Strings(d.Metrics)
	for _, k := range sortedKeys(params) {
		row := paramRow{Name: k, Values: params[k]}
		for _, v := range row.Values[1:] {
			if v != row.Values[0] {
				row.Differ = true
			}
		}
		d.Params = append(d.Params, row)
	}
	for _, m := range d.Metrics {
		d.Finals = append(d.Finals, finalRow{Name: m, Values: finals[m]})
	}
	if d.Metric == "" && len(d.Metrics) > 0 {
		d.Metric = d.Metrics[0]
		if slices.Contains(d.Metrics, "loss") {
			d.Metric = "loss"
		}
	}
	if d.Metric != "" {
		var ss []series
		for i, run := range d.Runs {
			pts, err := reg.MetricSeries(ctx, run.ID, d.Metric, chartPoints)
			if err != nil {
				return nil, err
			}
			label := string(run.ID)
			ss = append(ss, series{Label: label, URL: "/runs/" + pathEscape(label), Points: toXY(pts)})
			d.Legend = append(d.Legend, legendEntry{Swatch: legendSwatch(i), Label: run.Job + " · " + label, URL: "/runs/" + pathEscape(label), Points: len(pts)})
		}
		d.Chart = lineChart(d.Metric+" by step, "+fmt.Sprint(len(ss))+" runs", "step", ss)
	}
	return &page{Template: "compare", Title: "Compare runs", Nav: "runs", Crumbs: []crumb{{"Runs", "/runs"}}, Data: d}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
