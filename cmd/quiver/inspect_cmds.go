package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

func parseKindArg(s string) (definitions.Kind, error) {
	k, err := definitions.ParseKind(s)
	if err != nil {
		return "", usage("%w", err)
	}
	return k, nil
}

func (a *app) listCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list KIND",
		Short: "List registered objects of a kind: entities, sources, views, services, models, jobs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := parseKindArg(args[0])
			if err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			store, err := a.registry(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			objs, err := store.ListObjects(cmd.Context(), cfg.Project, kind)
			if err != nil {
				return fmt.Errorf("list %ss: %w", kind.Label(), err)
			}
			if a.jsonOutput() {
				out := make([]objectJSON, len(objs))
				for i, o := range objs {
					out[i] = toObjectJSON(o)
				}
				return a.printJSON(out)
			}
			if len(objs) == 0 {
				fmt.Fprintf(a.stdout, "No %ss registered in project %q. Run quiver apply.\n", kind.Label(), cfg.Project)
				return nil
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tVERSION\tSUMMARY\tAPPLIED\tBY")
			for _, o := range objs {
				fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\n", o.Name, o.Version, summary(o), o.CreatedAt.UTC().Format(time.DateTime), o.CreatedBy)
			}
			return tw.Flush()
		},
	}
}

// summary is a one-line description of an object for list output.
func summary(o registry.ObjectVersion) string {
	obj, err := definitions.DecodeSpec(o.Kind, o.Spec)
	if err != nil {
		return "(unreadable spec: " + err.Error() + ")"
	}
	switch t := obj.(type) {
	case *definitions.Entity:
		keys := make([]string, len(t.JoinKeys))
		for i, k := range t.JoinKeys {
			keys[i] = k.Name + " " + k.Type.String()
		}
		return "keys: " + strings.Join(keys, ", ")
	case *definitions.Source:
		switch {
		case t.Parquet != nil:
			return "parquet " + t.Parquet.Path
		case t.Iceberg != nil:
			return "iceberg " + t.Iceberg.Table
		case t.Trino != nil && t.Trino.Table != "":
			return "trino table " + t.Trino.Table
		case t.Trino != nil:
			return "trino query"
		}
	case *definitions.FeatureView:
		head := fmt.Sprintf("%d features of %s from %s", len(t.Features), strings.Join(t.Entities, ","), t.Source)
		if t.IsAggregation() { // no ttl: its windows say how far back it reads
			aggs := make([]string, len(t.Aggregations))
			for i, g := range t.Aggregations {
				ws := make([]string, len(g.Windows))
				for j, w := range g.Windows {
					ws[j] = w.String()
				}
				aggs[i] = fmt.Sprintf("%s(%s) over %s", g.Function, g.Column, strings.Join(ws, ","))
			}
			return head + ": " + strings.Join(aggs, "; ")
		}
		if t.TTL == 0 {
			return head + ", no ttl"
		}
		return fmt.Sprintf("%s, ttl %s", head, t.TTL)
	case *definitions.FeatureService:
		refs := make([]string, len(t.Features))
		for i, r := range t.Features {
			refs[i] = r.String()
		}
		return strings.Join(refs, ", ")
	case *definitions.Model:
		return t.Runtime + " model on " + t.FeatureService
	case *definitions.TrainingJob:
		return fmt.Sprintf("trains on %s: %s", t.FeatureService, strings.Join(t.Command, " "))
	case *definitions.RequestSource:
		fields := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			fields[i] = f.Name + " " + f.Type.String()
		}
		return "fields: " + strings.Join(fields, ", ")
	case *definitions.OnDemandFeatureView:
		return fmt.Sprintf("%d on-demand features from %s", len(t.Features), strings.Join(t.Inputs, ","))
	}
	return ""
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
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := parseKindArg(args[0])
			if err != nil {
				return err
			}
			if version < 0 {
				return usage("--version must be 1 or more, got %d", version)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			store, err := a.registry(ctx, cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			o, err := store.GetObject(ctx, cfg.Project, kind, args[1], version)
			if err != nil {
				if version > 0 {
					return fmt.Errorf("%s %q version %d: %w", kind.Label(), args[1], version, err)
				}
				return a.closeNames(cmd, store, cfg.Project, kind, args[1], err)
			}
			history, err := store.ObjectHistory(ctx, cfg.Project, kind, args[1])
			if err != nil {
				return fmt.Errorf("%s %q history: %w", kind.Label(), args[1], err)
			}
			// A live feature view's current definition generation (docs/definitions.md).
			generation := 0
			if kind == definitions.KindFeatureView && !o.Deleted && o.Version == history[len(history)-1].Version {
				gens, err := store.Generations(ctx, cfg.Project)
				if err != nil {
					return err
				}
				generation = registry.Generation(gens, o.Name)
			}
			if a.jsonOutput() {
				hist := make([]objectJSON, len(history))
				for i, h := range history {
					hist[i] = toObjectJSON(h)
					hist[i].Spec = nil
				}
				out := map[string]any{"object": toObjectJSON(o), "history": hist}
				if generation > 0 {
					out["generation"] = generation
				}
				return a.printJSON(out)
			}
			tw := a.table()
			fmt.Fprintf(tw, "Kind:\t%s\n", o.Kind)
			fmt.Fprintf(tw, "Name:\t%s\n", o.Name)
			fmt.Fprintf(tw, "Version:\tv%d of %d\n", o.Version, len(history))
			if generation > 1 {
				fmt.Fprintf(tw, "Generation:\t%d (online rows %s, offline table %s)\n", generation,
					online.StorageName(o.Name, generation), iceberg.TableName(o.Name, generation))
			}
			fmt.Fprintf(tw, "Hash:\t%s\n", orDash(o.Hash))
			fmt.Fprintf(tw, "Applied:\t%s by %s (revision %d, commit %s)\n", o.CreatedAt.UTC().Format(time.RFC3339), o.CreatedBy, o.Revision, orDash(o.GitCommit))
			tw.Flush()
			if o.Deleted {
				fmt.Fprintln(a.stdout, "\nThis version removes the object.")
			} else {
				fmt.Fprintln(a.stdout, "\nDefinition:")
				if err := writeSpecYAML(a.stdout, o.Spec, "  "); err != nil {
					return err
				}
			}
			fmt.Fprintln(a.stdout, "\nHistory:")
			tw = a.table()
			for _, h := range history {
				state := ""
				if h.Deleted {
					state = "removed"
				}
				fmt.Fprintf(tw, "  v%d\t%s\t%s\t%s\n", h.Version, h.CreatedAt.UTC().Format(time.DateTime), h.CreatedBy, state)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "show this version instead of the latest")
	return cmd
}

// closeNames adds the registered names close to name to a not-found error.
func (a *app) closeNames(cmd *cobra.Command, store registry.Store, project string, kind definitions.Kind, name string, err error) error {
	objs, lerr := store.ListObjects(cmd.Context(), project, kind)
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

// writeSpecYAML renders a JSON spec as YAML, keeping the spec's field order.
func writeSpecYAML(w io.Writer, spec []byte, indent string) error {
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.UseNumber()
	node, err := jsonToNode(dec)
	if err != nil {
		return fmt.Errorf("render spec: %w", err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return fmt.Errorf("render spec: %w", err)
	}
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		fmt.Fprintln(w, indent+line)
	}
	return nil
}

// jsonToNode reads one JSON value from dec into a YAML node, preserving object key order.
func jsonToNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if t == '{' {
			n.Kind = yaml.MappingNode
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(k)})
			}
			v, err := jsonToNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, err := dec.Token(); err != nil { // closing delimiter
			return nil, err
		}
		if n.Kind == yaml.SequenceNode && len(n.Content) > 0 && n.Content[0].Kind == yaml.ScalarNode {
			n.Style = yaml.FlowStyle
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatBool(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// Version is set at build time with -ldflags "-X main.Version=..."; otherwise it is read from
// the module's build information.
var Version = ""

func quiverVersion() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return "dev-" + rev
		}
	}
	return "dev"
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Quiver's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.jsonOutput() {
				return a.printJSON(map[string]string{"version": quiverVersion(), "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH})
			}
			fmt.Fprintf(a.stdout, "quiver %s (%s, %s/%s)\n", quiverVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
