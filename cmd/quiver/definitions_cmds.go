package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/scaffold"
)

func (a *app) initCommand() *cobra.Command {
	var project string
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
			files, err := scaffold.Init(dir, scaffold.Options{Project: project})
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return a.printJSON(map[string]any{"dir": dir, "files": files})
			}
			fmt.Fprintf(a.stdout, "Created feature repo in %s:\n", dir)
			for _, f := range files {
				fmt.Fprintf(a.stdout, "  %s\n", f)
			}
			fmt.Fprintf(a.stdout, "\nNext: quiver -C %s validate && quiver -C %s apply\n", dir, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "project name (default: the directory's name)")
	return cmd
}

// errorJSON is one definitions error in -o json output.
type errorJSON struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

// reportInvalid prints definitions errors (one per line, file:line:col first) and returns an
// error for the exit code. Other errors pass through unchanged.
func (a *app) reportInvalid(err error) error {
	var list definitions.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	if a.jsonOutput() {
		out := make([]errorJSON, len(list))
		for i, e := range list {
			out[i] = errorJSON{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Message: e.Msg}
		}
		if perr := a.printJSON(map[string]any{"valid": false, "errors": out}); perr != nil {
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
			cfg, err := a.config()
			if err != nil {
				return err
			}
			repo, err := a.definitions(cfg)
			if err != nil {
				return a.reportInvalid(err)
			}
			counts := map[definitions.Kind]int{}
			for _, o := range repo.Objects() {
				counts[o.ObjectKind()]++
			}
			if a.jsonOutput() {
				byKind := map[string]int{}
				for k, n := range counts {
					byKind[string(k)] = n
				}
				return a.printJSON(map[string]any{"valid": true, "project": cfg.Project, "objects": byKind})
			}
			var parts []string
			for _, k := range definitions.Kinds {
				if counts[k] > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", counts[k], plural(k.Label(), counts[k])))
				}
			}
			fmt.Fprintf(a.stdout, "Definitions are valid: %s.\n", orNone(strings.Join(parts, ", ")))
			return nil
		},
	}
}

func plural(s string, n int) string {
	if n == 1 {
		return s
	}
	if strings.HasSuffix(s, "y") {
		return s[:len(s)-1] + "ies"
	}
	return s + "s"
}

func orNone(s string) string {
	if s == "" {
		return "no objects"
	}
	return s
}
