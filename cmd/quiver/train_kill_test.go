package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/training"
)

// procStat is what a test reads of a process from /proc/PID/stat.
type procStat struct {
	state      byte
	ppid, pgrp int
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return procStat{state: f[0][0], ppid: ppid, pgrp: pgrp}, true
}

// groupMembers lists the live (not zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProcStat(pid); ok && st.pgrp == pgid && st.state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// killTrainRepo is a scaffolded repo whose churn_train job runs
// sh -c "./train.sh; sleep 60": train.sh starts sleeps in the background (one of them in a
// session of its own, one with an empty environment), records the pids, and returns; the
// job then sleeps in the foreground.
func killTrainRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	writeFile(t, filepath.Join(dir, "train.sh"), `#!/bin/sh
sleep 61 >/dev/null 2>&1 &
sleep 62 &
env -i /bin/sleep 63 &
setsid sh -c 'echo $$ > escaped.pid; exec sleep 64' &
echo $PPID > trainer.pid.tmp && mv trainer.pid.tmp trainer.pid
`)
	require.NoError(t, os.Chmod(filepath.Join(dir, "train.sh"), 0o755))
	jobs := filepath.Join(dir, "features", "churn.yaml")
	b, err := os.ReadFile(jobs)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(jobs, []byte(strings.Replace(string(b), `command: ["shop-trainer"]`, `command: ["sh", "-c", "./train.sh; sleep 60"]`, 1)), 0o644))
	require.Equal(t, exitOK, quiver(t, nil, "-C", dir, "apply").code)
	r := quiver(t, nil, "-C", dir, "materialize-incremental")
	require.Equal(t, exitOK, r.code, r.stderr)
	return dir
}

// startKillTrain starts a real quiver train of killTrainRepo's job and waits until the job's
// background processes run. It returns the quiver process, the job's process group (with
// its live members) and the pid of the sleep that left the group for a session of its own.
func startKillTrain(t *testing.T, dir string, env map[string]string) (quiverPid, pgid int, members []int, escaped int) {
	t.Helper()
	cmd, _ := quiverProcess(t, env, "-C", dir, "train", "churn_train")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pidOf := func(name string) int {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	waitFor(t, "the job to start its children", time.Minute, func() bool { return pidOf("trainer.pid") > 0 && pidOf("escaped.pid") > 0 })
	trainer, escaped := pidOf("trainer.pid"), pidOf("escaped.pid")
	st, ok := readProcStat(trainer)
	require.True(t, ok, "the trainer runs")
	pgid = st.pgrp
	t.Cleanup(func() { // never leave sleeps behind, whatever failed
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		_ = syscall.Kill(escaped, syscall.SIGKILL)
	})
	// sh -c, its foreground sleep and the three background sleeps (escaped has left).
	waitFor(t, "the job's sleeps to run", 10*time.Second, func() bool { return len(groupMembers(pgid)) >= 5 })
	return cmd.Process.Pid, pgid, groupMembers(pgid), escaped
}

// TestKilledTrainEndsItsWholeProcessGroup is issue 22 item 11: kill -9 of a real quiver
// train ends every process of the job's process group — the job's own children and
// grandchildren, not only the job — and the descendants that left the group, promptly
// (not when the lease expires).
func TestKilledTrainEndsItsWholeProcessGroup(t *testing.T) {
	dir := killTrainRepo(t)
	env := map[string]string{"QUIVER_RUN_LEASE": "1h", "TMPDIR": t.TempDir()}
	quiverPid, pgid, members, escaped := startKillTrain(t, dir, env)
	require.NotContains(t, members, quiverPid, "the job runs in a process group of its own")

	require.NoError(t, syscall.Kill(quiverPid, syscall.SIGKILL))
	killedAt := time.Now()
	waitFor(t, "every process of the job's group to end", 10*time.Second, func() bool { return len(groupMembers(pgid)) == 0 })
	waitFor(t, "the job's descendant in a session of its own to end", 10*time.Second, func() bool { return !alive(escaped) })
	t.Logf("the job's %d processes ended %s after kill -9 of quiver train", len(members)+1, time.Since(killedAt).Round(time.Millisecond))
	for _, pid := range members {
		require.False(t, alive(pid), "process %d of the job is gone", pid)
	}
}

// TestReaperKillsRecordedProcessGroup is item 11 for the reaper: when quiver and the
// process that watches the job both die at once (here the watcher first, quiver stopped so
// that it cannot react), the job's children outlive them; once the run's lease has expired,
// the reaper (runs list) kills the run's recorded process group — even a child whose
// environment holds no QUIVER_RUN_ID.
func TestReaperKillsRecordedProcessGroup(t *testing.T) {
	dir := killTrainRepo(t)
	const lease = time.Second
	env := map[string]string{"QUIVER_RUN_LEASE": lease.String(), "TMPDIR": t.TempDir()}
	quiverPid, pgid, _, _ := startKillTrain(t, dir, env)

	trainerStat, ok := readProcStat(pgidLeaderChild(t, pgid))
	require.True(t, ok)
	require.NoError(t, syscall.Kill(quiverPid, syscall.SIGSTOP))
	require.NoError(t, syscall.Kill(trainerStat.ppid, syscall.SIGKILL)) // the job's parent: its watcher
	require.NoError(t, syscall.Kill(quiverPid, syscall.SIGKILL))
	killedAt := time.Now()
	waitFor(t, "the job's first process to die", 10*time.Second, func() bool { return len(groupMembers(pgid)) <= 4 })
	require.NotEmpty(t, groupMembers(pgid), "children of the job outlive quiver and its watcher")

	time.Sleep(time.Until(killedAt.Add(lease + lease/4)))
	r := quiver(t, env, "-C", dir, "runs", "list")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "FAILED (abandoned)")
	waitFor(t, "the reaper to kill the run's process group", 10*time.Second, func() bool { return len(groupMembers(pgid)) == 0 })
	require.Contains(t, r.stderr, "killed")
}

// pgidLeaderChild is the pid of a member of group pgid whose command is sh: the job.
func pgidLeaderChild(t *testing.T, pgid int) int {
	t.Helper()
	for _, pid := range groupMembers(pgid) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if strings.HasPrefix(string(b), "sh\x00-c\x00./train.sh") {
			return pid
		}
	}
	t.Fatalf("no sh -c ./train.sh in group %d", pgid)
	return 0
}

// TestSparklineExtremeValues: runs show's sparkline draws ±1e308, ±Inf and NaN without
// panicking (issue 22 item 8, the CLI side): non-finite points are drawn as gaps.
func TestSparklineExtremeValues(t *testing.T) {
	for _, values := range [][]float64{
		{1e308, -1e308, 0, 1e308},
		{math.Inf(1), 1, math.Inf(-1), 2},
		{math.NaN(), 1, 2},
		{math.NaN()},
		{math.MaxFloat64, math.MaxFloat64},
	} {
		s := training.Sparkline(values, 40)
		require.Equal(t, len(values), utf8.RuneCountInString(s), "%v: %q", values, s)
	}
	require.Equal(t, "▁▄█", training.Sparkline([]float64{-1e308, 0, 1e308}, 40))
	require.Equal(t, "▁ █", training.Sparkline([]float64{1, math.NaN(), 2}, 40))
}
