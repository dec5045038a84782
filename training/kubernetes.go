package training

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

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
		if positive, ok := parseQuantity(q.value); !ok {
			problems = append(problems, fmt.Sprintf("resources %s %q is not a Kubernetes quantity (e.g. 4, 500m, 16Gi)", q.name, q.value))
		} else if !positive {
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

// RenderKubernetesJob renders the batch/v1 Job manifest of a training run as YAML: the
// container runs the job's command with the same QUIVER_* environment as a local run, GPUs
// are requested as nvidia.com/gpu limits (with the usual GPU taint tolerated), and retries
// map to backoffLimit. The manifest is built from the few batch/v1 fields it sets (below),
// not from k8s.io/api, whose types would add about 7.6 MB to the quiver binary for this one
// command; the tests decode every manifest strictly with the k8s.io/api types.
// Quantities are written as the job gives them (Kubernetes accepts any valid spelling and
// normalizes it: "0.5" is "500m").
func RenderKubernetesJob(j KubernetesJob) ([]byte, error) {
	if err := ValidateKubernetesJob(j); err != nil {
		return nil, err
	}
	params, err := json.Marshal(j.Params)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "quiver", "quiver.dev/project": dnsLabel(j.Project), "quiver.dev/job": dnsLabel(j.Job), "quiver.dev/run": dnsLabel(j.RunID)}
	env := []k8sEnvVar{
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
		env = append(env, k8sEnvVar{Name: k, Value: j.Env[k]})
	}
	var res k8sResources
	set := func(list *map[string]string, name, value string) {
		if *list == nil {
			*list = map[string]string{}
		}
		(*list)[name] = value // validated above
	}
	if j.CPU != "" {
		set(&res.Requests, "cpu", j.CPU)
	}
	if j.Memory != "" {
		set(&res.Requests, "memory", j.Memory)
		set(&res.Limits, "memory", j.Memory)
	}
	pod := k8sPodSpec{RestartPolicy: "Never", NodeSelector: j.NodeSelector}
	if j.GPU > 0 {
		set(&res.Limits, "nvidia.com/gpu", strconv.Itoa(j.GPU))
		pod.Tolerations = []k8sToleration{{Key: "nvidia.com/gpu", Operator: "Exists", Effect: "NoSchedule"}}
	}
	pod.Containers = []k8sContainer{{Name: "train", Image: j.Image, Command: j.Command, Env: env, Resources: res}}
	backoff := int32(j.Retries)
	ttl := int32(86400)
	job := k8sJob{
		APIVersion: "batch/v1", Kind: "Job",
		Metadata: k8sObjectMeta{Name: dnsLabel("quiver-" + j.Job + "-" + j.RunID), Namespace: j.Namespace, Labels: labels},
		Spec: k8sJobSpec{
			BackoffLimit:            &backoff,
			TTLSecondsAfterFinished: &ttl,
			Template:                k8sPodTemplate{Metadata: k8sObjectMeta{Labels: labels}, Spec: pod},
		},
	}
	// Marshal through JSON (the API's own encoding); sigs.k8s.io/yaml writes it as kubectl
	// does, keys sorted.
	raw, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	return sigsyaml.JSONToYAML(raw)
}

// IndexedJob is a batch/v1 Job of Completions pods run at once (parallelism = completions),
// each told its index 0..Completions-1 by Kubernetes in JOB_COMPLETION_INDEX
// (completionMode: Indexed); the command may name it as $(JOB_COMPLETION_INDEX).
type IndexedJob struct {
	Name, Namespace string
	Labels          map[string]string
	Container       string
	Image           string
	Command         []string
	Completions     int
	CPU, Memory     string
	// Retries is the Job's backoffLimit: how many failed pods, over all indexes, it retries.
	Retries int
}

