package project

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os/exec"
	"strings"

	"github.com/quiverfs/quiver/registry"
)

// GitState returns the commit of the git work tree dir is in, whether it has uncommitted
// changes under dir, and the SHA-256 of `git diff HEAD` (and the status) when it has. Outside
// git, all are zero.
func GitState(ctx context.Context, dir string) (commit string, dirty bool, diffHash string) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false, ""
	}
	commit = strings.TrimSpace(string(out))
	status, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--", ".").Output()
	if err != nil || len(strings.TrimSpace(string(status))) == 0 {
		return commit, false, ""
	}
	diff, _ := exec.CommandContext(ctx, "git", "-C", dir, "diff", "HEAD", "--", ".").Output()
	sum := sha256.Sum256(append(diff, status...))
	return commit, true, hex.EncodeToString(sum[:])
}

// RecordedCommit is the commit a registry record carries: the repo's HEAD, registry.GitDirty
// when the work tree has uncommitted changes, or "" outside git.
func RecordedCommit(ctx context.Context, dir string) string {
	commit, dirty, _ := GitState(ctx, dir)
	if dirty {
		return registry.GitDirty
	}
	return commit
}
