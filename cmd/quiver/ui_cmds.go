package main

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/ui"
)

// uiDefaultAddr is where quiver ui listens unless --addr says otherwise: loopback only.
const uiDefaultAddr = "127.0.0.1:8484"

func (a *app) uiCommand() *cobra.Command {
	var (
		addr        string
		allowUnauth bool
	)
	cmd := &cobra.Command{
		Use:   "ui [--addr HOST:PORT]",
		Short: "Serve a read-only web UI over the project's registry",
		Long: `Serve a read-only web UI over the project's registry: a searchable catalog of entities,
sources, feature views, feature services, models and training jobs; feature view, dataset,
training run and model pages; run comparison charts; and model lineage graphs. Pages are
rendered on the server and every asset is embedded in this binary: nothing is fetched from
the network.

It listens on loopback (` + uiDefaultAddr + `) by default. When the serving: section of
quiver.yaml configures authentication (mTLS, JWT, API tokens, or OpenID Connect in
serving.ui.oidc), a browser is sent to a sign-in page that takes an API token or signs in
through the identity provider, and keeps a session cookie; API clients send the same
credentials as to quiver serve. The policy must grant the caller ui (or the whole project) of
the project; dataset column statistics need a grant of the column's feature view. Without
authentication a non-loopback --addr is refused unless --allow-unauthenticated is given.
See docs/ui.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := a.config()
			if err != nil {
				return err
			}
			sc, err := auth.ParseConfigEnv(config.FileName, cfg.Root, cfg.Serving, a.getenv)
			if err != nil {
				return err
			}
			if err := sc.CheckUI(); err != nil {
				return err
			}
			a.addSecret(sc.UI.SessionKey.Reveal())
			if o := sc.UI.OIDC; o != nil {
				a.addSecret(o.ClientSecret.Reveal())
			}
			if err := sc.Validate(); err != nil {
				return err
			}
			if !sc.UIAuthEnabled() && !ui.IsLoopback(addr) && !allowUnauth {
				return usagef(fmt.Errorf("ui: --addr %s is not a loopback address and no authentication is configured in the serving: section of %s; configure it, listen on 127.0.0.1, or give --allow-unauthenticated (anyone who reaches it reads the whole registry)", addr, config.FileName))
			}
			tlsConfig, err := auth.ServerTLS(sc.TLS)
			if err != nil {
				return err
			}
			reg, err := stores.OpenRegistry(ctx, cfg)
			if err != nil {
				return err
			}
			defer reg.Close()
			logger := a.logger()
			var guard *auth.Guard
			if sc.UIAuthEnabled() {
				guard, err = auth.New(ctx, sc, auth.Options{Project: cfg.Project, Logger: logger, Resources: ui.Resources,
					OpenHTTPPaths: ui.OpenPaths})
				if err != nil {
					return err
				}
			}
			srv, err := ui.New(ui.Options{Project: cfg.Project, Registry: reg, Warehouse: cfg.Offline.Warehouse, Guard: guard, SignIn: sc.UI, Logger: logger})
			if err != nil {
				return err
			}
			ln, url, err := ui.Listen(addr)
			if err != nil {
				return err
			}
			if tlsConfig != nil {
				ln = tls.NewListener(ln, tlsConfig)
				url = "https" + strings.TrimPrefix(url, "http")
			}
			if a.jsonOutput() {
				if err := a.printJSON(map[string]any{"project": cfg.Project, "url": url, "authentication": guard != nil}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "Quiver UI for project %s: %s (Ctrl-C stops it)\n", cfg.Project, url)
			}
			return ui.Serve(ctx, ln, srv)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", uiDefaultAddr, "listen address HOST:PORT (port 0: any free port)")
	cmd.Flags().BoolVar(&allowUnauth, "allow-unauthenticated", false, "serve without authentication on a non-loopback address")
	return cmd
}
