package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/definitions/feast"
)

func (a *app) importCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert another feature store's definitions to Quiver YAML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usage("quiver import needs a source: quiver import feast PATH")
		},
	}
	cmd.AddCommand(a.importFeastCommand())
	return cmd
}

// importJSON is import feast's -o json result.
type importJSON struct {
	Project   string         `json:"project"`
	FeastRepo string         `json:"feast_repo"`
	Registry  string         `json:"registry"`
	Out       string         `json:"out"`
	Files     []string       `json:"files"`
	DryRun    bool           `json:"dry_run,omitempty"`
	Objects   map[string]int `json:"objects"`
	Report    []feast.Item   `json:"report"`
}

func (a *app) importFeastCommand() *cobra.Command {
	var out, registry string
	var force, dryRun bool
	cmd := &cobra.Command{
		Use:   "feast PATH",
		Short: "Convert a Feast repository (after feast apply) to Quiver definitions, reporting what did not convert",
		Long: `Reads the registry file of the Feast repository at PATH (the one its feature_store.yaml
names; run feast apply first) and writes its project as Quiver definitions to
features/feast_PROJECT.yaml under --out (default: the -C directory), and a quiver.yaml
there when it has none. Prints a report of every Feast object or option that was not
converted, or not as it was, with what to do; then validates the Quiver repo.
See docs/from-feast.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resolve := func(p string) string {
				if p == "" || filepath.IsAbs(p) {
					return p
				}
				return filepath.Join(a.dir, p)
			}
			if out == "" {
				out = a.dir
			}
			res, err := feast.Import(feast.Options{Repo: resolve(args[0]), Registry: resolve(registry), Out: resolve(out), Getenv: a.getenv})
			if err != nil {
				return err
			}
			var files []string
			if dryRun {
				rendered, err := res.Files()
				if err != nil {
					return err
				}
				for _, p := range []string{res.DefinitionsFile(), feast.QuiverConfigFile} {
					if _, ok := rendered[p]; ok {
						files = append(files, p)
					}
				}
				if !a.jsonOutput() {
					fmt.Fprintf(a.stdout, "# %s (not written: --dry-run)\n%s\n", res.DefinitionsFile(), rendered[res.DefinitionsFile()])
				}
			} else if files, err = res.Write(force); err != nil {
				return err
			}
			counts := map[string]int{}
			for _, o := range res.Objects {
				counts[string(o.ObjectKind())]++
			}
			if a.jsonOutput() {
				report := res.Report
				if report == nil {
					report = []feast.Item{}
				}
				if err := a.printJSON(importJSON{Project: res.Project, FeastRepo: res.FeastRepo, Registry: res.Registry, Out: res.Out,
					Files: files, DryRun: dryRun, Objects: counts, Report: report}); err != nil {
					return err
				}
			} else {
				a.printImport(res, files, counts, dryRun)
			}
			if dryRun {
				return nil
			}
			// The written repo must validate as a whole (it may hold other definitions).
			a.dir = res.Out
			cfg, err := a.config()
			if err != nil {
				return err
			}
			if _, err := a.definitions(cfg); err != nil {
				if !a.jsonOutput() {
					fmt.Fprintf(a.stderr, "The Quiver repo %s does not validate with the imported definitions:\n", res.Out)
				}
				return a.reportInvalid(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the Quiver feature repo to write (default: the -C directory)")
	cmd.Flags().StringVar(&registry, "registry", "", "read this Feast registry file instead of the one feature_store.yaml names")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing features/feast_PROJECT.yaml")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the definitions and the report; write nothing")
	return cmd
}

func (a *app) printImport(res *feast.Result, files []string, counts map[string]int, dryRun bool) {
	var parts []string
	for _, k := range definitions.Kinds {
		if n := counts[string(k)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, plural(k.Label(), n)))
		}
	}
	fmt.Fprintf(a.stdout, "Imported Feast project %q from %s (registry %s): %s.\n", res.Project, res.FeastRepo, res.Registry, orNone(strings.Join(parts, ", ")))
	if dryRun {
		fmt.Fprintf(a.stdout, "Would write in %s: %s\n", res.Out, strings.Join(files, ", "))
	} else {
		fmt.Fprintf(a.stdout, "Wrote in %s: %s\n", res.Out, strings.Join(files, ", "))
	}
	if len(res.Report) > 0 {
		fmt.Fprintf(a.stdout, "\nNot converted, or not as it was (%d):\n", len(res.Report))
		tw := a.table()
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
		fmt.Fprintf(a.stdout, "\nNext: quiver -C %s validate && quiver -C %s apply, then quiver materialize over the history you serve and train on (docs/from-feast.md).\n", res.Out, res.Out)
	}
}
