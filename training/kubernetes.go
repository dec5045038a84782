package training

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KubernetesJob is what the Kubernetes backend needs to render a batch/v1 Job.
type KubernetesJob struct {
	Project   string
	Job       string
	RunID     string
	Image     string
	Namespace string
	Command   []string
	Env       map[string]string
	Params    map[string]any
	GPU       int
	CPU       string
	Memory    string
	Retries   int
	// NodeSelector places the pod, e.g. on GPU nodes.
	NodeSelector map[string]string
	// DatasetURI is where the pod reads the snapshot (a shared volume path or object-store URL).
	DatasetURI string
	// OutputURI is where the pod writes its output directory.
	OutputURI string
}

// Plain structs with yaml tags keep the manifest's field order stable for golden files and
// avoid pulling the Kubernetes client libraries into the binary for a manifest we only print.
type k8sJob struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   k8sMeta    `yaml:"metadata"`
	Spec       k8sJobSpec `yaml:"spec"`
}

type k8sMeta struct {
	Name      string            `yaml:"name,omitempty"`
	Namespace string            `yaml:"namespace,omitempty"`
	Labels    map[string]string `yaml:"labels,omitempty"`
}

type k8sJobSpec struct {
	BackoffLimit            int         `yaml:"backoffLimit"`
	TTLSecondsAfterFinished int         `yaml:"ttlSecondsAfterFinished"`
	Template                k8sTemplate `yaml:"template"`
}

type k8sTemplate struct {
	Metadata k8sMeta `yaml:"metadata"`
	Spec     k8sPod  `yaml:"spec"`
}

type k8sPod struct {
	RestartPolicy string            `yaml:"restartPolicy"`
	NodeSelector  map[string]string `yaml:"nodeSelector,omitempty"`
	Tolerations   []k8sToleration   `yaml:"tolerations,omitempty"`
	Containers    []k8sContainer    `yaml:"containers"`
}

type k8sToleration struct {
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"`
	Effect   string `yaml:"effect"`
}

type k8sContainer struct {
	Name      string       `yaml:"name"`
	Image     string       `yaml:"image"`
	Command   []string     `yaml:"command"`
	Env       []k8sEnv     `yaml:"env"`
	Resources k8sResources `yaml:"resources"`
}

type k8sEnv struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

type k8sResources struct {
	Requests map[string]string `yaml:"requests,omitempty"`
	Limits   map[string]string `yaml:"limits,omitempty"`
}

// dnsLabel lowercases s and replaces what a Kubernetes name may not hold with '-'.
func dnsLabel(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "-")
	}
	return out
}

// RenderKubernetesJob renders the batch/v1 Job manifest of a training run as YAML: the
// container runs the job's command with the same QUIVER_* environment as a local run, GPUs are
// requested as nvidia.com/gpu limits (with the usual GPU taint tolerated), and retries map to
// backoffLimit.
func RenderKubernetesJob(j KubernetesJob) ([]byte, error) {
	if j.Image == "" {
		return nil, fmt.Errorf("%w: training job %q has no image; the Kubernetes backend runs the command in a container image (add image: to the job)", ErrInvalidInput, j.Job)
	}
	params, err := json.Marshal(j.Params)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "quiver", "quiver.dev/project": dnsLabel(j.Project), "quiver.dev/job": dnsLabel(j.Job), "quiver.dev/run": dnsLabel(j.RunID)}
	env := []k8sEnv{
		{Name: EnvRunID, Value: j.RunID},
		{Name: EnvDatasetDir, Value: j.DatasetURI},
		{Name: EnvOutputDir, Value: j.OutputURI},
		{Name: EnvMetricsFile, Value: strings.TrimRight(j.OutputURI, "/") + "/metrics.jsonl"},
		{Name: EnvParams, Value: string(params)},
	}
	keys := make([]string, 0, len(j.Env))
	for k := range j.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k8sEnv{Name: k, Value: j.Env[k]})
	}
	res := k8sResources{Requests: map[string]string{}, Limits: map[string]string{}}
	if j.CPU != "" {
		res.Requests["cpu"] = j.CPU
	}
	if j.Memory != "" {
		res.Requests["memory"] = j.Memory
		res.Limits["memory"] = j.Memory
	}
	pod := k8sPod{RestartPolicy: "Never", NodeSelector: j.NodeSelector}
	if j.GPU > 0 {
		res.Limits["nvidia.com/gpu"] = strconv.Itoa(j.GPU)
		pod.Tolerations = []k8sToleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}
	}
	pod.Containers = []k8sContainer{{Name: "train", Image: j.Image, Command: j.Command, Env: env, Resources: res}}
	m := k8sJob{
		APIVersion: "batch/v1",
		Kind:       "Job",
		Metadata:   k8sMeta{Name: dnsLabel("quiver-" + j.Job + "-" + j.RunID), Namespace: j.Namespace, Labels: labels},
		Spec: k8sJobSpec{
			BackoffLimit:            j.Retries,
			TTLSecondsAfterFinished: 86400,
			Template:                k8sTemplate{Metadata: k8sMeta{Labels: labels}, Spec: pod},
		},
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}
