package project

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestShardJobGolden: materialize --backend kubernetes --shards 4 renders an Indexed Job of 4
// pods at once, pod i running --shard $(JOB_COMPLETION_INDEX)/4 over the interval; the
// manifest decodes strictly as a batch/v1 Job (k8s.io/api in the test only) and matches the
// golden file. No cluster runs it here.
func TestShardJobGolden(t *testing.T) {
	p := &Project{Config: &config.Config{Project: "shop", Registry: "postgres://quiver@registry.db:5432/quiver",
		Online: "redis://redis.internal:6379/0", Offline: config.Offline{Warehouse: "s3://lake/warehouse"}}}
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	opts := ShardOptions{Views: []string{"user_stats", "txn"}, Start: start, End: start.Add(24 * time.Hour), Backend: BackendKubernetes,
		Shards: 4, Image: "ghcr.io/acme/shop-features:1.2", OnlineWorkers: 2}
	got, err := p.ShardJob(opts)
	require.NoError(t, err)
	var job batchv1.Job
	require.NoError(t, sigsyaml.UnmarshalStrict(got, &job), "the manifest decodes strictly as a batch/v1 Job")
	require.Equal(t, batchv1.IndexedCompletion, *job.Spec.CompletionMode)
	require.Equal(t, int32(4), *job.Spec.Completions)
	require.Equal(t, int32(4), *job.Spec.Parallelism)
	c := job.Spec.Template.Spec.Containers[0]
	require.Equal(t, []string{"quiver", "materialize", "--start", "2026-11-01T00:00:00Z", "--end", "2026-11-02T00:00:00Z",
		"--shard", "$(JOB_COMPLETION_INDEX)/4", "--online-workers", "2", "user_stats", "txn"}, c.Command)
	path := filepath.Join("testdata", "k8s_materialize_shards.yaml")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	out := filepath.Join(t.TempDir(), "job.yaml")
	require.NoError(t, p.WriteShardJob(opts, out, nil))
	written, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, string(got), string(written), "--out FILE writes the same manifest")

	for name, tc := range map[string]struct {
		edit func(*ShardOptions, *config.Config)
		kind errkind.Kind
		want string
	}{
		"no image":       {func(o *ShardOptions, _ *config.Config) { o.Image = "" }, errkind.Usage, "needs --image IMAGE"},
		"zero shards":    {func(o *ShardOptions, _ *config.Config) { o.Shards = 0 }, errkind.Usage, "--shards 0: use 1 to 1024 pods"},
		"shard too":      {func(o *ShardOptions, _ *config.Config) { o.Shard = "0/4" }, errkind.Usage, "give --shards N, not --shard"},
		"other backend":  {func(o *ShardOptions, _ *config.Config) { o.Backend = "slurm" }, errkind.Usage, `--backend "slurm": valid backends: kubernetes`},
		"bad view":       {func(o *ShardOptions, _ *config.Config) { o.Views = []string{"a-b"} }, errkind.Usage, `view "a-b" is not a view name`},
		"sqlite online":  {func(_ *ShardOptions, c *config.Config) { c.Online = "sqlite:///repo/.quiver/online.db" }, errkind.Invalid, "the online is embedded"},
		"local lake":     {func(_ *ShardOptions, c *config.Config) { c.Offline.Warehouse = "/repo/.quiver/warehouse" }, errkind.Invalid, "a local directory the pods cannot reach"},
		"shards no back": {func(o *ShardOptions, _ *config.Config) { o.Backend = "" }, errkind.Usage, "--shards N needs --backend kubernetes"},
	} {
		t.Run(name, func(t *testing.T) {
			o, c := opts, *p.Config
			tc.edit(&o, &c)
			_, err := (&Project{Config: &c}).ShardJob(o)
			require.Equal(t, tc.kind, errkind.Of(err), "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
