package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/registry"
)

// checkKindArg checks a command's KIND argument before anything is opened.
func checkKindArg(_ *cobra.Command, args []string) error {
	_, err := parseKindArg(args[0])
	return err
}

func parseKindArg(s string) (definitions.Kind, error) {
	k, err := definitions.ParseKind(s)
	if err != nil {
		return "", usage("%w", err)
	}
	return k, nil
}

func (a *app) listCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list KIND",
		Short:   "List registered objects of a kind: entities, sources, views, services, models, jobs",
		Args:    cobra.ExactArgs(1),
		PreRunE: checkKindArg,
	}
	cmd.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, args []string) error {
		kind, err := parseKindArg(args[0])
		if err != nil {
			return err
		}
		objs, err := reg.ListObjects(ctx, p.Name(), kind)
		if err != nil {
			return fmt.Errorf("list %ss: %w", kind.Label(), err)
		}
		out := make([]objectJSON, len(objs))
		for i, o := range objs {
			out[i] = toObjectJSON(o)
		}
		return a.render(out, func() {
			if len(objs) == 0 {
				a.printf("No %ss registered in project %q. Run quiver apply.\n", kind.Label(), p.Name())
				return
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tVERSION\tSUMMARY\tAPPLIED\tBY")
			for _, o := range objs {
				fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\n", o.Name, o.Version, catalog.Summary(o), o.CreatedAt.UTC().Format(time.DateTime), o.CreatedBy)
			}
			tw.Flush()
		})
	})
	return cmd
}

type objectJSON struct {
	Kind      definitions.Kind `json:"kind"`
	Name      string           `json:"name"`
	Version   int              `json:"version"`
	Hash      string           `json:"hash,omitempty"`
	Deleted   bool             `json:"deleted,omitempty"`
	Revision  int64            `json:"revision"`
	AppliedAt time.Time        `json:"applied_at"`
	AppliedBy string           `json:"applied_by"`
	GitCommit string           `json:"git_commit,omitempty"`
	Spec      json.RawMessage  `json:"spec,omitempty"`
}

func toObjectJSON(o registry.ObjectVersion) objectJSON {
	return objectJSON{Kind: o.Kind, Name: o.Name, Version: o.Version, Hash: o.Hash, Deleted: o.Deleted, Revision: o.Revision,
		AppliedAt: o.CreatedAt.UTC(), AppliedBy: o.CreatedBy, GitCommit: o.GitCommit, Spec: o.Spec}
}

func (a *app) describeCommand() *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show one registered object (latest version, or --version N) and its history",
		Args:  cobra.ExactArgs(2),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if version < 0 {
				return usage("--version must be 1 or more, got %d", version)
			}
			return checkKindArg(cmd, args)
		},
	}
	cmd.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, args []string) error {
		kind, err := parseKindArg(args[0])
		if err != nil {
			return err
		}
		o, err := reg.GetObject(ctx, p.Name(), kind, args[1], version)
		if err != nil {
			if version > 0 {
				return fmt.Errorf("%s %q version %d: %w", kind.Label(), args[1], version, err)
			}
			return closeNames(ctx, reg, p.Name(), kind, args[1], err)
		}
		history, err := reg.ObjectHistory(ctx, p.Name(), kind, args[1])
		if err != nil {
			return fmt.Errorf("%s %q history: %w", kind.Label(), args[1], err)
		}
		out := describeJSON{Object: toObjectJSON(o), History: make([]objectJSON, len(history))}
		for i, h := range history {
			out.History[i] = toObjectJSON(h)
			out.History[i].Spec = nil
		}
		// A live feature view's current definition generation (docs/definitions.md).
		if kind == definitions.KindFeatureView && !o.Deleted && o.Version == history[len(history)-1].Version {
			snap, err := p.Catalog(ctx)
			if err != nil {
				return err
			}
			out.Generation = snap.Generation(o.Name)
		}
		if a.jsonOutput() {
			return a.printJSON(out)
		}
		tw := a.table()
		fmt.Fprintf(tw, "Kind:\t%s\n", o.Kind)
		fmt.Fprintf(tw, "Name:\t%s\n", o.Name)
		fmt.Fprintf(tw, "Version:\tv%d of %d\n", o.Version, len(history))
		if g := out.Generation; g > 1 {
			fmt.Fprintf(tw, "Generation:\t%d (online rows %s, offline table %s)\n", g, online.StorageName(o.Name, g), iceberg.TableName(o.Name, g))
		}
		fmt.Fprintf(tw, "Hash:\t%s\n", orDash(o.Hash))
		fmt.Fprintf(tw, "Applied:\t%s by %s (revision %d, commit %s)\n", o.CreatedAt.UTC().Format(time.RFC3339), o.CreatedBy, o.Revision, orDash(o.GitCommit))
		tw.Flush()
		if o.Deleted {
			a.printf("\nThis version removes the object.\n")
		} else {
			a.printf("\nDefinition:\n")
			if err := catalog.WriteSpecYAML(a.stdout, o.Spec, "  "); err != nil {
				return err
			}
		}
		a.printf("\nHistory:\n")
		tw = a.table()
		for _, h := range history {
			state := ""
			if h.Deleted {
				state = "removed"
			}
			fmt.Fprintf(tw, "  v%d\t%s\t%s\t%s\n", h.Version, h.CreatedAt.UTC().Format(time.DateTime), h.CreatedBy, state)
		}
		return tw.Flush()
	})
	cmd.Flags().IntVar(&version, "version", 0, "show this version instead of the latest")
	return cmd
}

// closeNames adds the registered names close to name to a not-found error.
func closeNames(ctx context.Context, store registry.DefinitionReader, project string, kind definitions.Kind, name string, err error) error {
	objs, lerr := store.ListObjects(ctx, project, kind)
	if lerr != nil || len(objs) == 0 {
		return err
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	return fmt.Errorf("%w (registered: %s)%s", err, strings.Join(names, ", "), definitions.Suggest(name, names))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Quiver's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := versionOutput{Version: quiverVersion(), Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			return a.render(out, func() { a.printf("quiver %s (%s, %s)\n", out.Version, out.Go, out.Platform) })
		},
	}
}
