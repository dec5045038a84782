package project

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/materialize"
)

// Reports: what a use case did, in the shape quiver prints it — the -o json form (snake_case
// keys, 64-bit ids as strings) and WriteText, the form for people.

// RunReport is one view's materialization run, or why it was skipped.
type RunReport struct {
	View        string    `json:"view"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	RunID       string    `json:"run_id,omitempty"`
	RowsRead    int64     `json:"rows_read"`
	OfflineRows int64     `json:"offline_rows"`
	OnlineRows  int64     `json:"online_rows"`
	// OnlineDeleted counts entities removed from the online store by --replace-online.
	OnlineDeleted int64  `json:"online_deleted,omitempty"`
	SnapshotID    string `json:"snapshot_id,omitempty"`
	// NoCommit: nothing to load and nothing to replace, so no offline snapshot was made.
	NoCommit bool    `json:"no_commit,omitempty"`
	Seconds  float64 `json:"seconds"`
	// Time spent reading the source, writing the offline store and the online store.
	SourceSeconds  float64 `json:"source_seconds,omitempty"`
	OfflineSeconds float64 `json:"offline_seconds,omitempty"`
	OnlineSeconds  float64 `json:"online_seconds,omitempty"`
	// CollapsedConflicts counts source rows collapsed into a later row with the same join
	// keys, event_ts and created_ts but other values (only the last is kept); the example
	// names one.
	CollapsedConflicts       int64  `json:"collapsed_conflicts,omitempty"`
	CollapsedConflictExample string `json:"collapsed_conflict_example,omitempty"`
	Skipped                  string `json:"skipped,omitempty"`
	Error                    string `json:"error,omitempty"`
}

// MaterializeReport is what a materialization ran (or, DryRun, would run).
type MaterializeReport struct {
	DryRun bool        `json:"dry_run,omitempty"`
	Runs   []RunReport `json:"runs"`
	// Explicit: the intervals were given, not taken from watermarks (dry runs say so).
	Explicit bool `json:"-"`
	// notes are the dry run's notes, by run.
	notes   []string
	seconds float64
}

// id prints a 64-bit id as a string (JavaScript rounds numbers past 2^53); 0 is "".
func id(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// Plan is the report of a dry run of intervals: nothing is read or written.
func (m *Materialization) Plan(intervals []materialize.Interval, explicit bool) *MaterializeReport {
	rep := &MaterializeReport{DryRun: true, Explicit: explicit, Runs: skipped(intervals)}
	rep.notes = make([]string, len(rep.Runs))
	for _, iv := range intervals {
		if iv.UpToDate {
			continue
		}
		r := RunReport{View: iv.View, Start: iv.Start, End: iv.End}
		note := "from the view's watermark"
		switch {
		case explicit:
			note = "as given"
		case !iv.FromWatermark && !iv.OnlineFrom.IsZero():
			note = "first run: the source's whole history; online only from " + iv.OnlineFrom.Format(time.RFC3339) + " (end minus the view's ttl)"
		case !iv.FromWatermark:
			note = "first run: the source's whole history"
		}
		rep.Runs = append(rep.Runs, r)
		rep.notes = append(rep.notes, note)
	}
	return rep
}

// skipped reports the intervals that are up to date, first.
func skipped(intervals []materialize.Interval) []RunReport {
	out := []RunReport{}
	for _, iv := range intervals {
		if iv.UpToDate {
			out = append(out, RunReport{View: iv.View, Skipped: "up to date (watermark " + iv.Start.Format(time.RFC3339) + ")"})
		}
	}
	return out
}

// RunAll runs each interval in turn (a view up to date is reported as skipped), stopping at
// the first failure (the failed run is recorded in the registry with its error). progress,
// when set, is called before each run and returns what the run reports its rows read to
// (nil: nothing) and a func called after it.
func (m *Materialization) RunAll(ctx context.Context, intervals []materialize.Interval, opts RunOptions, progress func(iv materialize.Interval) (func(int64), func())) (*MaterializeReport, error) {
	if err := opts.Validate(); err != nil {
		return &MaterializeReport{Runs: []RunReport{}}, err
	}
	rep := &MaterializeReport{Runs: skipped(intervals)}
	began := time.Now()
	defer func() { rep.seconds = time.Since(began).Seconds() }()
	for _, iv := range intervals {
		if iv.UpToDate {
			continue
		}
		o := opts
		done := func() {}
		if progress != nil {
			o.Progress, done = progress(iv)
		}
		res, err := m.Run(ctx, iv, o)
		done()
		r := runReport(iv, res)
		if res.Conflicts > 0 {
			m.p.notice("quiver: warning: view %q: %s collapsed into a later one with the same join keys, event_ts and created_ts but other values (only the last is kept), e.g. %s",
				iv.View, count(res.Conflicts, "event"), res.ConflictExample)
		}
		if err != nil {
			if res.RunID != 0 {
				r.Error = err.Error()
				rep.Runs = append(rep.Runs, r)
			}
			return rep, err
		}
		rep.Runs = append(rep.Runs, r)
	}
	return rep, nil
}

// runReport is the report of a run of iv.
func runReport(iv materialize.Interval, res materialize.Result) RunReport {
	return RunReport{View: iv.View, Start: iv.Start, End: iv.End, RunID: id(int64(res.RunID)), RowsRead: res.RowsRead,
		OfflineRows: res.OfflineRows, OnlineRows: res.OnlineRows, OnlineDeleted: res.OnlineDeleted, SnapshotID: id(res.SnapshotID), NoCommit: res.NoCommit, Seconds: res.Duration.Seconds(),
		SourceSeconds: res.SourceTime.Seconds(), OfflineSeconds: res.OfflineTime.Seconds(), OnlineSeconds: res.OnlineTime.Seconds(),
		CollapsedConflicts: res.Conflicts, CollapsedConflictExample: res.ConflictExample}
}

// WriteText writes the runs as a table and a line of totals (or, for a dry run, the plan).
func (rep *MaterializeReport) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if rep.DryRun {
		fmt.Fprintln(w, "Dry run: nothing is read or written.")
		fmt.Fprintln(tw, "VIEW\tSTART\tEND\tNOTE")
		for i, r := range rep.Runs {
			if r.Skipped == "" {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.View, r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339), rep.notes[i])
			}
		}
		for _, r := range rep.Runs {
			if r.Skipped != "" {
				fmt.Fprintf(tw, "%s\t-\t-\t%s\n", r.View, r.Skipped)
			}
		}
		tw.Flush()
		return
	}
	fmt.Fprintln(tw, "VIEW\tINTERVAL\tROWS READ\tOFFLINE ROWS\tONLINE ROWS\tSNAPSHOT\tTIME\tSTATUS")
	var total int64
	failed, committed := false, false
	for _, r := range rep.Runs {
		status := "ok"
		switch {
		case r.Skipped != "":
			status = r.Skipped
		case r.Error != "":
			status, failed = "FAILED", true
		case r.NoCommit:
			status = "ok, no new rows, nothing committed"
		case r.RowsRead == 0:
			status = "ok, no new rows"
		case r.CollapsedConflicts > 0:
			status = fmt.Sprintf("ok, %s collapsed", count(r.CollapsedConflicts, "conflicting duplicate"))
		}
		interval, snap, took := "-", r.SnapshotID, "-"
		if snap == "" {
			snap = "-"
		}
		if r.Skipped == "" {
			interval = fmt.Sprintf("[%s, %s)", r.Start.Format(time.DateTime), r.End.Format(time.DateTime))
			took = fmt.Sprintf("%.2fs", r.Seconds)
			committed = committed || !r.NoCommit
		}
		total += r.RowsRead
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", r.View, interval, r.RowsRead, r.OfflineRows, r.OnlineRows, snap, took, status)
	}
	tw.Flush()
	switch {
	case failed:
	case total == 0:
		fmt.Fprintln(w, "No new rows: the sources hold nothing in these intervals; every view is up to date.")
		if !committed {
			fmt.Fprintln(w, "Nothing was committed to the offline store.")
		}
	default:
		fmt.Fprintf(w, "Materialized %d rows in %.2fs (%.0f rows/s).\n", total, rep.seconds, float64(total)/max(rep.seconds, 1e-9))
	}
}

// SyncReport is one view's online sync from its offline table, or why it was skipped.
type SyncReport struct {
	View       string  `json:"view"`
	SnapshotID string  `json:"snapshot_id"`
	RowsRead   int64   `json:"rows_read"`
	OnlineRows int64   `json:"online_rows"`
	Seconds    float64 `json:"seconds"`
	Skipped    string  `json:"skipped,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// SyncsReport is what materialize --online-only did.
type SyncsReport struct {
	OnlineOnly bool `json:"online_only"`
	// Shard is the part of a sharded load (materialize --shard i/N), empty otherwise.
	Shard string       `json:"shard,omitempty"`
	Views []SyncReport `json:"views"`
}

// SyncAll loads the online store from the offline table of each online view, stopping at
// the first failure; progress is as for RunAll.
func (m *Materialization) SyncAll(ctx context.Context, progress func(v *catalog.View) (func(int64), func())) (*SyncsReport, error) {
	rep := &SyncsReport{OnlineOnly: true}
	for _, v := range m.Views {
		if v.Online == nil {
			rep.Views = append(rep.Views, SyncReport{View: v.Name, Skipped: "not online (online: false)"})
			continue
		}
		var report func(int64)
		done := func() {}
		if progress != nil {
			report, done = progress(v)
		}
		res, err := m.Sync(ctx, v, report)
		done()
		r := SyncReport{View: v.Name, SnapshotID: strconv.FormatInt(res.SnapshotID, 10), RowsRead: res.RowsRead, OnlineRows: res.OnlineRows, Seconds: res.Duration.Seconds()}
		if err != nil {
			r.Error = err.Error()
			rep.Views = append(rep.Views, r)
			return rep, err
		}
		rep.Views = append(rep.Views, r)
	}
	return rep, nil
}

// WriteText writes the syncs as a table.
func (rep *SyncsReport) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIEW\tOFFLINE SNAPSHOT\tROWS READ\tONLINE ROWS\tTIME\tSTATUS")
	failed := false
	for _, r := range rep.Views {
		status := "ok"
		switch {
		case r.Skipped != "":
			status = r.Skipped
		case r.Error != "":
			status, failed = "FAILED", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2fs\t%s\n", r.View, r.SnapshotID, r.RowsRead, r.OnlineRows, r.Seconds, status)
	}
	tw.Flush()
	if !failed {
		fmt.Fprintln(w, "Online store loaded from the offline tables; the offline tables and watermarks are unchanged.")
	}
}
