package training

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
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

// ValidateKubernetesJob checks what the Kubernetes backend needs before any work is done: a
// container image, a command, and resources Kubernetes accepts (cpu and memory as resource
// quantities, gpu 0 or more). Errors wrap ErrInvalidJob and name the job and the field.
func ValidateKubernetesJob(j KubernetesJob) error {
	var problems []string
	if j.Image == "" {
		problems = append(problems, "it has no image; the Kubernetes backend runs the command in a container image (add image: to the job)")
	}
	if len(j.Command) == 0 {
		problems = append(problems, "it has no command")
	}
	for _, q := range []struct{ name, value string }{{"cpu", j.CPU}, {"memory", j.Memory}} {
		if q.value == "" {
			continue
		}
		if v, err := resource.ParseQuantity(q.value); err != nil {
			problems = append(problems, fmt.Sprintf("resources %s %q is not a Kubernetes quantity (e.g. 4, 500m, 16Gi)", q.name, q.value))
		} else if v.Sign() <= 0 {
			problems = append(problems, fmt.Sprintf("resources %s %q must be more than 0", q.name, q.value))
		}
	}
	if j.GPU < 0 {
		problems = append(problems, fmt.Sprintf("resources gpu %d must be 0 or more", j.GPU))
	}
	if j.Retries < 0 {
		problems = append(problems, fmt.Sprintf("retries %d must be 0 or more", j.Retries))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: training job %q cannot run on Kubernetes: %s", ErrInvalidJob, j.Job, strings.Join(problems, "; "))
	}
	return nil
}

// LocalLocations returns the job's dataset and output locations that are local paths, which
// a pod can read only if the same path is mounted into it.
func LocalLocations(j KubernetesJob) []string {
	var out []string
	for _, u := range []string{j.DatasetURI, j.OutputURI} {
		if u != "" && !strings.Contains(u, "://") {
			out = append(out, u)
		}
	}
	return out
}

// RenderKubernetesJob renders the batch/v1 Job manifest of a training run as YAML, built with
// the k8s.io/api types Kubernetes itself decodes: the container runs the job's command with
// the same QUIVER_* environment as a local run, GPUs are requested as nvidia.com/gpu limits
// (with the usual GPU taint tolerated), and retries map to backoffLimit.
func RenderKubernetesJob(j KubernetesJob) ([]byte, error) {
	if err := ValidateKubernetesJob(j); err != nil {
		return nil, err
	}
	params, err := json.Marshal(j.Params)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "quiver", "quiver.dev/project": dnsLabel(j.Project), "quiver.dev/job": dnsLabel(j.Job), "quiver.dev/run": dnsLabel(j.RunID)}
	env := []corev1.EnvVar{
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
		env = append(env, corev1.EnvVar{Name: k, Value: j.Env[k]})
	}
	var res corev1.ResourceRequirements
	set := func(list *corev1.ResourceList, name corev1.ResourceName, value string) {
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = resource.MustParse(value) // validated above
	}
	if j.CPU != "" {
		set(&res.Requests, corev1.ResourceCPU, j.CPU)
	}
	if j.Memory != "" {
		set(&res.Requests, corev1.ResourceMemory, j.Memory)
		set(&res.Limits, corev1.ResourceMemory, j.Memory)
	}
	pod := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, NodeSelector: j.NodeSelector}
	if j.GPU > 0 {
		set(&res.Limits, "nvidia.com/gpu", strconv.Itoa(j.GPU))
		pod.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}
	pod.Containers = []corev1.Container{{Name: "train", Image: j.Image, Command: j.Command, Env: env, Resources: res}}
	backoff := int32(j.Retries)
	ttl := int32(86400)
	job := batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{Name: dnsLabel("quiver-" + j.Job + "-" + j.RunID), Namespace: j.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            &backoff,
			TTLSecondsAfterFinished: &ttl,
			Template:                corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod},
		},
	}
	// Marshal through JSON (the API's own encoding) and drop the empty status a manifest
	// does not carry.
	raw, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	return sigsyaml.Marshal(m)
}
