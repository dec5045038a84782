package training_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	sigsyaml "sigs.k8s.io/yaml"

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
			var job batchv1.Job
			require.NoError(t, sigsyaml.UnmarshalStrict(got, &job), "the manifest decodes strictly as a batch/v1 Job")
			require.Equal(t, job.Spec.Template.Spec.Containers[0].Image, parsed["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"])
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

// Issue 18 item 6: the job is validated, with the quantities Kubernetes would accept, before
// any work.
func TestValidateKubernetesJob(t *testing.T) {
	ok := training.KubernetesJob{Job: "j", Image: "trainer:1", Command: []string{"train"}, CPU: "500m", Memory: "16Gi", GPU: 1}
	require.NoError(t, training.ValidateKubernetesJob(ok))
	for name, tc := range map[string]struct {
		edit func(*training.KubernetesJob)
		want string
	}{
		"no image":   {func(j *training.KubernetesJob) { j.Image = "" }, "has no image"},
		"no command": {func(j *training.KubernetesJob) { j.Command = nil }, "has no command"},
		"bad cpu":    {func(j *training.KubernetesJob) { j.CPU = "four" }, `resources cpu "four" is not a Kubernetes quantity`},
		"bad memory": {func(j *training.KubernetesJob) { j.Memory = "16 GB" }, `resources memory "16 GB" is not a Kubernetes quantity`},
		"zero cpu":   {func(j *training.KubernetesJob) { j.CPU = "0" }, `resources cpu "0" must be more than 0`},
		"negative":   {func(j *training.KubernetesJob) { j.GPU = -1 }, "resources gpu -1 must be 0 or more"},
	} {
		t.Run(name, func(t *testing.T) {
			j := ok
			tc.edit(&j)
			err := training.ValidateKubernetesJob(j)
			require.ErrorIs(t, err, training.ErrInvalidJob)
			require.ErrorContains(t, err, `training job "j" cannot run on Kubernetes: `)
			require.ErrorContains(t, err, tc.want)
			_, err = training.RenderKubernetesJob(j)
			require.ErrorIs(t, err, training.ErrInvalidJob)
		})
	}
	require.Equal(t, []string{"/mnt/ds"}, training.LocalLocations(training.KubernetesJob{DatasetURI: "/mnt/ds", OutputURI: "s3://b/out"}))
}

// quantityVerdict is what ValidateKubernetesJob says of cpu q: "ok", "invalid" or "not positive".
func quantityVerdict(q string) string {
	err := training.ValidateKubernetesJob(training.KubernetesJob{Job: "j", Image: "i", Command: []string{"c"}, CPU: q})
	switch {
	case err == nil:
		return "ok"
	case strings.Contains(err.Error(), "is not a Kubernetes quantity"):
		return "invalid"
	case strings.Contains(err.Error(), "must be more than 0"):
		return "not positive"
	}
	return err.Error()
}

// apimachineryVerdict is what k8s.io/apimachinery's parser, which Kubernetes runs, says of q.
func apimachineryVerdict(q string) string {
	v, err := resource.ParseQuantity(q)
	switch {
	case err != nil:
		return "invalid"
	case v.Sign() <= 0:
		return "not positive"
	}
	return "ok"
}

var quantitySeeds = []string{
	"4", "500m", "16Gi", "0.5", "1.", ".5", "1.G", "0", "-1", "+2", "000", "0.000", "-", "+", ".",
	"1e3", "1E-3", "1e", "1e+", "1e-", "1e3.5", "1ee3", "1Ki", "1ki", "1K", "1KiB", "1Gb", "16 GB", "four",
	"1n", "1u", "0.1n", "1e-1000", "1e9999999999999999999", "12345678901234567890", "1.5Gi", "1.5Mi", "1P", "1Ei",
	"1E", "1T", "1k", "1M", "1G", " 1", "1 ", "0x10", "1_000", "1,5", "١", "1i", "1m3", "1e3m", "--1", "+-1", "1..2",
}

// TestKubernetesQuantityMatchesKubernetes: the manifest's own quantity parser agrees with
// k8s.io/apimachinery's, which Kubernetes runs, on what is a quantity and what is above 0;
// and a rendered manifest decodes to the quantity the job gave.
func TestKubernetesQuantityMatchesKubernetes(t *testing.T) {
	for _, q := range quantitySeeds {
		require.Equal(t, apimachineryVerdict(q), quantityVerdict(q), "%q", q)
	}
	out, err := training.RenderKubernetesJob(training.KubernetesJob{Job: "j", RunID: "r", Image: "i", Command: []string{"c"}, CPU: "0.5", Memory: "1.5Gi", GPU: 1})
	require.NoError(t, err)
	var job batchv1.Job
	require.NoError(t, sigsyaml.UnmarshalStrict(out, &job))
	res := job.Spec.Template.Spec.Containers[0].Resources
	require.Zero(t, res.Requests.Cpu().Cmp(resource.MustParse("500m")))
	require.Zero(t, res.Requests.Memory().Cmp(resource.MustParse("1536Mi")))
	require.Zero(t, res.Limits.Name("nvidia.com/gpu", resource.DecimalSI).Cmp(resource.MustParse("1")))
}

// hugeExponent matches quantities whose exponent has 7 digits or more.
var hugeExponent = regexp.MustCompile(`[eE][+-]?0*[0-9]{7,}$`)

func FuzzKubernetesQuantity(f *testing.F) {
	for _, q := range quantitySeeds {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if q == "" {
			return // no quantity given: nothing to check
		}
		if hugeExponent.MatchString(q) {
			return // Kubernetes' parser would compute 10^(that many) digits
		}
		if want, got := apimachineryVerdict(q), quantityVerdict(q); want != got {
			t.Fatalf("%q: Kubernetes says %s, quiver says %s", q, want, got)
		}
	})
}
