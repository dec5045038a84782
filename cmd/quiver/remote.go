package main

// Remote clients (get-online --server, push --server, predict, health) reach a quiver serve
// through serving/client; they need no feature repo.

import (
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/quiverfs/quiver/serving/client"
)

// envToken is the environment variable that holds the bearer token when --token is not given.
const envToken = "QUIVER_TOKEN"

// remoteFlags are the connection flags of every command that talks to a quiver serve.
type remoteFlags struct {
	client.Options
}

func (a *app) addRemoteFlags(cmd *cobra.Command, r *remoteFlags, serverUsage string) {
	f := cmd.Flags()
	f.StringVar(&r.Server, "server", "", serverUsage)
	f.BoolVar(&r.TLS, "tls", false, "connect with TLS, trusting the system's certificate authorities (implied by --tls-ca and --tls-cert)")
	f.StringVar(&r.CA, "tls-ca", "", "PEM file of the certificate authorities to trust for the server's certificate")
	f.StringVar(&r.Cert, "tls-cert", "", "client certificate (PEM) for mutual TLS; with --tls-key")
	f.StringVar(&r.Key, "tls-key", "", "client private key (PEM) for mutual TLS")
	f.StringVar(&r.ServerName, "tls-server-name", "", "the name to verify in the server's certificate (default: the host of --server)")
	f.StringVar(&r.Token, "token", "", "bearer token sent as 'authorization: Bearer …' (default $"+envToken+"); never printed")
}

// dial connects to the server the flags name. The token (from --token or $QUIVER_TOKEN) is
// sent with every call, and never printed.
func (a *app) dial(r *remoteFlags) (*grpc.ClientConn, error) {
	o := r.Options
	if o.Token == "" {
		o.Token = a.getenv(envToken)
	}
	a.addSecret(o.Token)
	return client.Dial(o)
}
