package training_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/registry/sqlite"
	"github.com/quiverfs/quiver/training"
)

// syncBuffer is a bytes.Buffer safe for the job's two output streams.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newJobRequest(t *testing.T, script string, retries int) (training.JobRequest, registry.Store, *syncBuffer) {
	t.Helper()
	dir := t.TempDir()
	reg, err := sqlite.Open(context.Background(), filepath.Join(dir, "registry.db"))
	require.NoError(t, err)
	t.Cleanup(func() { reg.Close() })
	path := filepath.Join(dir, "job.sh")
	require.NoError(t, os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755))
	out := &syncBuffer{}
	exe, err := os.Executable() // its TestMain runs the supervisor
	require.NoError(t, err)
	job := &definitions.TrainingJob{
		Name: "churn_train", FeatureService: "churn", Command: []string{path}, Retries: retries,
		Params: map[string]definitions.Param{"epochs": {Type: "int", Default: int64(3)}, "lr": {Type: "float", Default: 0.1}},
	}
	return training.JobRequest{
		Project: "shop", Job: job, WorkDir: dir, Warehouse: filepath.Join(dir, "warehouse"),
		Dataset:    registry.Dataset{Name: "churn_train", Version: 1, ContentID: "sha256:abc"},
		DatasetDir: filepath.Join(dir, "dataset"), Stdout: out, Stderr: out,
		MetricsPoll: 20 * time.Millisecond, KillGrace: 2 * time.Second, Supervisor: exe,
	}, reg, out
}

func TestJobRetriesThenSucceedsAndRegistersModel(t *testing.T) {
	// Fails on the first two attempts (a counter file in the work dir), then succeeds.
	script := `n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count
echo "attempt $n params $QUIVER_PARAMS gpus=[$CUDA_VISIBLE_DEVICES]"
echo '{"key":"loss","value":0.5,"step":1}' >> "$QUIVER_METRICS_FILE"
[ $n -ge 3 ] || exit 3
echo onnx-bytes > "$QUIVER_OUTPUT_DIR/model.onnx"
`
	req, reg, out := newJobRequest(t, script, 2)
	req.Model = &definitions.Model{Name: "churn", FeatureService: "churn", Runtime: "onnx"}
	req.Params = map[string]string{"epochs": "7"}
	run, err := training.RunJob(context.Background(), reg, req)
	require.NoError(t, err, out.String())
	require.Equal(t, registry.TrainingFinished, run.Status)
	require.Equal(t, 3, run.Attempt)
	require.Contains(t, out.String(), `attempt 3 params {"epochs":7,"lr":0.1} gpus=[]`)
	require.Contains(t, out.String(), "attempt 1 of 3 failed with exit code 3; retrying")

	runs, err := reg.ListTrainingRuns(context.Background(), registry.TrainingRunFilter{Project: "shop", Job: "churn_train"})
	require.NoError(t, err)
	require.Len(t, runs, 3)
	statuses := map[registry.TrainingStatus]int{}
	for _, r := range runs {
		statuses[r.Status]++
		if r.Status == registry.TrainingFailed {
			require.Equal(t, 3, r.ExitCode)
		}
	}
	require.Equal(t, map[registry.TrainingStatus]int{registry.TrainingFailed: 2, registry.TrainingFinished: 1}, statuses)
	params, err := reg.RunParams(context.Background(), run.ID)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"epochs": "7", "lr": "0.1"}, params)

	mv, err := reg.GetModelVersion(context.Background(), "shop", "churn", 0)
	require.NoError(t, err)
	require.Equal(t, 1, mv.Version)
	require.Equal(t, run.ID, mv.RunID)
	model, err := os.ReadFile(mv.ArtifactURI)
	require.NoError(t, err)
	require.Equal(t, "onnx-bytes\n", string(model))
	tags, err := reg.RunTags(context.Background(), run.ID)
	require.NoError(t, err)
	log, err := os.ReadFile(tags[training.TagLogFile])
	require.NoError(t, err)
	require.Contains(t, string(log), "attempt 3")
}

