package auth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
)

// ServerTLS builds the server's TLS configuration from t: its certificate and key and, with
// a client CA, verification of client certificates (mTLS). It returns nil, nil when t has
// no certificate. Every error names the file that could not be used.
func ServerTLS(t TLSConfig) (*tls.Config, error) {
	if t.CertFile == "" && t.KeyFile == "" {
		if t.ClientCAFile != "" {
			return nil, configErrorf("tls client_ca %s needs the server's cert and key", t.ClientCAFile)
		}
		return nil, nil
	}
	certPEM, err := os.ReadFile(t.CertFile)
	if err != nil {
		return nil, configErrorf("read TLS certificate: %v", err)
	}
	keyPEM, err := os.ReadFile(t.KeyFile)
	if err != nil {
		return nil, configErrorf("read TLS key: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, configErrorf("TLS certificate %s and key %s: %v", t.CertFile, t.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		caPEM, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, configErrorf("read TLS client CA: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, configErrorf("TLS client CA %s holds no PEM certificates", t.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		if t.ClientAuth == ClientAuthVerifyIfGiven {
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return cfg, nil
}

// certPrincipal is the principal of a verified client certificate, or nil.
func certPrincipal(state *tls.ConnectionState) *Principal {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return nil
	}
	p := &Principal{CertSubject: state.VerifiedChains[0][0].Subject.String()}
	p.ids = p.buildIDs()
	return p
}

// CheckBind returns ErrInsecureBind unless addr's host is a loopback address ("localhost",
// 127.0.0.0/8, ::1). A server without authentication calls it for every address it listens
// on, unless it was explicitly allowed to serve unauthenticated (quiver serve
// --allow-unauthenticated).
func CheckBind(addr string) error {
	where, ok := loopback(addr)
	if ok {
		return nil
	}
	return fmt.Errorf("%w: %s: anyone who can reach it could read every feature and model. Configure authentication in the serving: section of quiver.yaml (tls.client_ca, jwt or api_tokens; see docs/security.md), listen on 127.0.0.1, or pass --allow-unauthenticated to accept the risk", ErrInsecureBind, where)
}

// CheckMetricsBind is CheckBind for the metrics endpoint, which is never authenticated (a
// Prometheus scraper brings no credentials): it returns ErrInsecureBind unless addr is a
// loopback address, whatever authentication the API has. A server calls it unless it was
// explicitly allowed to serve metrics to anyone (quiver serve --allow-unauthenticated-metrics).
func CheckMetricsBind(addr string) error {
	where, ok := loopback(addr)
	if ok {
		return nil
	}
	return fmt.Errorf("%w: --metrics-addr %s: /metrics is never authenticated, so anyone who can reach it reads the server's metrics (feature service and model names, request rates, errors). Listen on 127.0.0.1 (and scrape through a sidecar or port-forward), or pass --allow-unauthenticated-metrics to accept that (docs/security.md)", ErrInsecureBind, where)
}

// loopback reports whether addr's host is a loopback address ("localhost", 127.0.0.0/8,
// ::1), and otherwise names addr for a message.
func loopback(addr string) (where string, ok bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return addr, true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return addr, true
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return addr + " (every interface)", false
	}
	return addr, false
}
