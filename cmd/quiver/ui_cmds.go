package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/project"
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
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, _ []string) error {
		u, err := p.OpenUI(ctx, addr, allowUnauth)
		if err != nil {
			return err
		}
		if err := a.render(u, func() { a.printf("Quiver UI for project %s: %s (Ctrl-C stops it)\n", u.Project, u.URL) }); err != nil {
			return err
		}
		return u.Serve(ctx)
	})
	cmd.Flags().StringVar(&addr, "addr", uiDefaultAddr, "listen address HOST:PORT (port 0: any free port)")
	cmd.Flags().BoolVar(&allowUnauth, "allow-unauthenticated", false, "serve without authentication on a non-loopback address")
	return cmd
}
