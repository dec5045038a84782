package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/registry"
)

// fileWriter is where commands print; *os.File in production, a buffer in tests.
type fileWriter = io.Writer

// app holds the global flags and the process environment for every command.
type app struct {
	dir    string // -C
	output string // -o
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	// secrets are values no output may show (store passwords, tokens); see scrub.
	secrets []string
	// printed: the command printed the details of the error it returns (reported).
	printed bool

	logOnce sync.Once
	log     *slog.Logger // see logger
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "quiver",
		Short: "Quiver: declared features, point-in-time training data and low-latency serving",
		Long: `Quiver is a feature store. Declare entities, sources and feature views in YAML,
apply them to the registry, materialize them into the offline (Iceberg) and online
(Redis) stores, build point-in-time-correct training datasets, and serve features and
predictions over gRPC.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			var names []string
			for _, c := range cmd.Commands() {
				names = append(names, c.Name())
			}
			return usage("unknown command %q%s", args[0], definitions.Suggest(args[0], names))
		},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if a.output != "table" && a.output != "json" {
				return usage("invalid -o %q; valid: table, json", a.output)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&a.dir, "dir", "C", ".", "the feature repo directory")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table or json")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return errkind.Mark(errkind.Usage, err) })
	root.AddCommand(
		a.initCommand(), a.validateCommand(), a.importCommand(), a.planCommand(), a.applyCommand(),
		a.listCommand(), a.describeCommand(), a.materializeCommand(), a.materializeIncrementalCommand(),
		a.pushCommand(), a.streamCommand(), a.statusCommand(), a.datasetCommand(), a.trainCommand(),
		a.runsCommand(), a.modelsCommand(), a.lineageCommand(), a.serveCommand(), a.serveModelCommand(),
		a.uiCommand(), a.getOnlineCommand(), a.onlineCommand(), a.gcCommand(), a.auditCommand(),
		a.predictCommand(), a.healthCommand(), a.versionCommand(),
	)
	for _, c := range root.Commands() {
		wrapArgs(c)
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	return root
}

// wrapArgs makes cobra's argument-count errors usage errors (exit code 2).
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		check := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usage("%s: %w", cmd.CommandPath(), err)
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// parent is a command that only groups subcommands; alone it says what it needs.
func parent(use, short, needs string, children ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return usage("%s", needs) }}
	cmd.AddCommand(children...)
	return cmd
}

// open opens the feature repo of -C (its quiver.yaml; stores open on first use).
func (a *app) open() (*project.Project, error) {
	p, err := project.Open(project.Options{Dir: a.dir, Getenv: a.getenv, Logger: a.logger(), Notices: a.stderr, Version: quiverVersion(), Secret: a.addSecret})
	if err != nil {
		return nil, err
	}
	a.addURLSecrets(p.Config.Registry, p.Config.Online, p.Config.Trino.DSN, p.Config.Offline.CatalogURI)
	return p, nil
}

// withProject is a command's RunE that opens the feature repo, runs fn and closes it.
func (a *app) withProject(fn func(ctx context.Context, p *project.Project, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		p, err := a.open()
		if err != nil {
			return err
		}
		defer p.Close()
		return fn(cmd.Context(), p, args)
	}
}

// withRegistry is withProject for a command that reads the registry.
func (a *app) withRegistry(fn func(ctx context.Context, p *project.Project, reg registry.Store, args []string) error) func(*cobra.Command, []string) error {
	return a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		reg, err := p.Registry(ctx)
		if err != nil {
			return err
		}
		return fn(ctx, p, reg, args)
	})
}

// optional is the optional argument of a command ("" when not given).
func optional(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}

func (a *app) jsonOutput() bool { return a.output == "json" }

// render prints out as JSON with -o json, and else runs table.
func (a *app) render(out any, table func()) error {
	if a.jsonOutput() {
		return a.printJSON(out)
	}
	table()
	return nil
}

// table returns a tab-aligned writer for human output; call Flush when done.
func (a *app) table() *tabwriter.Writer {
	return tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
}

// printf prints to stdout.
func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

// logger is the process's one structured logger on stderr. It is made once: the server, the
// push committer and the stream consumer log from their own goroutines, and one handler
// serializes their writes (two handlers on one writer would interleave and race).
func (a *app) logger() *slog.Logger {
	a.logOnce.Do(func() {
		a.log = slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	return a.log
}
