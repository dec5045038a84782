package ui

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/serving/auth"
)

// TestGuardedPages: with a Guard, pages need a valid bearer token and a grant of the whole
// project; /healthz and the stylesheet need neither.
func TestGuardedPages(t *testing.T) {
	f := newFixture(t)
	cfg := &auth.Config{
		APITokens: []auth.APIToken{{Name: "reader", SHA256: sha256.Sum256([]byte("reader-secret"))}, {Name: "narrow", SHA256: sha256.Sum256([]byte("narrow-secret"))}},
		Policy: &auth.Policy{Grants: []auth.Grant{
			{Principals: []string{"token:reader"}, Projects: []string{project}},
			{Principals: []string{"token:narrow"}, FeatureViews: []string{"user_stats"}},
		}},
	}
	g, err := auth.New(context.Background(), cfg, auth.Options{Project: project, Resources: Resources, OpenHTTPPaths: OpenPaths})
	require.NoError(t, err)
	s, err := New(Options{Project: project, Registry: f.reg, Warehouse: f.warehouse, Guard: g})
	require.NoError(t, err)
	call := func(path, token string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusUnauthorized, call("/views/user_stats", ""))
	require.Equal(t, http.StatusUnauthorized, call("/views/user_stats", "guess"))
	require.Equal(t, http.StatusForbidden, call("/views/user_stats", "narrow-secret"), "a grant of one view is not the project")
	require.Equal(t, http.StatusOK, call("/views/user_stats", "reader-secret"))
	require.Equal(t, http.StatusOK, call("/runs/compare?id=run-a&id=run-b", "reader-secret"))
	require.Equal(t, http.StatusOK, call("/healthz", ""))
	require.Equal(t, http.StatusOK, call("/static/style.css", ""))
}
