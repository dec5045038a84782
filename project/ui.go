package project

import (
	"context"
	"crypto/tls"
	"net"
	"strings"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/ui"
)

// UI is the project's web UI, listening and ready to serve.
type UI struct {
	Project string `json:"project"`
	// URL is where it listens.
	URL string `json:"url"`
	// Authentication says whether every page needs the serving: section's credentials.
	Authentication bool `json:"authentication"`

	srv *ui.Server
	ln  net.Listener
}

// OpenUI makes the project's read-only web UI and listens on addr: with the authentication
// (and TLS) of quiver.yaml's serving: section; without authentication, on a loopback address
// only unless allowUnauthenticated.
func (p *Project) OpenUI(ctx context.Context, addr string, allowUnauthenticated bool) (*UI, error) {
	sc, err := auth.ParseConfigEnv(config.FileName, p.Config.Root, p.Config.Serving, p.opts.Getenv)
	if err != nil {
		return nil, err
	}
	if err := sc.CheckUI(); err != nil {
		return nil, err
	}
	p.opts.Secret(sc.UI.SessionKey.Reveal())
	if o := sc.UI.OIDC; o != nil {
		p.opts.Secret(o.ClientSecret.Reveal())
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	if !sc.UIAuthEnabled() && !ui.IsLoopback(addr) && !allowUnauthenticated {
		return nil, errkind.Errorf(errkind.Usage, "ui: --addr %s is not a loopback address and no authentication is configured in the serving: section of %s; configure it, listen on 127.0.0.1, or give --allow-unauthenticated (anyone who reaches it reads the whole registry)", addr, config.FileName)
	}
	tlsConfig, err := auth.ServerTLS(sc.TLS)
	if err != nil {
		return nil, err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	var guard *auth.Guard
	if sc.UIAuthEnabled() {
		if guard, err = auth.New(ctx, sc, auth.Options{Project: p.Name(), Logger: p.Logger(), Resources: ui.Resources, OpenHTTPPaths: ui.OpenPaths}); err != nil {
			return nil, err
		}
	}
	srv, err := ui.New(ui.Options{Project: p.Name(), Registry: reg, Warehouse: p.FilesDir(), Guard: guard, SignIn: sc.UI, Logger: p.Logger()})
	if err != nil {
		return nil, err
	}
	ln, url, err := ui.Listen(addr)
	if err != nil {
		return nil, err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
		url = "https" + strings.TrimPrefix(url, "http")
	}
	return &UI{Project: p.Name(), URL: url, Authentication: guard != nil, srv: srv, ln: ln}, nil
}

// Serve serves the UI until ctx is done.
func (u *UI) Serve(ctx context.Context) error { return ui.Serve(ctx, u.ln, u.srv) }
