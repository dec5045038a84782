package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/definitions/feast"
)

func (a *app) importCommand() *cobra.Command {
	return parent("import", "Convert another feature store's definitions to Quiver YAML",
		"quiver import needs a source: quiver import feast PATH", a.importFeastCommand())
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
			if a.jsonOutput() {
				counts := map[string]int{}
				for _, o := range res.Objects {
					counts[string(o.ObjectKind())]++
				}
				report := res.Report
				if report == nil {
					report = []feast.Item{}
				}
				if err := a.printJSON(importJSON{Project: res.Project, FeastRepo: res.FeastRepo, Registry: res.Registry, Out: res.Out,
					Files: files, DryRun: dryRun, Objects: counts, Report: report}); err != nil {
					return err
				}
			} else {
				res.WriteText(a.stdout, files, dryRun)
			}
			if dryRun {
				return nil
			}
			// The written repo must validate as a whole (it may hold other definitions).
			a.dir = res.Out
			p, err := a.open()
			if err != nil {
				return err
			}
			if _, err := p.Definitions(); err != nil {
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
