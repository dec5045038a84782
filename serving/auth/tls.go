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
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	where := addr
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		where = addr + " (every interface)"
	}
	return fmt.Errorf("%w: %s: anyone who can reach it could read every feature and model. Configure authentication in the serving: section of quiver.yaml (tls.client_ca, jwt or api_tokens; see docs/security.md), listen on 127.0.0.1, or pass --allow-unauthenticated to accept the risk", ErrInsecureBind, where)
}
