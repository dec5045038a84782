package training

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quiverfs/quiver/registry"
)

// Text renderings of training's objects for people (quiver lineage, runs show).

// WriteTree writes the trace as a tree: the model version (as ref named it), its run, the
// run's dataset, and the dataset's entities, feature service, views and on-demand views.
func (tr *ModelTrace) WriteTree(w io.Writer, ref string) error {
	mv, run, ds, info, lineage := tr.Model, tr.Run, tr.Dataset, tr.Info, tr.Lineage
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(w, "model    %s v%d  (%s)\n", mv.Name, mv.Version, ref)
	fmt.Fprintf(w, "  artifact  %s  %s\n", mv.ArtifactURI, shortID(mv.ArtifactHash))
	fmt.Fprintf(w, "└─ run    %s  job %s, %s, attempt %d\n", run.ID, run.Job, run.Status, run.Attempt)
	dirty := ""
	if info.GitDirty {
		dirty = " (dirty, diff " + shortID(info.GitDiffSHA256) + ")"
	}
	fmt.Fprintf(w, "     commit %s%s, quiver %s, host %s\n", orDash(info.GitCommit), dirty, info.QuiverVersion, info.Host)
	fmt.Fprintf(w, "   └─ dataset  %s@v%d  %s  %d rows\n", ds.Name, ds.Version, ds.ContentID, ds.Rows)
	fmt.Fprintf(w, "      ├─ entities  %s %s  sha256 %s\n", lineage.Entities.Kind, lineage.Entities.Path+lineage.Entities.SQL, shortID(lineage.Entities.SHA256))
	fmt.Fprintf(w, "      └─ feature service  %s v%d  %s\n", lineage.FeatureService.Name, lineage.FeatureService.Version, shortID(lineage.FeatureService.Hash))
	last := len(tr.Views) + len(tr.OnDemand) - 1 // the service's last child
	for i, v := range tr.Views {
		branch := "├─"
		if i == last {
			branch = "└─"
		}
		src := ""
		if v.Source != "" {
			src = "  source " + v.Source
			if v.SourceVersion != 0 {
				src += fmt.Sprintf(" v%d", v.SourceVersion)
			}
		}
		fmt.Fprintf(w, "         %s feature view  %s v%d  offline snapshot %d%s\n", branch, v.Name, v.Version, v.OfflineSnapshotID, src)
	}
	for i, od := range tr.OnDemand {
		branch, indent := "├─", "         │  "
		if len(tr.Views)+i == last {
			branch, indent = "└─", "            "
		}
		fmt.Fprintf(w, "         %s on-demand view  %s v%d  %s\n", branch, od.Name, od.Version, shortID(od.Hash))
		inputs := make([]string, 0, len(od.RequestSources)+len(od.Views))
		for _, rs := range od.RequestSources {
			if rs.Version != 0 {
				inputs = append(inputs, fmt.Sprintf("request source  %s v%d", rs.Name, rs.Version))
			} else {
				inputs = append(inputs, "request source  "+rs.Name)
			}
		}
		for _, v := range od.Views {
			inputs = append(inputs, "reads feature view  "+v)
		}
		for j, in := range inputs {
			b := "├─"
			if j == len(inputs)-1 {
				b = "└─"
			}
			fmt.Fprintf(w, "%s%s %s\n", indent, b, in)
		}
	}
	return nil
}

// shortID is the first 19 characters of a content id ("sha256:" and 12 hex digits).
func shortID(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}

