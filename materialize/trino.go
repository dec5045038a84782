package materialize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/trino"
	"github.com/quiverfs/quiver/registry"
)

// The Trino engine (materialize --engine trino): Trino reads an interval of a view's source,
// keeps one row per (join keys, event_ts, created_ts), and writes the rows with CREATE TABLE
// AS into a staging table of the Iceberg catalog it shares with Quiver; Quiver reads the
// staging table's Parquet files (no row passes through the Trino coordinator), replaces the
// interval in the view's table in one atomic commit recording the run's token
// (offline.SummaryRunID and the interval, as every run), loads the online store from the same
// rows, and drops the staging table.
//
// A staging table is named for its run (StageTable), in the project's staging schema
// (StageSchema). A run killed after staging leaves its table; SweepStages drops every staging
// table whose run is no longer RUNNING (a killed run is reaped once its lease has passed), so
// the next materialization cleans up. The view's table is only ever changed by the one
// commit, so a kill at any point leaves it exact, and a re-run of the interval replaces it.

// StageReader reads a staged table's rows in a view's canonical columns (the offline store
// over the shared catalog).
type StageReader interface {
	ReadStaged(ctx context.Context, schema, table string, vs offline.ViewSchema) (offline.Stream, error)
}

// TrinoEngine stages views' intervals through Trino. It is safe for concurrent use.
type TrinoEngine struct {
	Client *trino.Client
	// Schema is the staging schema of the session's catalog (StageSchema of the project).
	Schema string
	Reader StageReader
	// Pause, if set, is called at named points of a run ("stage": before the CREATE TABLE
	// AS, "staged": after it, "commit": after the last staged row is read, before the
	// offline commit); a fault-injection hook for the kill -9 tests.
	Pause func(ctx context.Context, point string)
	// Logger gets the warning when a staging table cannot be dropped after its rows were
	// committed (slog.Default() when nil).
	Logger *slog.Logger
}

// StageSchema is the staging schema of a project whose offline namespace is ns ("quiver_KEY"):
// "quiverstage_KEY", outside every project's namespace (no view table is ever listed beside a
// staging table) and as injective as the namespace.
func StageSchema(ns string) string { return "quiverstage_" + strings.TrimPrefix(ns, "quiver_") }

// stagePrefix starts every staging table's name.
const stagePrefix = "r"

// StageTable is the staging table of run id for view: "r<ID>_<view>", in lower case (Trino
// folds identifiers to lower case; the run id alone makes the name unique).
func StageTable(id registry.RunID, view string) string {
	return stagePrefix + strconv.FormatInt(int64(id), 10) + "_" + strings.ToLower(view)
}

// stageRun is the run a staging table belongs to.
func stageRun(table string) (registry.RunID, bool) {
	rest, ok := strings.CutPrefix(table, stagePrefix)
	if !ok {
		return 0, false
	}
	id, _, ok := strings.Cut(rest, "_")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(id, 10, 64)
	return registry.RunID(n), err == nil && n > 0
}

// Source is view's source read through the engine.
func (e *TrinoEngine) Source(src *definitions.Source) (*StagedSource, error) {
	def, err := trino.StageSource(src)
	if err != nil {
		return nil, err
	}
	return &StagedSource{engine: e, name: src.Name, def: def,
		fields: offline.Fields{Timestamp: src.TimestampField, Created: src.CreatedTimestampField}}, nil
}

// RunGetter finds a run; SweepStages asks whether a staging table's run still runs.
type RunGetter interface {
	GetRun(ctx context.Context, id registry.RunID) (registry.MaterializationRun, error)
}

