package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTrainReusesDatasetAndTracesLineage trains the scaffolded job twice (with a shell script
// standing in for the trainer), then aliases the model and traces it back.
func TestTrainReusesDatasetAndTracesLineage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	script := filepath.Join(dir, "train.sh")
	require.NoError(t, os.WriteFile(script, []byte(`#!/bin/sh
test -f "$QUIVER_DATASET_DIR/manifest.json" || exit 9
echo '{"key":"loss","value":0.5,"step":1}' >> "$QUIVER_METRICS_FILE"
echo fake-onnx > "$QUIVER_OUTPUT_DIR/model.onnx"
`), 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jobs, []byte(strings.Replace(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`, 1)), 0o644))
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	end := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	r := quiver(t, nil, "-C", dir, "materialize", "--start", time.Now().UTC().Add(-40*24*time.Hour).Format(time.RFC3339), "--end", end)
	require.Equal(t, exitOK, r.code, r.stderr)

	r = quiver(t, nil, "-C", dir, "train", "churn_train")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, "Built dataset churn_train@v1")
	require.Contains(t, r.stdout, "Registered model churn v1")
	r = quiver(t, nil, "-C", dir, "train", "churn_train", "--param", "epochs=3")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stderr, "Dataset cache hit: reusing churn_train@v1")
	require.Contains(t, r.stdout, "Registered model churn v2")

	r = quiver(t, nil, "-C", dir, "-o", "json", "runs", "list", "--job", "churn_train")
	require.Equal(t, exitOK, r.code, r.stderr)
	var runs []struct{ Status string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs))
	require.Len(t, runs, 2)
	require.Equal(t, "FINISHED", runs[0].Status)

	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "models", "alias", "churn", "1", "production").code)
	r = quiver(t, nil, "-C", dir, "lineage", "churn@production")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, want := range []string{"model    churn v1", "└─ run", "dataset  churn_train@v1", "entities  file labels.parquet", "feature service  churn_v1 v1", "feature view  user_stats v1  offline snapshot ", "source user_activity v1"} {
		require.Contains(t, r.stdout, want)
	}
	require.NotContains(t, r.stdout, "offline snapshot 0", "the dataset read a real snapshot")

	// The Kubernetes backend renders the Job manifest.
	r = quiver(t, nil, "-C", dir, "train", "churn_train", "--backend", "kubernetes", "--dry-run", "--dataset", "churn_train@v1")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "kind: Job")
	require.Contains(t, r.stdout, "image: ghcr.io/quiverfs/shop-trainer:latest")

	// A dataset a registered model was trained on is not removed without --force.
	r = quiver(t, nil, "-C", dir, "dataset", "rm", "churn_train@v1")
	require.Equal(t, exitInvalid, r.code)
	require.Contains(t, r.stderr, "churn@v1")
}

// TestLineageNamesOnDemandInputs is issue 22 item 15: quiver lineage of a model whose feature
// service has an on-demand view names that view and the request source it reads (as -o json
// does), not only the stored feature views.
func TestLineageNamesOnDemandInputs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	writeFile(t, filepath.Join(dir, "train.sh"), "#!/bin/sh\necho fake-onnx > \"$QUIVER_OUTPUT_DIR/model.onnx\"\n")
	require.NoError(t, os.Chmod(filepath.Join(dir, "train.sh"), 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(b), `command: ["shop-trainer"]`))
	require.NoError(t, os.WriteFile(jobs, []byte(strings.ReplaceAll(string(b), `command: ["shop-trainer"]`, `command: ["./train.sh"]`)), 0o644))
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	r := quiver(t, nil, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", dir, "train", "checkout_train")
	require.Equal(t, exitOK, r.code, r.stderr)

	r = quiver(t, nil, "-C", dir, "-o", "json", "lineage", "churn_checkout@v1")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, `"cart_features"`)
	require.Contains(t, r.stdout, `"request_source/checkout"`)

	r = quiver(t, nil, "-C", dir, "lineage", "churn_checkout@v1")
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, want := range []string{
		"feature service  checkout_v1 v1",
		"├─ feature view  user_stats v1  offline snapshot ",
		"└─ on-demand view  cart_features v1",
		"├─ request source  checkout v1",
		"└─ reads feature view  user_stats",
	} {
		require.Contains(t, r.stdout, want, r.stdout)
	}
}