func TestJobMetricsStreamWhileRunningAndCtrlCKills(t *testing.T) {
	// Logs two metrics, then waits (as a long training would) until interrupted.
	script := `trap 'echo interrupted; exit 130' INT
echo '{"key":"loss","value":0.9,"step":0}' >> "$QUIVER_METRICS_FILE"
echo '{"key":"loss","value":0.7,"step":1}' >> "$QUIVER_METRICS_FILE"
while true; do sleep 0.05; done
`
	req, reg, out := newJobRequest(t, script, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var run registry.TrainingRun
	var err error
	go func() {
		defer close(done)
		run, err = training.RunJob(ctx, reg, req)
	}()

	// The metrics are in the registry while the job is still running.
	require.Eventually(t, func() bool {
		runs, lerr := reg.ListTrainingRuns(context.Background(), registry.TrainingRunFilter{Project: "shop"})
		if lerr != nil || len(runs) != 1 || runs[0].Status != registry.TrainingRunning {
			return false
		}
		pts, merr := reg.Metrics(context.Background(), runs[0].ID, registry.MetricQuery{Name: "loss"})
		return merr == nil && len(pts) == 2 && pts[1].Value == 0.7
	}, 10*time.Second, 20*time.Millisecond)

	cancel() // Ctrl-C
	<-done
	require.ErrorContains(t, err, "interrupted")
	require.Equal(t, registry.TrainingKilled, run.Status)
	require.Equal(t, 1, run.Attempt, "a killed job is not retried")
	require.Contains(t, out.String(), "interrupted", "SIGINT was forwarded to the job")
}

func TestJobRefusesMissingGPUsAndBadParams(t *testing.T) {
	req, reg, _ := newJobRequest(t, "exit 0\n", 0)
	req.Job.Resources.GPU = 2
	_, err := training.RunJob(context.Background(), reg, req)
	require.ErrorIs(t, err, training.ErrGPUs)
	require.ErrorContains(t, err, "asks for 2 GPU(s)")

	req.Job.Resources.GPU = 0
	req.Params = map[string]string{"epoch": "3"}
	_, err = training.RunJob(context.Background(), reg, req)
	require.ErrorIs(t, err, training.ErrInvalidParam)
	require.ErrorContains(t, err, `did you mean "epochs"?`)
	req.Params = map[string]string{"epochs": "three"}
	_, err = training.RunJob(context.Background(), reg, req)
	require.ErrorIs(t, err, training.ErrInvalidParam)
	require.NotErrorIs(t, err, training.ErrInvalidInput, "a bad param is not a dataset problem (issue 18)")
	require.ErrorContains(t, err, `invalid param: --param epochs=three: param value "three" is not an int`)
	runs, err := reg.ListTrainingRuns(context.Background(), registry.TrainingRunFilter{Project: "shop"})
	require.NoError(t, err)
	require.Empty(t, runs, "refused before any run was recorded")
	require.True(t, strings.HasPrefix(string(req.Job.Name), "churn"))
}

// liveProcess reports whether pid is a live (not zombie) process.
func liveProcess(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && !bytes.HasPrefix(bytes.TrimSpace(b[i+1:]), []byte("Z"))
}

// pidsIn reads the pids a job wrote to dir/pids, one a line.
func pidsIn(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	require.NoError(t, err)
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		pids = append(pids, pid)
	}
	return pids
}

// leaveChildren is a job script that starts sleeps which outlive it — one in its process
// group, one in a session of its own — and writes their pids to ./pids.
const leaveChildren = `sleep 600 >/dev/null 2>&1 &
echo $! >> pids
setsid sh -c 'exec sleep 601' >/dev/null 2>&1 &
echo $! >> pids
`

// TestJobLeftoversEndWithTheJob is issue 22 item 11 for a job that exits by itself: what it
// left running — in its process group or not — ends with it, and the run records the
// process group its processes ran in.
func TestJobLeftoversEndWithTheJob(t *testing.T) {
	req, reg, out := newJobRequest(t, leaveChildren+"exit 0\n", 0)
	run, err := training.RunJob(context.Background(), reg, req)
	require.NoError(t, err, out.String())
	pids := pidsIn(t, req.WorkDir)
	require.Len(t, pids, 2)
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for _, pid := range pids {
		require.Eventually(t, func() bool { return !liveProcess(pid) }, 5*time.Second, 10*time.Millisecond, "process %d the job left is killed", pid)
	}
	tags, err := reg.RunTags(context.Background(), run.ID)
	require.NoError(t, err)
	var pg training.ProcessGroup
	require.NoError(t, json.Unmarshal([]byte(tags[training.TagProcessGroup]), &pg), tags)
	host, _ := os.Hostname()
	require.Equal(t, host, pg.Host)
	require.Greater(t, pg.PGID, 1)
}

// TestJobIgnoringCtrlCIsKilledWithItsChildren: a job that ignores SIGINT is killed after
// the kill grace, with everything it started.
func TestJobIgnoringCtrlCIsKilledWithItsChildren(t *testing.T) {
	req, reg, out := newJobRequest(t, "trap '' INT\n"+leaveChildren+"echo started > started\nwhile true; do sleep 0.05; done\n", 0)
	req.KillGrace = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var run registry.TrainingRun
	go func() {
		var err error
		run, err = training.RunJob(ctx, reg, req)
		done <- err
	}()
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(req.WorkDir, "started"))
		return err == nil
	}, 20*time.Second, 10*time.Millisecond, out.String())
	pids := pidsIn(t, req.WorkDir)
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	cancel()
	require.ErrorContains(t, <-done, "interrupted")
	require.Equal(t, registry.TrainingKilled, run.Status)
	for _, pid := range pids {
		require.Eventually(t, func() bool { return !liveProcess(pid) }, 5*time.Second, 10*time.Millisecond, "process %d of the job is killed", pid)
	}
}

// TestJobCommandNotFound: a command that does not exist fails the run at once, naming it.
func TestJobCommandNotFound(t *testing.T) {
	req, reg, _ := newJobRequest(t, "exit 0\n", 3)
	req.Job.Command = []string{"./no-such-trainer"}
	run, err := training.RunJob(context.Background(), reg, req)
	require.ErrorIs(t, err, training.ErrInvalidJob)
	require.ErrorContains(t, err, "no-such-trainer")
	require.Equal(t, registry.TrainingFailed, run.Status)
	require.Equal(t, 127, run.ExitCode)
	require.Equal(t, 1, run.Attempt, "not retried")
}

// TestJobRelativeCommandInRelativeWorkDir: a command given relative to a working directory
// that is itself relative (quiver -C shop) runs.
func TestJobRelativeCommandInRelativeWorkDir(t *testing.T) {
	req, reg, out := newJobRequest(t, "echo ran-here > ran\n", 0)
	t.Chdir(filepath.Dir(req.WorkDir))
	rel := filepath.Base(req.WorkDir)
	req.WorkDir, req.Job.Command = rel, []string{"./job.sh"}
	_, err := training.RunJob(context.Background(), reg, req)
	require.NoError(t, err, out.String())
	require.FileExists(t, filepath.Join(rel, "ran"))
}
