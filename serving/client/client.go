// Package client connects to a quiver serve: plaintext or TLS, with a client certificate,
// with a bearer token. It is what the CLI's remote commands (get-online --server, push
// --server, predict, health) and any Go program use to reach a server.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/errkind"
)

// Options name a server and how to reach it.
type Options struct {
	// Server is HOST:PORT.
	Server string
	// TLS connects with TLS, trusting the system's certificate authorities; implied by CA
	// and Cert.
	TLS bool
	// CA is a PEM file of the certificate authorities to trust for the server's certificate.
	CA string
	// Cert and Key are the client certificate and key (PEM) for mutual TLS; both or neither.
	Cert, Key string
	// ServerName is the name to verify in the server's certificate (default: Server's host).
	ServerName string
	// Token is sent with every call as "authorization: Bearer …"; over plaintext only to a
	// loopback address.
	Token string
}

// Dial connects to the server (lazily, as grpc.NewClient does). Errors in the options are
// usage errors, unreadable certificate files invalid (internal/errkind).
func Dial(o Options) (*grpc.ClientConn, error) {
	if o.Server == "" {
		return nil, errkind.New(errkind.Usage, "give --server HOST:PORT")
	}
	if (o.Cert == "") != (o.Key == "") {
		return nil, errkind.New(errkind.Usage, "--tls-cert and --tls-key go together: give both for mutual TLS, or neither")
	}
	useTLS := o.TLS || o.CA != "" || o.Cert != ""
	var creds credentials.TransportCredentials
	if useTLS {
		cfg, err := o.tlsConfig()
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	} else {
		if o.Token != "" && !IsLoopback(o.Server) {
			return nil, errkind.Errorf(errkind.Usage, "refusing to send a token in plaintext to %s: connect with TLS (--tls or --tls-ca FILE)", o.Server)
		}
		creds = insecure.NewCredentials()
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: o.Token, secure: useTLS}))
	}
	conn, err := grpc.NewClient(o.Server, opts...)
	if err != nil {
		return nil, errkind.Errorf(errkind.Usage, "--server %q: %w", o.Server, err)
	}
	return conn, nil
}

func (o Options) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CA != "" {
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, errkind.Errorf(errkind.Invalid, "--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errkind.Errorf(errkind.Invalid, "--tls-ca %s: no PEM certificates in the file", o.CA)
		}
		cfg.RootCAs = pool
	}
	if o.Cert != "" {
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, errkind.Errorf(errkind.Invalid, "--tls-cert %s / --tls-key %s: %w", o.Cert, o.Key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// IsLoopback tells whether HOST:PORT names this machine.
func IsLoopback(server string) bool {
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

// RequireTransportSecurity is false only for the plaintext loopback case Dial allows.
func (b bearer) RequireTransportSecurity() bool { return b.secure }

// WaitServing asks the server's grpc.health.v1 status until it is SERVING or wait has passed
// (one try when wait is 0). It returns the last status, and the last call's error when the
// server did not answer SERVING: an error of a server refusing the caller's credentials or
// access is returned at once.
func WaitServing(ctx context.Context, conn *grpc.ClientConn, wait time.Duration) (healthpb.HealthCheckResponse_ServingStatus, error) {
	client := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(wait)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := client.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		st := resp.GetStatus()
		if err == nil && st == healthpb.HealthCheckResponse_SERVING {
			return st, nil
		}
		if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
			return st, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				err = errors.New(st.String())
			}
			return st, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
