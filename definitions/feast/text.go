package feast

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/quiverfs/quiver/definitions"
)

// WriteText writes what the import converted and wrote (or, dryRun, would write), and every
// item of the report with what to do, for people (quiver import feast).
func (res *Result) WriteText(w io.Writer, files []string, dryRun bool) {
	fmt.Fprintf(w, "Imported Feast project %q from %s (registry %s): %s.\n", res.Project, res.FeastRepo, res.Registry, definitions.CountKinds(res.Objects))
	if dryRun {
		fmt.Fprintf(w, "Would write in %s: %s\n", res.Out, strings.Join(files, ", "))
	} else {
		fmt.Fprintf(w, "Wrote in %s: %s\n", res.Out, strings.Join(files, ", "))
	}
	if len(res.Report) > 0 {
		fmt.Fprintf(w, "\nNot converted, or not as it was (%d):\n", len(res.Report))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, it := range res.Report {
			what := it.Kind + " " + it.Name
			if it.Field != "" {
				what += " (" + it.Field + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", it.Action, what, it.Reason)
			if it.Suggestion != "" {
				for _, l := range strings.Split(it.Suggestion, "\n") {
					fmt.Fprintf(tw, "  \t\t→ %s\n", l)
				}
			}
		}
		_ = tw.Flush()
	}
	if !dryRun {
		fmt.Fprintf(w, "\nNext: quiver -C %s validate && quiver -C %s apply, then quiver materialize over the history you serve and train on (docs/from-feast.md).\n", res.Out, res.Out)
	}
}
