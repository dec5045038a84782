package project

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/materialize"
)

// Text renderings of plans and applies for people (quiver plan, quiver apply).

// describeDrop is one line on what dropping a generation deletes.
func describeDrop(d materialize.DropPreview, keepData bool) string {
	rows := "? online rows (" + d.OnlineError + ")"
	if d.OnlineRows >= 0 {
		rows = count(d.OnlineRows, "online row")
	}
	table := "offline table " + d.OfflineTable
	switch {
	case d.OfflineError != "":
		table += " (? rows: " + d.OfflineError + ")"
	case !d.OfflineExists:
		table += " (not created)"
	case d.OfflineRows >= 0:
		table += " (" + count(d.OfflineRows, "row") + ")"
	}
	if keepData {
		return fmt.Sprintf("drops generation %d: %s; keeps %s (--keep-data)", d.Generation, rows, table)
	}
	return fmt.Sprintf("drops generation %d: %s and %s", d.Generation, rows, table)
}

// WriteText writes the plan for people (quiver plan): one line per object, field-level diffs beneath changes,
// each marked compatible or breaking, and what every ended generation's drop deletes.
func (pl *Plan) WriteText(w io.Writer, prune, keepData bool) {
	if len(pl.Changes) == 0 {
		fmt.Fprintf(w, "No changes: the registry (project %q, revision %d) matches the definitions.\n", pl.Project, pl.Revision)
		return
	}
	fmt.Fprintf(w, "Plan for project %q against registry revision %d:\n\n", pl.Project, pl.Revision)
	var add, change, breaking, remove int
	drops := func(c definitions.Change) {
		for _, v := range Ending(c) {
			if d, ok := pl.Drops[v]; ok {
				prefix := ""
				if c.Kind != definitions.KindFeatureView || v != c.Name {
					prefix = "feature_view " + v + " "
				}
				fmt.Fprintf(w, "      %s%s\n", prefix, describeDrop(d, keepData))
			}
		}
	}
	for _, c := range pl.Changes {
		switch c.Op {
		case definitions.OpAdd:
			add++
			fmt.Fprintf(w, "  + %s %s\n", c.Kind, c.Name)
		case definitions.OpChange:
			change++
			note := ""
			if c.Breaking {
				breaking++
				var gens []string
				for _, v := range c.Generations {
					gens = append(gens, fmt.Sprintf("%s generation %d", v, pl.NextGeneration(v)))
				}
				note = " BREAKING"
				if len(gens) > 0 {
					note += ": starts " + strings.Join(gens, ", ")
				}
			}
			fmt.Fprintf(w, "  ~ %s %s (v%d -> v%d)%s\n", c.Kind, c.Name, c.FromVersion, c.FromVersion+1, note)
			for _, f := range c.Fields {
				class := "compatible"
				if f.Breaking {
					class = "BREAKING"
				}
				switch {
				case f.Old == "":
					fmt.Fprintf(w, "      + %s: %s  [%s: %s]\n", f.Path, f.New, class, f.Reason)
				case f.New == "":
					fmt.Fprintf(w, "      - %s: %s  [%s: %s]\n", f.Path, f.Old, class, f.Reason)
				default:
					fmt.Fprintf(w, "      ~ %s: %s -> %s  [%s: %s]\n", f.Path, f.Old, f.New, class, f.Reason)
				}
			}
			drops(c)
		case definitions.OpRemove:
			remove++
			note := " (only with apply --prune)"
			if prune {
				note = ""
			}
			fmt.Fprintf(w, "  - %s %s (v%d)%s\n", c.Kind, c.Name, c.FromVersion, note)
			drops(c)
		}
	}
	changed := fmt.Sprintf("%d to change", change)
	if breaking > 0 {
		changed += fmt.Sprintf(" (%d breaking: apply needs --allow-breaking)", breaking)
	}
	fmt.Fprintf(w, "\n%d to add, %s, %d to remove.\n", add, changed, remove)
}

