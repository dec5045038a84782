package training_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/training"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestRenderKubernetesJobGolden(t *testing.T) {
	cases := map[string]training.KubernetesJob{
		"k8s_gpu_job.yaml": {
			Project: "shop", Job: "churn_train", RunID: "r-20261122-abc123", Image: "ghcr.io/acme/churn-trainer:1.4", Namespace: "ml",
			Command: []string{"python", "train_torch.py"}, Env: map[string]string{"TORCH_HOME": "/cache", "A": "1"},
			Params: map[string]any{"epochs": int64(10), "lr": 0.01}, GPU: 2, CPU: "8", Memory: "32Gi", Retries: 2,
			NodeSelector: map[string]string{"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
			DatasetURI:   "s3://warehouse/datasets/churn_train/v3", OutputURI: "s3://warehouse/runs/r-20261122-abc123/output",
		},
		"k8s_cpu_job.yaml": {
			Project: "shop", Job: "Churn_Train", RunID: "r1", Image: "trainer:latest",
			Command: []string{"/bin/trainer"}, Params: map[string]any{}, DatasetURI: "/mnt/ds", OutputURI: "/mnt/out/",
		},
	}
	for name, job := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := training.RenderKubernetesJob(job)
			require.NoError(t, err)
			var parsed map[string]any
			require.NoError(t, yaml.Unmarshal(got, &parsed), "the manifest must be valid YAML")
			path := filepath.Join("testdata", name)
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
		})
	}
	_, err := training.RenderKubernetesJob(training.KubernetesJob{Job: "j"})
	require.ErrorContains(t, err, "has no image")
}
