package project

import (
	"context"

	"github.com/quiverfs/quiver/training"
)

// Reap is the one place runs are reaped: it marks the project's runs whose process stopped
// sending heartbeats for longer than the lease as FAILED ("abandoned"), kills what their
// jobs left running on this host, removes the project's work folders of dead runs, and says
// so in the notices. Every use case that starts runs or lists them calls it (gc --dry-run
// does not: it writes nothing).
func (p *Project) Reap(ctx context.Context) error {
	lease, err := p.Lease()
	if err != nil {
		return err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return err
	}
	reaped, err := reg.ReapAbandoned(ctx, p.Name(), lease)
	if err != nil {
		return err
	}
	for _, id := range reaped.Materialization {
		p.notice("quiver: materialization run %d had no heartbeat for %s: marked FAILED (abandoned)", id, lease)
	}
	for _, id := range reaped.Training {
		p.notice("quiver: training run %s had no heartbeat for %s: marked FAILED (abandoned)", id, lease)
	}
	// A job whose quiver and supervisor both died may have left processes behind: kill the
	// run's process group and every process of the run on this host.
	if n := training.KillRunProcesses(ctx, reg, reaped.Training); n > 0 {
		p.notice("quiver: killed %d leftover process(es) of abandoned training runs", n)
	}
	for _, d := range training.RemoveStaleWorkDirs(p.tempDir(), p.Name()) {
		p.notice("quiver: removed %s, left by a killed run", d)
	}
	return nil
}
