package training

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// ErrAmbiguousRunID: a run id prefix matches more than one run. It is a kind of
// definitions.ErrInvalid (the user's input names no single run).
var ErrAmbiguousRunID error = &kindError{msg: "ambiguous run id", parent: definitions.ErrInvalid}

// RunLookup is the part of the registry ResolveRunID needs.
type RunLookup interface {
	GetTrainingRun(ctx context.Context, id registry.TrainingRunID) (registry.TrainingRun, error)
	ListTrainingRuns(ctx context.Context, f registry.TrainingRunFilter) ([]registry.TrainingRun, error)
}

// maxCandidates is how many matching ids an ambiguity error lists.
const maxCandidates = 10

// ResolveRunID finds the run a full id or a unique prefix of one names, within a project, as
// git and docker accept unique prefixes. A prefix matching several runs is an error wrapping
// ErrAmbiguousRunID that lists them; one matching none wraps registry.ErrNotFound.
func ResolveRunID(ctx context.Context, runs RunLookup, project, ref string) (registry.TrainingRun, error) {
	if ref == "" {
		return registry.TrainingRun{}, fmt.Errorf("%w: empty run id", ErrAmbiguousRunID)
	}
	run, err := runs.GetTrainingRun(ctx, registry.TrainingRunID(ref))
	if err == nil && (project == "" || run.Project == project) {
		return run, nil
	}
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return registry.TrainingRun{}, fmt.Errorf("run %s: %w", ref, err)
	}
	all, err := runs.ListTrainingRuns(ctx, registry.TrainingRunFilter{Project: project})
	if err != nil {
		return registry.TrainingRun{}, fmt.Errorf("look up run %s: %w", ref, err)
	}
	var matches []registry.TrainingRun
	for _, r := range all {
		if strings.HasPrefix(string(r.ID), ref) {
			matches = append(matches, r)
		}
	}
	switch len(matches) {
	case 0:
		return registry.TrainingRun{}, fmt.Errorf("run %s: no run has this id or id prefix: %w", ref, registry.ErrTrainingRunNotFound)
	case 1:
		return matches[0], nil
	}
	var ids []string
	for i, m := range matches {
		if i == maxCandidates {
			ids = append(ids, fmt.Sprintf("and %d more", len(matches)-maxCandidates))
			break
		}
		ids = append(ids, fmt.Sprintf("%s (job %s, %s)", m.ID, m.Job, m.StartedAt.UTC().Format("2006-01-02 15:04:05")))
	}
	return registry.TrainingRun{}, fmt.Errorf("%w: %q matches %d runs: %s; give more of the id", ErrAmbiguousRunID, ref, len(matches), strings.Join(ids, ", "))
}
