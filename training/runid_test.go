package training_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/sqlite"
	"github.com/quiverfs/quiver/training"
)

// Issue 18 item 7: runs are found by a unique id prefix, as git and docker allow.
func TestResolveRunIDPrefixes(t *testing.T) {
	ctx := context.Background()
	reg, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	for _, r := range []registry.TrainingRun{
		{Project: "shop", Job: "churn_train", ID: "3fa9c01"},
		{Project: "shop", Job: "churn_train", ID: "3fb2e77"},
		{Project: "shop", Job: "fraud_train", ID: "8d0c4aa"},
		{Project: "other", Job: "x", ID: "8d1ffff"},
	} {
		_, err := reg.CreateTrainingRun(ctx, r)
		require.NoError(t, err)
	}

	for ref, want := range map[string]registry.TrainingRunID{"3fa9c01": "3fa9c01", "3fa": "3fa9c01", "3fb": "3fb2e77", "8d": "8d0c4aa"} {
		run, err := training.ResolveRunID(ctx, reg, "shop", ref)
		require.NoError(t, err, ref)
		require.Equal(t, want, run.ID, ref)
	}

	_, err = training.ResolveRunID(ctx, reg, "shop", "3f")
	require.ErrorIs(t, err, training.ErrAmbiguousRunID)
	require.ErrorIs(t, err, definitions.ErrInvalid, "exit code 1 in the CLI")
	require.ErrorContains(t, err, `ambiguous run id: "3f" matches 2 runs: `)
	require.ErrorContains(t, err, "3fa9c01 (job churn_train, ")
	require.ErrorContains(t, err, "3fb2e77 (job churn_train, ")
	require.ErrorContains(t, err, "give more of the id")

	_, err = training.ResolveRunID(ctx, reg, "shop", "ffff")
	require.ErrorIs(t, err, registry.ErrNotFound)
	require.ErrorContains(t, err, "run ffff: no run has this id or id prefix")

	// Another project's runs are not matched, by prefix or in full.
	_, err = training.ResolveRunID(ctx, reg, "shop", "8d1ffff")
	require.ErrorIs(t, err, registry.ErrNotFound)
}
