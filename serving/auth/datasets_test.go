package auth_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/serving/auth/authtest"
)

// TestDatasetsGrant: reading or building a dataset needs a datasets grant naming it (or
// every one of its project); a project grant, which reads everything online, does not give
// it. AuthorizeResources names the first resource not granted.
func TestDatasetsGrant(t *testing.T) {
	cfg, err := parseServing(t, t.TempDir(), `serving:
  api_tokens:
    - { name: nightly, sha256: `+authtest.SHA256("n")+` }
  policy:
    grants:
      - principals: [subject:trainer]
        datasets: [churn_train, other/*]
        feature_services: [churn_v1]
      - principals: [subject:admin]
        projects: ["*"]
      - principals: [subject:all]
        datasets: ["*"]
`)
	require.NoError(t, err)
	require.Equal(t, []string{"churn_train", "other/*"}, cfg.Policy.Grants[0].Datasets)
	f := newGuard(t, cfg)
	ds := func(project, name string) auth.Resource {
		return auth.Resource{Kind: auth.KindDataset, Project: project, Name: name}
	}
	svc := auth.Resource{Kind: auth.KindFeatureService, Project: "shop", Name: "churn_v1"}
	for _, tc := range []struct {
		p      *auth.Principal
		rs     []auth.Resource
		denied string
	}{
		{&auth.Principal{Subject: "trainer"}, []auth.Resource{ds("shop", "churn_train"), svc}, ""},
		{&auth.Principal{Subject: "trainer"}, []auth.Resource{ds("shop", "fraud_train")}, `dataset "fraud_train" in project "shop"`},
		{&auth.Principal{Subject: "trainer"}, []auth.Resource{ds("other", "anything")}, ""},
		{&auth.Principal{Subject: "admin"}, []auth.Resource{svc}, ""},
		{&auth.Principal{Subject: "admin"}, []auth.Resource{ds("shop", "churn_train")}, `dataset "churn_train" in project "shop"`},
		{&auth.Principal{Subject: "all"}, []auth.Resource{ds("shop", "fraud_train")}, ""},
		{&auth.Principal{Subject: "all"}, []auth.Resource{ds("shop", "fraud_train"), svc}, `feature service "churn_v1"`},
	} {
		err := f.guard.AuthorizeResources(auth.WithPrincipal(context.Background(), tc.p), "/arrow.flight.protocol.FlightService/DoGet", tc.rs...)
		if tc.denied == "" {
			require.NoError(t, err, "%s %v", tc.p, tc.rs)
			continue
		}
		require.ErrorIs(t, err, auth.ErrPermissionDenied)
		require.ErrorContains(t, err, tc.p.String()+" is not granted "+tc.denied)
	}
	require.ErrorIs(t, f.guard.AuthorizeResources(context.Background(), "/x", ds("shop", "a")), auth.ErrUnauthenticated)

	_, err = parseServing(t, t.TempDir(), "serving:\n  policy:\n    grants:\n      - principals: [subject:x]\n        datasets: [\"bad name\"]\n")
	require.ErrorContains(t, err, `grant dataset: "bad name" is not a valid name`)
}
