package project

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/ingest/stream"
	"github.com/quiverfs/quiver/online"
)

// ViewStatus is how fresh one view is, with the consumer lag of a kafka source; absent times
// are omitted.
type ViewStatus struct {
	View                string     `json:"view"`
	Source              string     `json:"source"`
	Watermark           *time.Time `json:"watermark,omitempty"`
	LastMaterialization *time.Time `json:"last_materialization,omitempty"`
	LastPush            *time.Time `json:"last_push,omitempty"`
	LastStream          *time.Time `json:"last_stream,omitempty"`
	OfflineSnapshots    int        `json:"offline_snapshots"`
	// RowsOnline is absent when the store cannot count cheaply (Redis without countOnline).
	RowsOnline *int64 `json:"rows_online,omitempty"`
	// ConsumerLag is the consumer lag per partition of a kafka source (absent for other
	// sources, and when the brokers did not answer: LagError then says why).
	ConsumerLag map[string]int64 `json:"consumer_lag,omitempty"`
	LagError    string           `json:"lag_error,omitempty"`
}

// Statuses are the views' statuses.
type Statuses []ViewStatus

// WriteText writes the statuses as a table.
func (s Statuses) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIEW\tSOURCE\tWATERMARK\tLAST MATERIALIZED\tLAST PUSH\tLAST STREAM\tOFFLINE SNAPSHOTS\tLAG\tROWS ONLINE")
	for _, v := range s {
		rows := "-"
		if v.RowsOnline != nil {
			rows = strconv.FormatInt(*v.RowsOnline, 10)
		}
		lag := "-"
		switch {
		case v.LagError != "":
			lag = "unknown"
		case v.ConsumerLag != nil:
			var parts []string
			for p, l := range v.ConsumerLag {
				parts = append(parts, p+":"+strconv.FormatInt(l, 10))
			}
			sort.Strings(parts)
			lag = strings.Join(parts, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", v.View, v.Source, fmtTime(v.Watermark), fmtTime(v.LastMaterialization),
			fmtTime(v.LastPush), fmtTime(v.LastStream), v.OfflineSnapshots, lag, rows)
	}
	tw.Flush()
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// Status reports each view's freshness (all views when none are named): watermark, last
// materialization, push and stream commits, offline snapshots, the consumer lag of a kafka
// source (asked of the brokers, 5s at most) and the rows online — counted where the store
// counts cheaply, or with countOnline.
func (p *Project) Status(ctx context.Context, names []string, countOnline bool) (Statuses, error) {
	snap, err := p.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	views, err := snap.Views(names...)
	if err != nil {
		return nil, err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	off, err := InspectOffline(ctx, p.Config, reg) // status writes nothing
	if err != nil {
		return nil, err
	}
	defer off.Close()
	var counter online.Counter
	if countOnline || CountsCheaply(p.Config) {
		on, err := p.Online(ctx)
		if err != nil {
			return nil, err
		}
		counter, _ = on.(online.Counter)
	}
	out := make(Statuses, 0, len(views))
	for _, v := range views {
		st, err := ingest.Status(ctx, reg, off, counter, p.Name(), v)
		if err != nil {
			return nil, err
		}
		vs := ViewStatus{View: st.View, Source: st.Source, OfflineSnapshots: st.OfflineSnapshots,
			Watermark: timePtr(st.Watermark), LastMaterialization: timePtr(st.LastMaterialization),
			LastPush: timePtr(st.LastPush), LastStream: timePtr(st.LastStream)}
		if st.RowsOnline >= 0 {
			vs.RowsOnline = &st.RowsOnline
		}
		if v.Kafka() {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			lag, err := stream.Lag(lctx, v.Source)
			cancel()
			if err != nil {
				vs.LagError = err.Error()
			} else {
				vs.ConsumerLag = map[string]int64{}
				for p, l := range lag {
					vs.ConsumerLag[strconv.Itoa(int(p))] = l
				}
			}
		}
		out = append(out, vs)
	}
	return out, nil
}
