package project

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/training"
)

// BackendKubernetes is materialize --backend kubernetes: print the Indexed Job that loads
// the online store in shards instead of running anything.
const BackendKubernetes = "kubernetes"

// ShardOptions are materialize's sharded online load: --shard i/N runs one shard here,
// --backend kubernetes --shards N prints the Indexed Job whose pods run them.
type ShardOptions struct {
	Views      []string
	Start, End time.Time
	// Shard is "i/N" (materialize.ParseShard), the part this process loads.
	Shard string
	// Backend is "" or BackendKubernetes; Shards is the Job's pod count with it.
	Backend string
	Shards  int
	// Image is the pods' container image: quiver, with the feature repo as its working
	// directory.
	Image string
	// OnlineWorkers is each shard's worker count (default 1).
	OnlineWorkers int
	// DryRun, Engine, Chunk and ReplaceOnline are materialize's other flags, which a sharded
	// load refuses (it writes nothing offline, and is no dry run).
	DryRun, ReplaceOnline bool
	Engine, Chunk         string
}

// Sharded reports whether the options ask for a sharded load or its Job.
func (o ShardOptions) Sharded() bool { return o.Shard != "" || o.Backend != "" || o.Shards != 0 }

// check refuses a combination that cannot run, naming the flags.
func (o ShardOptions) check() error {
	switch {
	case o.DryRun || o.ReplaceOnline || o.Chunk != "" || (o.Engine != "" && o.Engine != EngineLocal):
		return errkind.New(errkind.Usage, "--shard and --backend kubernetes load the online store from an interval committed offline before: they take no --dry-run, --replace-online, --chunk or --engine trino")
	case o.Backend != "" && o.Backend != BackendKubernetes:
		return errkind.Errorf(errkind.Usage, "--backend %q: valid backends: kubernetes", o.Backend)
	case o.Backend == "" && o.Shards != 0:
		return errkind.New(errkind.Usage, "--shards N needs --backend kubernetes (to load one shard here: --shard i/N)")
	case o.Backend != "" && o.Shard != "":
		return errkind.New(errkind.Usage, "--backend kubernetes prints the Job whose pods each run --shard i/N; give --shards N, not --shard")
	case o.Backend != "" && o.Image == "":
		return errkind.New(errkind.Usage, "--backend kubernetes needs --image IMAGE: a container image with quiver, the feature repo as its working directory")
	case o.Backend != "" && (o.Shards < 1 || o.Shards > 1024):
		return errkind.Errorf(errkind.Usage, "--shards %d: use 1 to 1024 pods", o.Shards)
	case o.OnlineWorkers < 0 || o.OnlineWorkers > 256:
		return errkind.Errorf(errkind.Usage, "--online-workers %d: use 1 to 256 workers", o.OnlineWorkers)
	case !o.Start.Before(o.End):
		return errkind.Errorf(errkind.Usage, "--start %s is not before --end %s", o.Start.Format(time.RFC3339), o.End.Format(time.RFC3339))
	}
	return nil
}

// LoadOnlineShard loads --shard i/N of each view's rows in [Start, End) from its offline
// table (committed before, by a materialize run of the interval) into the online store
// (materialize.LoadOnlineShard). Nothing is written offline and no run is recorded; views
// not online are skipped. It stops at the first failure.
func (p *Project) LoadOnlineShard(ctx context.Context, opts ShardOptions) (*SyncsReport, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	shard, err := materialize.ParseShard(opts.Shard)
	if err != nil {
		return nil, err
	}
	m, err := p.Materialize(ctx, MaterializeOptions{Views: opts.Views, OnlineOnly: true})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	rep := &SyncsReport{OnlineOnly: true, Shard: shard.String()}
	for _, v := range m.Views {
		if v.Online == nil {
			rep.Views = append(rep.Views, SyncReport{View: v.Name, Skipped: "not online (online: false)"})
			continue
		}
		job, err := m.job(ctx, v)
		if err != nil {
			return rep, fmt.Errorf("view %q: %w", v.Name, err)
		}
		res, err := materialize.LoadOnlineShard(ctx, job, opts.Start, opts.End, shard, materialize.Options{OnlineWorkers: opts.OnlineWorkers})
		r := SyncReport{View: v.Name, SnapshotID: "current", OnlineRows: res.OnlineRows, Seconds: res.Duration.Seconds()}
		if v.Online.IsAggregation() && shard.Index != materialize.TileShard {
			r.Skipped = fmt.Sprintf("aggregation view: shard %d/%d rebuilds its tiles", materialize.TileShard, shard.Count)
		}
		if err != nil {
			r.Error = err.Error()
			rep.Views = append(rep.Views, r)
			return rep, err
		}
		rep.Views = append(rep.Views, r)
	}
	return rep, nil
}

// WriteShardJob writes ShardJob's manifest to the file out, or to stdout when out is empty.
func (p *Project) WriteShardJob(opts ShardOptions, out string, stdout io.Writer) error {
	b, err := p.ShardJob(opts)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write the Kubernetes Job manifest: %w", err)
	}
	return nil
}

// ShardJob renders the Kubernetes Indexed Job (completionMode: Indexed, completions and
// parallelism Shards) whose pod i runs `quiver materialize --start S --end E --shard
// i/Shards VIEWS...`: the online load of an interval materialize has already committed
// offline, split as --online-workers splits it. The pods read the project's stores, so an
// embedded registry, online store or local warehouse, which a pod cannot reach, is refused.
// The manifest is printed, never applied.
func (p *Project) ShardJob(opts ShardOptions) ([]byte, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	for _, v := range opts.Views {
		if !definitions.ValidName(v) {
			return nil, errkind.Errorf(errkind.Usage, "view %q is not a view name (letters, digits and '_')", v)
		}
	}
	c := p.Config
	for _, s := range []struct{ key, url string }{{"registry", c.Registry}, {"online", c.Online}} {
		if strings.HasPrefix(s.url, "sqlite://") {
			return nil, errkind.Errorf(errkind.Invalid, "--backend kubernetes: the %s is embedded (%s) and the pods cannot reach it; set %s in quiver.yaml to a shared store (postgres://, redis://)", s.key, s.url, s.key)
		}
	}
	if !strings.Contains(c.Offline.Warehouse, "://") {
		return nil, errkind.Errorf(errkind.Invalid, "--backend kubernetes: the warehouse %s is a local directory the pods cannot reach; set offline.warehouse to an object store (s3://...)", c.Offline.Warehouse)
	}
	const rfc = time.RFC3339Nano
	cmd := []string{"quiver", "materialize", "--start", opts.Start.UTC().Format(rfc), "--end", opts.End.UTC().Format(rfc),
		"--shard", "$(JOB_COMPLETION_INDEX)/" + strconv.Itoa(opts.Shards), "--online-workers", strconv.Itoa(max(opts.OnlineWorkers, 1))}
	cmd = append(cmd, opts.Views...)
	labels := map[string]string{"app.kubernetes.io/managed-by": "quiver", "quiver.dev/project": p.Name(), "quiver.dev/task": "online-load"}
	name := fmt.Sprintf("quiver-%s-online-%s", p.Name(), opts.Start.UTC().Format("20060102t150405"))
	return training.RenderIndexedJob(training.IndexedJob{Name: name, Labels: labels, Container: "materialize", Image: opts.Image,
		Command: cmd, Completions: opts.Shards, Retries: opts.Shards})
}