// RenderIndexedJob renders j as YAML with the same local batch/v1 structs as
// RenderKubernetesJob (no k8s.io/api in the binary); quantities are checked as Kubernetes
// would. Errors wrap ErrInvalidJob and name the job and the field.
func RenderIndexedJob(j IndexedJob) ([]byte, error) {
	var problems []string
	if j.Image == "" {
		problems = append(problems, "it has no image (the container image with quiver and the feature repo)")
	}
	if len(j.Command) == 0 {
		problems = append(problems, "it has no command")
	}
	if j.Completions < 1 {
		problems = append(problems, fmt.Sprintf("completions %d must be 1 or more", j.Completions))
	}
	for _, q := range []struct{ name, value string }{{"cpu", j.CPU}, {"memory", j.Memory}} {
		if positive, ok := parseQuantity(q.value); q.value != "" && (!ok || !positive) {
			problems = append(problems, fmt.Sprintf("resources %s %q is not a Kubernetes quantity above 0 (e.g. 4, 500m, 16Gi)", q.name, q.value))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: Kubernetes job %q: %s", ErrInvalidJob, j.Name, strings.Join(problems, "; "))
	}
	var res k8sResources
	if j.CPU != "" {
		res.Requests = map[string]string{"cpu": j.CPU}
	}
	if j.Memory != "" {
		if res.Requests == nil {
			res.Requests = map[string]string{}
		}
		res.Requests["memory"] = j.Memory
		res.Limits = map[string]string{"memory": j.Memory}
	}
	n, backoff, ttl := int32(j.Completions), int32(j.Retries), int32(86400)
	job := k8sJob{
		APIVersion: "batch/v1", Kind: "Job",
		Metadata: k8sObjectMeta{Name: dnsLabel(j.Name), Namespace: j.Namespace, Labels: j.Labels},
		Spec: k8sJobSpec{
			BackoffLimit: &backoff, CompletionMode: "Indexed", Completions: &n, Parallelism: &n,
			TTLSecondsAfterFinished: &ttl,
			Template: k8sPodTemplate{Metadata: k8sObjectMeta{Labels: j.Labels}, Spec: k8sPodSpec{
				RestartPolicy: "Never",
				Containers:    []k8sContainer{{Name: j.Container, Image: j.Image, Command: j.Command, Resources: res}},
			}},
		},
	}
	raw, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	return sigsyaml.JSONToYAML(raw)
}

// The batch/v1 Job fields a training run's manifest sets, with the API's JSON names.
type (
	k8sJob struct {
		APIVersion string        `json:"apiVersion"`
		Kind       string        `json:"kind"`
		Metadata   k8sObjectMeta `json:"metadata"`
		Spec       k8sJobSpec    `json:"spec"`
	}
	k8sObjectMeta struct {
		Name      string            `json:"name,omitempty"`
		Namespace string            `json:"namespace,omitempty"`
		Labels    map[string]string `json:"labels,omitempty"`
	}
	k8sJobSpec struct {
		BackoffLimit            *int32         `json:"backoffLimit,omitempty"`
		CompletionMode          string         `json:"completionMode,omitempty"`
		Completions             *int32         `json:"completions,omitempty"`
		Parallelism             *int32         `json:"parallelism,omitempty"`
		Template                k8sPodTemplate `json:"template"`
		TTLSecondsAfterFinished *int32         `json:"ttlSecondsAfterFinished,omitempty"`
	}
	k8sPodTemplate struct {
		Metadata k8sObjectMeta `json:"metadata"`
		Spec     k8sPodSpec    `json:"spec"`
	}
	k8sPodSpec struct {
		Containers    []k8sContainer    `json:"containers"`
		NodeSelector  map[string]string `json:"nodeSelector,omitempty"`
		RestartPolicy string            `json:"restartPolicy,omitempty"`
		Tolerations   []k8sToleration   `json:"tolerations,omitempty"`
	}
	k8sContainer struct {
		Name      string       `json:"name"`
		Image     string       `json:"image,omitempty"`
		Command   []string     `json:"command,omitempty"`
		Env       []k8sEnvVar  `json:"env,omitempty"`
		Resources k8sResources `json:"resources"`
	}
	k8sEnvVar struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	k8sResources struct {
		Limits   map[string]string `json:"limits,omitempty"`
		Requests map[string]string `json:"requests,omitempty"`
	}
	k8sToleration struct {
		Key      string `json:"key,omitempty"`
		Operator string `json:"operator,omitempty"`
		Effect   string `json:"effect,omitempty"`
	}
)

// parseQuantity reports whether s is a Kubernetes resource quantity — what
// k8s.io/apimachinery's resource.ParseQuantity accepts — and whether it is more than 0:
//
//	<quantity> ::= <sign>? <digits>? ("." <digits>?)? <suffix>
//	<suffix>   ::= "" | n | u | m | k | M | G | T | P | E | Ki | Mi | Gi | Ti | Pi | Ei
//	             | (e | E) <sign>? <digits>
//
// with that parser's corner cases: it follows its scan, fast path and fallback step by step
// (Apache-2.0, The Kubernetes Authors). The tests compare the two on a table and under fuzzing.
func parseQuantity(s string) (positive, ok bool) {
	if s == "" {
		return false, false
	}
	pos, end := 0, len(s)
	negative := false
	switch s[0] {
	case '-':
		negative, pos = true, 1
	case '+':
		pos = 1
	}
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	for pos < end && s[pos] == '0' { // leading zeros are not significant
		pos++
	}
	numStart := pos
	for pos < end && isDigit(s[pos]) {
		pos++
	}
	num := s[numStart:pos]
	if num == "" {
		num = "0"
	}
	var denom string
	if pos < end && s[pos] == '.' {
		pos++
		denomStart := pos
		for pos < end && isDigit(s[pos]) {
			pos++
		}
		denom = s[denomStart:pos]
	}
	value := s[:pos]
	suffixStart := pos
	for pos < end && strings.IndexByte("eEinumkKMGTP", s[pos]) >= 0 {
		pos++
	}
	if pos < end && (s[pos] == '-' || s[pos] == '+') {
		pos++
	}
	for ; pos < end; pos++ {
		if !isDigit(s[pos]) {
			return false, false
		}
	}
	var exponent int32
	binary := false
	switch suffix := s[suffixStart:]; suffix {
	case "n", "u", "m", "", "k", "M", "G", "T", "P", "E":
		exponent = map[string]int32{"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}[suffix]
	case "Ki", "Mi", "Gi", "Ti", "Pi", "Ei":
		binary, exponent = true, map[string]int32{"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}[suffix]
	default:
		if len(suffix) < 2 || (suffix[0] != 'e' && suffix[0] != 'E') {
			return false, false
		}
		e, err := strconv.ParseInt(suffix[1:], 10, 64)
		if err != nil {
			return false, false
		}
		exponent = int32(e) // as Kubernetes does
	}
	positive = !negative && strings.Trim(num+denom, "0") != ""
	// The fast path parses num+denom as an int64 and takes any value it can hold.
	fast := false
	if !binary {
		fast = len(num)+len(denom) <= 18 && exponent-int32(len(denom)) >= -9
	} else if exponent >= 0 && denom == "" && 15-int32(len(num))-int32(float32(exponent)*3/10)-1 >= 0 {
		v, _ := strconv.ParseInt(num, 10, 64)
		fast = v == 0 || v == 1 || v*(1<<exponent)/(1<<exponent) == v
	}
	// Otherwise the number is read as a decimal, which needs a digit.
	return positive, fast || strings.ContainsAny(value, "0123456789")
}
