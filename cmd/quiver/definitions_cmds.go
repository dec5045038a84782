package main

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/scaffold"
)

func (a *app) initCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Create a working feature repo with sample data",
		Long: `Create a feature repo in DIR (default: the -C directory): quiver.yaml, definitions
under features/, a generated sample Parquet file under data/, and a README. Refuses to
overwrite an existing quiver.yaml.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := a.dir
			if len(args) == 1 {
				dir = args[0]
				if !filepath.IsAbs(dir) {
					dir = filepath.Join(a.dir, dir)
				}
			}
			files, err := scaffold.Init(dir, scaffold.Options{Project: name})
			if err != nil {
				return err
			}
			return a.render(initJSON{Dir: dir, Files: files}, func() {
				a.printf("Created feature repo in %s:\n", dir)
				for _, f := range files {
					a.printf("  %s\n", f)
				}
				a.printf("\nNext: quiver -C %s validate && quiver -C %s apply\n", dir, dir)
			})
		},
	}
	cmd.Flags().StringVar(&name, "project", "", "project name (default: the directory's name)")
	return cmd
}

// reportInvalid prints definitions errors (one per line, file:line:col first) and returns an
// error for the exit code. Other errors pass through unchanged.
func (a *app) reportInvalid(err error) error {
	var list definitions.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	if a.jsonOutput() {
		out := validationJSON{Errors: make([]errorJSON, len(list))}
		for i, e := range list {
			out.Errors[i] = errorJSON{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Message: e.Msg}
		}
		if perr := a.printJSON(out); perr != nil {
			return perr
		}
	} else {
		for _, e := range list {
			fmt.Fprintln(a.stderr, e.Error())
		}
		n := len(list)
		if last := list[n-1]; last.Omitted > 0 { // the "and N more" entry
			n += last.Omitted - 1
		}
		fmt.Fprintf(a.stderr, "%d error(s) in the definitions\n", n)
	}
	return a.reported(err)
}

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check every definitions file; exit 1 listing every error with file:line:col",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.open()
			if err != nil {
				return err
			}
			repo, err := p.Definitions()
			if err != nil {
				return a.reportInvalid(err)
			}
			counts := map[string]int{}
			for _, o := range repo.Objects() {
				counts[string(o.ObjectKind())]++
			}
			return a.render(validationJSON{Valid: true, Project: p.Name(), Objects: counts}, func() {
				a.printf("Definitions are valid: %s.\n", definitions.CountKinds(repo.Objects()))
			})
		},
	}
}
