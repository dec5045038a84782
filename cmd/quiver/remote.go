package main

// Remote clients (get-online --server, predict, health): how they reach a quiver serve —
// plaintext or TLS, with a client certificate, with a bearer token — and nothing else: they
// need no feature repo.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/quiverfs/quiver/internal/errkind"
)

// envToken is the environment variable that holds the bearer token when --token is not given.
const envToken = "QUIVER_TOKEN"

// remoteFlags are the connection flags of every command that talks to a quiver serve.
type remoteFlags struct {
	server     string
	useTLS     bool
	ca         string
	cert, key  string
	serverName string
	token      string
}

func (a *app) addRemoteFlags(cmd *cobra.Command, r *remoteFlags, serverUsage string) {
	f := cmd.Flags()
	f.StringVar(&r.server, "server", "", serverUsage)
	f.BoolVar(&r.useTLS, "tls", false, "connect with TLS, trusting the system's certificate authorities (implied by --tls-ca and --tls-cert)")
	f.StringVar(&r.ca, "tls-ca", "", "PEM file of the certificate authorities to trust for the server's certificate")
	f.StringVar(&r.cert, "tls-cert", "", "client certificate (PEM) for mutual TLS; with --tls-key")
	f.StringVar(&r.key, "tls-key", "", "client private key (PEM) for mutual TLS")
	f.StringVar(&r.serverName, "tls-server-name", "", "the name to verify in the server's certificate (default: the host of --server)")
	f.StringVar(&r.token, "token", "", "bearer token sent as 'authorization: Bearer …' (default $"+envToken+"); never printed")
}

// dial connects to the server the flags name. The token (from --token or $QUIVER_TOKEN) is
// sent with every call; over plaintext only to a loopback address.
func (a *app) dial(r *remoteFlags) (*grpc.ClientConn, error) {
	if r.server == "" {
		return nil, usage("give --server HOST:PORT")
	}
	token := r.token
	if token == "" {
		token = a.getenv(envToken)
	}
	a.addSecret(token)
	if (r.cert == "") != (r.key == "") {
		return nil, usage("--tls-cert and --tls-key go together: give both for mutual TLS, or neither")
	}
	useTLS := r.useTLS || r.ca != "" || r.cert != ""
	var creds credentials.TransportCredentials
	if useTLS {
		cfg, err := r.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	} else {
		if token != "" && !isLoopback(r.server) {
			return nil, usage("refusing to send a token in plaintext to %s: connect with TLS (--tls or --tls-ca FILE)", r.server)
		}
		creds = insecure.NewCredentials()
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: token, secure: useTLS}))
	}
	conn, err := grpc.NewClient(r.server, opts...)
	if err != nil {
		return nil, usage("--server %q: %w", r.server, err)
	}
	return conn, nil
}

func (r *remoteFlags) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.serverName}
	if r.ca != "" {
		pem, err := os.ReadFile(r.ca)
		if err != nil {
			return nil, errkind.Errorf(errkind.Invalid, "--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errkind.Errorf(errkind.Invalid, "--tls-ca %s: no PEM certificates in the file", r.ca)
		}
		cfg.RootCAs = pool
	}
	if r.cert != "" {
		pair, err := tls.LoadX509KeyPair(r.cert, r.key)
		if err != nil {
			return nil, errkind.Errorf(errkind.Invalid, "--tls-cert %s / --tls-key %s: %w", r.cert, r.key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// isLoopback tells whether HOST:PORT names this machine.
func isLoopback(server string) bool {
	host, _, err := net.SplitHostPort(server)
	if err != nil {
		host = server
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearer sends a token as gRPC "authorization: Bearer …" metadata.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false only for the plaintext loopback case dial allows.
func (b bearer) RequireTransportSecurity() bool { return b.secure }