// Sparkline draws values as block characters, averaged down to at most width points. A point
// that is NaN or infinite is drawn as a gap; ranges wider than the largest float64 are scaled
// in halves, so that they do not overflow.
func Sparkline(values []float64, width int) string {
	if len(values) == 0 {
		return ""
	}
	if len(values) > width {
		down := make([]float64, width)
		for i := range down {
			lo, hi := i*len(values)/width, (i+1)*len(values)/width
			mean := 0.0
			for _, v := range values[lo:hi] {
				mean += v / float64(hi-lo)
			}
			down[i] = mean
		}
		values = down
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if finite(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	bars := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, v := range values {
		if !finite(v) {
			b.WriteRune(' ')
			continue
		}
		i := 0
		if hi > lo {
			i = int((v/2 - lo/2) / (hi/2 - lo/2) * float64(len(bars)-1))
		}
		b.WriteRune(bars[max(0, min(i, len(bars)-1))])
	}
	return b.String()
}

// WriteDatasetText writes a dataset version for people: where it is, its schema and its
// lineage (quiver dataset show).
func WriteDatasetText(w io.Writer, ds registry.Dataset, dir string) error {
	var m Manifest
	if err := json.Unmarshal(ds.Manifest, &m); err != nil {
		return fmt.Errorf("dataset %s@v%d: unreadable manifest: %w", ds.Name, ds.Version, err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Dataset:\t%s@v%d\n", ds.Name, ds.Version)
	fmt.Fprintf(tw, "Content id:\t%s\n", ds.ContentID)
	fmt.Fprintf(tw, "Rows:\t%d in %d file(s)\n", ds.Rows, len(m.Files))
	fmt.Fprintf(tw, "Location:\t%s\n", dir)
	fmt.Fprintf(tw, "Created:\t%s by %s\n", ds.CreatedAt.UTC().Format(time.RFC3339), ds.CreatedBy)
	tw.Flush()
	fmt.Fprintln(w, "\nSchema:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range m.Schema {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, c.Type, c.Role, c.Feature)
	}
	tw.Flush()
	l := m.Lineage
	fmt.Fprintln(w, "\nLineage:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  feature service\t%s v%d\t%s\n", l.FeatureService.Name, l.FeatureService.Version, shortID(l.FeatureService.Hash))
	for _, v := range l.FeatureViews {
		fmt.Fprintf(tw, "  feature view\t%s v%d\toffline snapshot %d\n", v.Name, v.Version, v.OfflineSnapshotID)
	}
	fmt.Fprintf(tw, "  entities\t%s %s\t%d rows, sha256 %s\n", l.Entities.Kind, l.Entities.Path+l.Entities.SQL, l.Entities.Rows, shortID(l.Entities.SHA256))
	fmt.Fprintf(tw, "  engine\t%s\tcreated cutoff %v, quiver %s\n", l.Engine, l.CreatedCutoff, l.QuiverVersion)
	return tw.Flush()
}

// WriteText writes the comparison for people: schema, lineage and per-column statistics
// (quiver dataset diff).
func (d *DatasetDiff) WriteText(w io.Writer) error {
	a0, b0 := d.A, d.B
	fmt.Fprintf(w, "A: %s@v%d  %d rows  %s\nB: %s@v%d  %d rows  %s\n", a0.Dataset.Name, a0.Dataset.Version, a0.Dataset.Rows, shortID(a0.Dataset.ContentID), b0.Dataset.Name, b0.Dataset.Version, b0.Dataset.Rows, shortID(b0.Dataset.ContentID))
	if d.Identical {
		fmt.Fprintln(w, "Identical: same content id.")
		return nil
	}
	fmt.Fprintln(w, "\nSchema:")
	for _, c := range d.Columns {
		if c.Op == "~" {
			fmt.Fprintf(w, "  ~ %s %s -> %s\n", c.Name, c.Type, c.NewType)
		} else {
			fmt.Fprintf(w, "  %s %s %s\n", c.Op, c.Name, c.Type)
		}
	}
	if len(d.Columns) == 0 {
		fmt.Fprintln(w, "  same columns and types")
	}
	fmt.Fprintln(w, "\nLineage:")
	la, lb := a0.Manifest.Lineage, b0.Manifest.Lineage
	if d.ServiceChanged {
		fmt.Fprintf(w, "  feature service %s v%d -> %s v%d\n", la.FeatureService.Name, la.FeatureService.Version, lb.FeatureService.Name, lb.FeatureService.Version)
	}
	for _, v := range d.Views {
		fmt.Fprintf(w, "  view %s: v%d snapshot %d -> v%d snapshot %d\n", v.New.Name, v.Old.Version, v.Old.OfflineSnapshotID, v.New.Version, v.New.OfflineSnapshotID)
	}
	if d.EntitiesChanged {
		fmt.Fprintf(w, "  entities: %s %d rows (%s) -> %s %d rows (%s)\n", la.Entities.Path+la.Entities.SQL, la.Entities.Rows, shortID(la.Entities.SHA256), lb.Entities.Path+lb.Entities.SQL, lb.Entities.Rows, shortID(lb.Entities.SHA256))
	}
	fmt.Fprintln(w, "\nColumns (A -> B):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  COLUMN\tNULL RATE\tMEAN\tMIN\tMAX\tDISTINCT")
	bStats := b0.StatsByName()
	for _, sa := range a0.Stats {
		name := sa.Name
		sb, ok := bStats[name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%.3f -> %.3f\t%s\t%s\t%s\t%d -> %d\n", name, sa.NullRate(), sb.NullRate(),
			numPair(sa.Numeric, sa.Mean, sb.Mean), numPair(sa.Numeric, sa.Min, sb.Min), numPair(sa.Numeric, sa.Max, sb.Max), sa.Distinct, sb.Distinct)
	}
	return tw.Flush()
}

func numPair(numeric bool, a, b float64) string {
	if !numeric {
		return "-"
	}
	f := func(v float64) string {
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return strconv.FormatFloat(v, 'g', 5, 64)
	}
	return f(a) + " -> " + f(b)
}
