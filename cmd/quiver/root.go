package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/user"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/open"
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
		a.initCommand(),
		a.validateCommand(),
		a.importCommand(),
		a.planCommand(),
		a.applyCommand(),
		a.listCommand(),
		a.describeCommand(),
		a.materializeCommand(),
		a.materializeIncrementalCommand(),
		a.pushCommand(),
		a.streamCommand(),
		a.statusCommand(),
		a.datasetCommand(),
		a.trainCommand(),
		a.runsCommand(),
		a.modelsCommand(),
		a.lineageCommand(),
		a.serveCommand(),
		a.serveModelCommand(),
		a.uiCommand(),
		a.getOnlineCommand(),
		a.onlineCommand(),
		a.gcCommand(),
		a.auditCommand(),
		a.predictCommand(),
		a.healthCommand(),
		a.versionCommand(),
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

// config loads the repo's quiver.yaml with environment overrides.
func (a *app) config() (*config.Config, error) {
	cfg, err := config.Load(a.dir, a.getenv)
	if err != nil {
		return nil, err
	}
	a.addURLSecrets(cfg.Registry, cfg.Online, cfg.Trino.DSN, cfg.Offline.CatalogURI)
	return cfg, nil
}

// definitions loads and validates the repo's definitions.
func (a *app) definitions(cfg *config.Config) (*definitions.Repo, error) {
	return definitions.LoadAllowing(cfg.Root, cfg.AllowedPaths, cfg.Definitions...)
}

// registry opens the configured registry.
func (a *app) registry(ctx context.Context, cfg *config.Config) (registry.Store, error) {
	return open.Open(ctx, cfg.Registry)
}

func (a *app) jsonOutput() bool { return a.output == "json" }

// table returns a tab-aligned writer for human output; call Flush when done.
func (a *app) table() *tabwriter.Writer {
	return tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
}

// whoAmI names the person or service applying a change: $QUIVER_USER, else user@host,
// sanitized for the audit fields it is recorded in. It is not authenticated.
func (a *app) whoAmI() string { return registry.SanitizePrincipal(a.rawWhoAmI()) }

func (a *app) rawWhoAmI() string {
	if u := a.getenv("QUIVER_USER"); u != "" {
		return u
	}
	name := a.getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		return name + "@" + host
	}
	return name
}