// SweepStages drops the staging tables whose runs are not RUNNING (finished, failed, reaped,
// unknown) and returns their names.
func (e *TrinoEngine) SweepStages(ctx context.Context, runs RunGetter) ([]string, error) {
	tables, err := e.Client.Tables(ctx, e.Schema, stagePrefix)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, t := range tables {
		id, ok := stageRun(t)
		if !ok {
			continue
		}
		run, err := runs.GetRun(ctx, id)
		switch {
		case err == nil && run.Status == registry.RunRunning:
			continue
		case err != nil && !errors.Is(err, registry.ErrNotFound):
			return dropped, fmt.Errorf("staging table %s: %w", t, err)
		}
		if err := e.Client.DropTable(ctx, e.Schema, t); err != nil {
			return dropped, err
		}
		dropped = append(dropped, t)
	}
	return dropped, nil
}

func (e *TrinoEngine) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

func (e *TrinoEngine) pause(ctx context.Context, point string) {
	if e.Pause != nil {
		e.Pause(ctx, point)
	}
}

// StagedSource is a view's source as the Trino engine reads it: each run stages its
// interval, and its rows are read from the staging table.
type StagedSource struct {
	engine *TrinoEngine
	name   string
	def    definitions.TrinoSource
	fields offline.Fields
}

var _ offline.Source = (*StagedSource)(nil)

func (s *StagedSource) String() string { return fmt.Sprintf("source %q through trino", s.name) }

// Read stages the interval under a table of its own (not a run's): for a caller that is not a
// run. Materialization runs call ReadRun.
func (s *StagedSource) Read(ctx context.Context, vs offline.ViewSchema, r offline.Range) (offline.Stream, error) {
	return s.read(ctx, vs, r, "q"+strconv.FormatInt(time.Now().UnixNano(), 36)+"_"+strings.ToLower(vs.View))
}

// ReadRun stages the interval of run id and streams the staged rows. Closing the stream
// drops the staging table (after the offline commit: offline.Writer closes its input last).
func (s *StagedSource) ReadRun(ctx context.Context, vs offline.ViewSchema, r offline.Range, id registry.RunID) (offline.Stream, error) {
	return s.read(ctx, vs, r, StageTable(id, vs.View))
}

func (s *StagedSource) read(ctx context.Context, vs offline.ViewSchema, r offline.Range, table string) (offline.Stream, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	e := s.engine
	q, err := trino.BuildStageSQL(s.def, s.fields, vs, e.Schema, table)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	if err := e.Client.EnsureSchema(ctx, e.Schema); err != nil {
		return nil, err
	}
	// A table of this name is a left-over of the same run id (a registry restored from a
	// backup): it is replaced.
	if err := e.Client.DropTable(ctx, e.Schema, table); err != nil {
		return nil, err
	}
	e.pause(ctx, "stage")
	if err := e.Client.Exec(ctx, q, r.Start.UTC(), r.End.UTC()); err != nil {
		return nil, fmt.Errorf("%s: stage [%s, %s) in %s.%s: %w", s, r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano), e.Schema, table, err)
	}
	e.pause(ctx, "staged")
	drop := func() error {
		// A DROP takes well under a second; an unreachable Trino is retried until the
		// deadline, which bounds how long a run waits for it.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		return e.Client.DropTable(dctx, e.Schema, table)
	}
	st, err := e.Reader.ReadStaged(ctx, e.Schema, table, vs)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("%s: read staged rows: %w", s, err), drop())
	}
	paused := false
	return offline.NewFuncStream(st.Schema(), func(ctx context.Context) (arrow.RecordBatch, error) {
		rec, err := st.Next(ctx)
		if errors.Is(err, io.EOF) && !paused {
			paused = true
			e.pause(ctx, "commit")
		}
		return rec, err
	}, func() error {
		// The offline writer closes its input after its commit: the rows are in the view's
		// table by now (or the run failed for another reason), so a staging table that cannot
		// be dropped (Trino died, or is unreachable) does not fail the run. It is left for the
		// next run's SweepStages.
		if err := drop(); err != nil {
			e.logger().Warn("the staging table could not be dropped; the next materialize --engine trino of the project drops it",
				"table", e.Schema+"."+table, "error", err)
		}
		return st.Close()
	}), nil
}
