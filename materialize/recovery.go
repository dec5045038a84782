package materialize

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/fold"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/value"
)

// ErrNotBackwards is returned by ResetWatermark for a time at or after the current watermark:
// a reset only ever moves a watermark back (runs move it forward).
var ErrNotBackwards = errkind.New(errkind.Invalid, "a watermark reset must move the watermark back")

// Auditor is the part of the registry that records corrections.
type Auditor interface {
	RecordAudit(ctx context.Context, e registry.AuditEvent) (registry.AuditEvent, error)
}

// audit records e with detail as its JSON.
func audit(ctx context.Context, a Auditor, e registry.AuditEvent, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	e.Detail = b
	// Record even when ctx was cancelled after the change was made.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := a.RecordAudit(actx, e); err != nil {
		return fmt.Errorf("record %s of %q in the audit trail: %w", e.Action, e.Target, err)
	}
	return nil
}

// heartbeat calls beat every interval until the returned stop is called. A failed beat is
// logged; the job goes on (its FinishRun will tell whether it was reaped meanwhile).
func heartbeat(ctx context.Context, interval time.Duration, beat func(context.Context) error, log *slog.Logger) (stop func()) {
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
			case <-ctx.Done():
				return
			case <-t.C:
				bctx, cancel := context.WithTimeout(ctx, interval)
				if err := beat(bctx); err != nil {
					log.Warn("heartbeat failed", "err", err)
				}
				cancel()
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// overlappingSnapshots lists the view's offline snapshots whose write covered part of r (or
// whose interval is unknown): the table states from which entities of r may have reached the
// online store. A view without a table has none.
func overlappingSnapshots(ctx context.Context, rd offline.Reader, view string, generation int, r offline.Range) ([]int64, error) {
	snaps, err := rd.Snapshots(ctx, view, generation)
	if errors.Is(err, offline.ErrTableNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list offline snapshots: %w", err)
	}
	var ids []int64
	for _, s := range snaps {
		iv := s.Interval
		if iv.Start.IsZero() || (iv.Start.Before(r.End) && r.Start.Before(iv.End)) {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// SyncResult describes one online sync.
type SyncResult struct {
	View       string
	SnapshotID int64 // the offline snapshot read
	RowsRead   int64
	OnlineRows int64 // entity rows written (the store may keep a newer row it already had)
	Duration   time.Duration
}

// SyncOnline loads the latest row per entity of the view's offline table (its current
// snapshot) into job.Online, through the same fold, memory bound and stale-write guard as a
// run: a row the store already holds a newer version of is left alone. It reads only the
// offline table: the source, the offline table and the watermark are untouched. It is how a
// lost or new online store is refilled. The sync is recorded in the audit trail.
func SyncOnline(ctx context.Context, a Auditor, job Job, opts Options) (_ SyncResult, err error) {
	defer func() { err = errkind.Mark(errkind.Failed, err) }() // a sync that fails ran and failed
	view := job.Schema.View
	res := SyncResult{View: view}
	if job.Online == nil || job.OnlineView == nil {
		return res, fmt.Errorf("sync %q: the view is not online (online: false)", view)
	}
	if job.OfflineReader == nil {
		return res, fmt.Errorf("sync %q: no offline store to read", view)
	}
	if opts.OnlineBatch <= 0 {
		opts.OnlineBatch = 2048
	}
	if opts.OnlineMaxEntities <= 0 {
		opts.OnlineMaxEntities = 1_000_000
	}
	began := time.Now()
	if job.OnlineView.IsAggregation() { // tiles are rebuilt from the latest events
		n, err := rebuildTiles(ctx, job, time.Time{}, 0, opts.OnlineBatch)
		res.OnlineRows, res.Duration = n, time.Since(began)
		if err != nil {
			return res, fmt.Errorf("sync %q: %w", view, err)
		}
		return res, audit(ctx, a, registry.AuditEvent{Project: job.Project, Actor: opts.Actor, Action: registry.AuditOnlineSync, Target: view}, map[string]any{"online_rows": n})
	}
	acc := fold.New(job.OnlineView, job.Schema, job.Online, opts.OnlineMaxEntities, opts.OnlineBatch)
	snap, err := scanInto(ctx, job, 0, offline.Range{}, canonicalColumns(job.Schema), func(ctx context.Context, rec arrow.RecordBatch) error {
		res.RowsRead += rec.NumRows()
		if err := acc.Add(ctx, rec); err != nil {
			return err
		}
		if opts.Progress != nil {
			opts.Progress(res.RowsRead)
		}
		return nil
	})
	res.SnapshotID = snap
	if err != nil {
		return res, fmt.Errorf("sync %q: %w", view, err)
	}
	if err := acc.Flush(ctx); err != nil {
		return res, fmt.Errorf("sync %q: %w", view, err)
	}
	res.OnlineRows = acc.Written
	res.Duration = time.Since(began)
	if err := audit(ctx, a, registry.AuditEvent{Project: job.Project, Actor: opts.Actor, Action: registry.AuditOnlineSync, Target: view}, map[string]any{
		"snapshot_id": strconv.FormatInt(snap, 10), "rows_read": res.RowsRead, "online_rows": res.OnlineRows,
	}); err != nil {
		return res, err
	}
	return res, nil
}

func canonicalColumns(vs offline.ViewSchema) []string {
	var cols []string
	for _, f := range vs.Arrow().Fields() {
		cols = append(cols, f.Name)
	}
	return cols
}

// scanInto streams a snapshot (0: the current one) of the view's offline table, restricted
// to r when it is not zero, to fn, and returns the snapshot read. A view without a table
// reads as empty.
func scanInto(ctx context.Context, job Job, snapshot int64, r offline.Range, cols []string, fn func(context.Context, arrow.RecordBatch) error) (int64, error) {
	st, err := job.OfflineReader.Scan(ctx, job.Schema.View, offline.ScanRequest{SnapshotID: snapshot, Columns: cols, Range: r, Generation: job.Schema.Generation})
	if errors.Is(err, offline.ErrTableNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read offline table: %w", err)
	}
	defer st.Close()
	for {
		rec, err := st.Next(ctx)
		if errors.Is(err, io.EOF) {
			return st.SnapshotID(), nil
		}
		if err != nil {
			return st.SnapshotID(), fmt.Errorf("read offline table: %w", err)
		}
		err = fn(ctx, rec)
		rec.Release()
		if err != nil {
			return st.SnapshotID(), err
		}
	}
}

// keysOf adds the entity keys of the view's rows in r of one snapshot to set.
func keysOf(ctx context.Context, job Job, snapshot int64, r offline.Range, set map[online.EntityKey]struct{}) error {
	var cols []string
	for _, c := range job.Schema.JoinKeys {
		cols = append(cols, c.Name)
	}
	vals := make([]online.Value, len(cols))
	var buf []byte
	_, err := scanInto(ctx, job, snapshot, r, cols, func(ctx context.Context, rec arrow.RecordBatch) error {
		readers := make([]func(int) online.Value, len(cols))
		for i, c := range job.Schema.JoinKeys {
			rd, err := value.ColumnReader(rec.Column(i), c.Type)
			if err != nil {
				return fmt.Errorf("join key %q: %w", c.Name, err)
			}
			readers[i] = rd
		}
		for row := range int(rec.NumRows()) {
			for i := range readers {
				vals[i] = readers[i](row)
			}
			k, err := job.OnlineView.AppendKey(buf[:0], vals...)
			if err != nil {
				return fmt.Errorf("row %d: %w", row, err)
			}
			set[k] = struct{}{}
		}
		return nil
	})
	return err
}

type replaced struct {
	entities, written, deleted int64
}

// replaceOnline makes the online rows of every entity the interval r held in any of the
// earlier snapshots prev (those that wrote part of r) or holds in snapshot cur exactly the
// latest row of that entity in the whole table at cur: written over what the store holds,
// or removed when the entity has no row left. The entities are held in memory; the fold is
// not flushed early, since a replacing write must not be followed by an older one.
func replaceOnline(ctx context.Context, job Job, r offline.Range, prev []int64, cur int64, opts Options) (replaced, error) {
	var out replaced
	set := map[online.EntityKey]struct{}{}
	for _, id := range prev {
		err := keysOf(ctx, job, id, r, set)
		if errors.Is(err, offline.ErrSnapshotNotFound) {
			continue // expired by gc meanwhile
		}
		if err != nil {
			return out, fmt.Errorf("entities of the interval in snapshot %d: %w", id, err)
		}
	}
	if err := keysOf(ctx, job, cur, r, set); err != nil {
		return out, fmt.Errorf("entities of the interval after: %w", err)
	}
	out.entities = int64(len(set))
	if len(set) == 0 {
		return out, nil
	}
	w := replacingWriter{job.Online}
	acc := fold.New(job.OnlineView, job.Schema, w, len(set)+1, opts.OnlineBatch)
	acc.Only = set
	if _, err := scanInto(ctx, job, cur, offline.Range{}, canonicalColumns(job.Schema), acc.Add); err != nil {
		return out, err
	}
	gone := make([]online.EntityKey, 0)
	for k := range set {
		if !acc.Holds(k) {
			gone = append(gone, k)
		}
	}
	if err := acc.Flush(ctx); err != nil {
		return out, err
	}
	out.written = acc.Written
	n, err := job.Online.DeleteEntities(ctx, job.OnlineView, gone)
	out.deleted = n
	if err != nil {
		return out, fmt.Errorf("remove entities no longer in the offline table: %w", err)
	}
	return out, nil
}

// replacingWriter writes rows over whatever the store holds: it removes the rows' entities
// first, so the stale-write guard does not keep a newer (bad) row.
type replacingWriter struct{ online.Writer }

func (w replacingWriter) Write(ctx context.Context, v *online.View, rows []online.Row) error {
	keys := make([]online.EntityKey, len(rows))
	for i := range rows {
		keys[i] = rows[i].Key
	}
	if _, err := w.DeleteEntities(ctx, v, keys); err != nil {
		return err
	}
	return w.Writer.Write(ctx, v, rows)
}

// ResetWatermark moves a view's watermark back to to, so incremental runs materialize from
// there again (after bad rows dated in the future moved it too far, say). Moving it forward
// or to where it is fails with ErrNotBackwards; a view never materialized has no watermark
// to reset (registry.ErrWatermarkNotFound). The move is recorded in the audit trail with the
// time it came from.
func ResetWatermark(ctx context.Context, runs Runs, project, view string, to time.Time, actor string) (from, now registry.Watermark, err error) {
	from, err = runs.Watermark(ctx, project, view)
	if errors.Is(err, registry.ErrWatermarkNotFound) {
		return from, now, noWatermarkError{view}
	}
	if err != nil {
		return from, now, fmt.Errorf("reset watermark of %q: %w", view, err)
	}
	to = to.UTC().Truncate(time.Microsecond)
	if !to.Before(from.Time) {
		return from, now, fmt.Errorf("reset watermark of %q to %s: it is at %s: %w", view, to.Format(time.RFC3339Nano), from.Time.Format(time.RFC3339Nano), ErrNotBackwards)
	}
	now, err = runs.AdvanceWatermark(ctx, registry.WatermarkUpdate{Project: project, View: view, To: to, Force: true})
	if err != nil {
		return from, now, fmt.Errorf("reset watermark of %q: %w", view, err)
	}
	err = audit(ctx, runs, registry.AuditEvent{Project: project, Actor: actor, Action: registry.AuditResetWatermark, Target: view}, map[string]any{
		"from": from.Time, "to": now.Time, "from_run_id": strconv.FormatInt(int64(from.RunID), 10),
	})
	return from, now, err
}

// noWatermarkError refuses to reset the watermark of a view never materialized. It matches
// registry.ErrWatermarkNotFound.
type noWatermarkError struct{ view string }

func (e noWatermarkError) Error() string {
	return fmt.Sprintf("view %q has no watermark yet (never materialized); nothing to reset", e.view)
}

func (e noWatermarkError) Unwrap() error { return registry.ErrWatermarkNotFound }

// DeleteOnline removes entities of a view from the online store and records it in the audit
// trail with the keys' values as given (desc). It returns how many rows were removed.
func DeleteOnline(ctx context.Context, a Auditor, project string, w online.Writer, v *online.View, keys []online.EntityKey, desc []string, actor string) (int64, error) {
	n, err := w.DeleteEntities(ctx, v, keys)
	if err != nil {
		return n, fmt.Errorf("delete entities of %q: %w", v.Name, err)
	}
	return n, audit(ctx, a, registry.AuditEvent{Project: project, Actor: actor, Action: registry.AuditOnlineDelete, Target: v.Name}, map[string]any{
		"entities": desc, "deleted": n,
	})
}

// ParseEntityKeys turns "join_key=value" arguments into entity keys of v: each of v's join
// keys must be given the same number of times, and the i-th values of every join key make
// the i-th entity. desc gives each entity as "k=v,k2=v2", for messages and the audit trail.
func ParseEntityKeys(v *online.View, args []string) (keys []online.EntityKey, desc []string, err error) {
	names := make([]string, len(v.JoinKeys))
	vals := make([][]string, len(v.JoinKeys))
	for i, jk := range v.JoinKeys {
		names[i] = jk.Name
	}
	for _, a := range args {
		name, raw, ok := strings.Cut(a, "=")
		i := slices.Index(names, name)
		if !ok || i < 0 {
			return nil, nil, fmt.Errorf("entity %q: want JOIN_KEY=VALUE with a join key of view %q (%s): %w", a, v.Name, strings.Join(names, ", "), online.ErrInvalidArgument)
		}
		vals[i] = append(vals[i], raw)
	}
	n := len(vals[0])
	for i := range vals {
		if len(vals[i]) != n {
			return nil, nil, fmt.Errorf("view %q: join key %q given %d times, %q %d times; give every join key once per entity: %w", v.Name, names[0], n, names[i], len(vals[i]), online.ErrInvalidArgument)
		}
	}
	row := make([]online.Value, len(names))
	for e := range n {
		parts := make([]string, len(names))
		for i, jk := range v.JoinKeys {
			val, err := parseKeyValue(vals[i][e], jk.Type)
			if err != nil {
				return nil, nil, fmt.Errorf("entity %s=%s: %v: %w", jk.Name, vals[i][e], err, online.ErrInvalidArgument)
			}
			row[i] = val
			parts[i] = jk.Name + "=" + vals[i][e]
		}
		k, err := v.Key(row...)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, k)
		desc = append(desc, strings.Join(parts, ","))
	}
	return keys, desc, nil
}

func parseKeyValue(s string, t definitions.Type) (online.Value, error) {
	switch t.Elem {
	case definitions.Int32:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return online.Value{}, errors.New("want an int32")
		}
		return online.Int32(int32(n)), nil
	case definitions.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return online.Value{}, errors.New("want an int64")
		}
		return online.Int64(n), nil
	case definitions.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return online.Value{}, errors.New("want true or false")
		}
		return online.Bool(b), nil
	case definitions.String:
		return online.String(s), nil
	case definitions.Bytes:
		return online.Bytes([]byte(s)), nil
	case definitions.Timestamp:
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return online.Value{}, errors.New("want an RFC 3339 time")
		}
		return online.Timestamp(ts), nil
	}
	return online.Value{}, fmt.Errorf("join keys of type %s cannot be given on the command line", t)
}