// WriteText writes what the apply did, for people (quiver apply).
func (res *Applied) WriteText(w io.Writer) {
	if len(res.Versions) == 0 && len(res.NewGenerations) == 0 {
		fmt.Fprintf(w, "No changes: the registry (project %q, revision %d) matches the definitions.\n", res.Project, res.Revision)
	} else {
		fmt.Fprintf(w, "Applied registry revision %d for project %q:\n", res.Revision, res.Project)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, v := range res.Versions {
			what := fmt.Sprintf("v%d", v.Version)
			if v.Deleted {
				what += " (removed)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Kind, v.Name, what)
		}
		tw.Flush()
		for _, v := range slices.Sorted(maps.Keys(res.NewGenerations)) {
			fmt.Fprintf(w, "Feature view %s starts generation %d: nothing is served or joined for it until it is materialized again: quiver materialize-incremental %s (its source's whole history), or quiver materialize --start T --end T %s.\n", v, res.NewGenerations[v], v, v)
		}
	}
	for _, d := range res.DropsFinished {
		what := "online rows"
		if d.Offline {
			what += " and offline table"
		} else {
			what += " (offline table kept)"
		}
		fmt.Fprintf(w, "Dropped feature view %s generation %d: %s.\n", d.View, d.Generation, what)
	}
	if res.RemovalsSkipped > 0 {
		fmt.Fprintf(w, "%d object(s) no longer declared were kept; run apply --prune to remove them.\n", res.RemovalsSkipped)
	}
}

// count is "1 row", "2 rows".
func count(n int64, noun string) string {
	return fmt.Sprintf("%d %s", n, plural(noun, int(min(n, 2))))
}

type planReport struct {
	Project  string         `json:"project"`
	Revision int64          `json:"revision"`
	Breaking bool           `json:"breaking"`
	Changes  []ChangeReport `json:"changes"`
}

// FieldReport is one field of a change.
type FieldReport struct {
	Path     string `json:"path"`
	Old      string `json:"old,omitempty"`
	New      string `json:"new,omitempty"`
	Breaking bool   `json:"breaking"`
	Reason   string `json:"reason,omitempty"`
}

// DropReport is what dropping an ended generation deletes (materialize.DropPreview).
type DropReport struct {
	View          string `json:"view"`
	Generation    int    `json:"generation"`
	OnlineRows    int64  `json:"online_rows"`
	OnlineError   string `json:"online_error,omitempty"`
	OfflineTable  string `json:"offline_table"`
	OfflineExists bool   `json:"offline_exists"`
	OfflineRows   int64  `json:"offline_rows"`
	OfflineError  string `json:"offline_error,omitempty"`
}

// ChangeReport is one change of a plan.
type ChangeReport struct {
	Op          definitions.Op   `json:"op"`
	Kind        definitions.Kind `json:"kind"`
	Name        string           `json:"name"`
	FromVersion int              `json:"from_version,omitempty"`
	Breaking    bool             `json:"breaking"`
	Fields      []FieldReport    `json:"fields,omitempty"`
	// NewGenerations are the views the change starts a new definition generation of, with
	// the generation each starts.
	NewGenerations map[string]int `json:"new_generations,omitempty"`
	Drops          []DropReport   `json:"drops,omitempty"`
}

// MarshalJSON is the plan's -o json form: each change with its fields, the generations it
// starts and what its drops delete.
func (pl *Plan) MarshalJSON() ([]byte, error) {
	out := planReport{Project: pl.Project, Revision: pl.Revision, Breaking: pl.Breaking(), Changes: make([]ChangeReport, len(pl.Changes))}
	for i, c := range pl.Changes {
		ch := ChangeReport{Op: c.Op, Kind: c.Kind, Name: c.Name, FromVersion: c.FromVersion, Breaking: c.Breaking}
		for _, f := range c.Fields {
			ch.Fields = append(ch.Fields, FieldReport(f))
		}
		for _, v := range c.Generations {
			if ch.NewGenerations == nil {
				ch.NewGenerations = map[string]int{}
			}
			ch.NewGenerations[v] = pl.NextGeneration(v)
		}
		for _, v := range Ending(c) {
			if d, ok := pl.Drops[v]; ok {
				ch.Drops = append(ch.Drops, DropReport(d))
			}
		}
		out.Changes[i] = ch
	}
	return json.Marshal(out)
}
