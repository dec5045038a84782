package training

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/registry"
)

// workDirPrefix names the temporary folders of running attempts in $TMPDIR:
// quiver-run-KEY-N, KEY the project's storage key (offline/iceberg.ProjectKey), so each
// project finds its own folders and no other's. Keys hold no '-', so "quiver-run-KEY-" never
// begins another project's folder name.
const workDirPrefix = "quiver-run-"

// workDirPattern is the glob of a project's work folders in dir.
func workDirPattern(dir, project string) string {
	return filepath.Join(dir, workDirPrefix+iceberg.ProjectKey(project)+"-*")
}

// ownerFile, inside a work folder, holds "PID START" of the quiver process that owns it
// (START is the process's start time in clock ticks since boot, from /proc/PID/stat), so a
// later run can tell a live owner from a dead one whose PID was reused.
const ownerFile = ".quiver-owner"

// newWorkDir makes an attempt's temporary folder for project and records this process as its
// owner.
func newWorkDir(tmp, project string) (string, error) {
	dir, err := os.MkdirTemp(tmp, workDirPrefix+iceberg.ProjectKey(project)+"-")
	if err != nil {
		return "", err
	}
	pid := os.Getpid()
	owner := strconv.Itoa(pid) + " " + procStart(pid)
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// StaleWorkDirs lists project's $TMPDIR/quiver-run-KEY-* folders (in dir, when not empty)
// whose owning quiver process is gone — left behind by a `quiver train` killed with kill -9.
// A folder without an owner record is stale once it is a day old. Other projects' folders,
// and those of Quiver versions that did not name the project (quiver-run-N), are never
// listed.
func StaleWorkDirs(dir, project string) []string {
	if dir == "" {
		dir = os.TempDir()
	}
	matches, _ := filepath.Glob(workDirPattern(dir, project))
	var stale []string
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil || !fi.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m, ownerFile))
		if err != nil {
			if time.Since(fi.ModTime()) < 24*time.Hour {
				continue
			}
		} else if ownerAlive(string(b)) {
			continue
		}
		stale = append(stale, m)
	}
	return stale
}

// RemoveStaleWorkDirs removes project's stale work folders (StaleWorkDirs) and returns those
// removed.
func RemoveStaleWorkDirs(dir, project string) []string {
	var removed []string
	for _, m := range StaleWorkDirs(dir, project) {
		if os.RemoveAll(m) == nil {
			removed = append(removed, m)
		}
	}
	return removed
}

func ownerAlive(rec string) bool {
	pidS, start, _ := strings.Cut(strings.TrimSpace(rec), " ")
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	cur := procStart(pid)
	return cur == "" || start == "" || cur == start
}

// procStart is a process's start time from /proc/PID/stat (field 22); "" where unknown.
func procStart(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name (field 2) is in parentheses and may hold spaces: count after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return ""
	}
	return fields[19]
}

// ProcessGroup is where a training attempt's processes run: process group PGID on one boot
// of one host. The runner records it with the run (TagProcessGroup, as JSON).
type ProcessGroup struct {
	Host   string `json:"host"`
	BootID string `json:"boot_id,omitempty"`
	PGID   int    `json:"pgid"`
	// LeaderStart is the group leader's start time (clock ticks since boot, from
	// /proc/PID/stat), to tell it from a later process that reused its pid.
	LeaderStart string `json:"leader_start,omitempty"`
}

// ThisProcessGroup is process group pgid of this host, led by the process pgid.
func ThisProcessGroup(pgid int) ProcessGroup {
	host, _ := os.Hostname()
	return ProcessGroup{Host: host, BootID: bootID(), PGID: pgid, LeaderStart: procStart(pgid)}
}

// RunTagReader is the part of the registry KillRunProcesses reads.
type RunTagReader interface {
	RunTags(ctx context.Context, id registry.TrainingRunID) (map[string]string, error)
}

// KillRunProcesses kills (SIGKILL) every process of this host that belongs to one of the
// training runs: the process group recorded with the run (TagProcessGroup) — the job's
// supervisor, the job and whatever they spawned that stayed in the group — and every
// process started with QUIVER_RUN_ID set to the run's id. It is how the reaper makes sure no
// process of an abandoned run survives. A group recorded on another host or before a reboot
// is left alone, and so is one whose leader's pid now names another process. It returns how
// many processes it signalled; where /proc is not available it kills the recorded groups
// only, and counts each group as one.
func KillRunProcesses(ctx context.Context, tags RunTagReader, ids []registry.TrainingRunID) int {
	if len(ids) == 0 {
		return 0
	}
	n := 0
	host, _ := os.Hostname()
	boot, own := bootID(), syscall.Getpgrp()
	for _, id := range ids {
		if tags == nil {
			break
		}
		t, err := tags.RunTags(ctx, id)
		if err != nil || t[TagProcessGroup] == "" {
			continue
		}
		var pg ProcessGroup
		if json.Unmarshal([]byte(t[TagProcessGroup]), &pg) != nil || pg.PGID <= 1 || pg.PGID == own {
			continue
		}
		if pg.Host != host || pg.BootID != boot {
			continue // another host's, or this host's before a reboot
		}
		if cur := procStart(pg.PGID); cur != "" && pg.LeaderStart != "" && cur != pg.LeaderStart {
			continue // the leader's pid was reused, so the group ended (a pid is not reused while it names a group)
		}
		n += killGroup(pg.PGID)
	}
	want := make([][]byte, len(ids))
	for i, id := range ids {
		want[i] = []byte(EnvRunID + "=" + string(id))
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return n
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, v := range bytes.Split(env, []byte{0}) {
			if hasAny(v, want) {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					n++
				}
				break
			}
		}
	}
	return n
}

func hasAny(v []byte, want [][]byte) bool {
	for _, w := range want {
		if bytes.Equal(v, w) {
			return true
		}
	}
	return false
}

// heartbeat calls beat every interval until the returned stop is called.
func heartbeat(ctx context.Context, interval time.Duration, beat func(context.Context) error) (stop func()) {
	if interval <= 0 {
		interval = registry.HeartbeatInterval(registry.DefaultLease)
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// Beat while the job winds down after Ctrl-C, too.
				bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), interval)
				_ = beat(bctx)
				cancel()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
