package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/ingest/stream"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/online"
)

// statusJSON is one view of quiver status -o json. Absent times are omitted.
type statusJSON struct {
	View                string           `json:"view"`
	Source              string           `json:"source"`
	Watermark           *time.Time       `json:"watermark,omitempty"`
	LastMaterialization *time.Time       `json:"last_materialization,omitempty"`
	LastPush            *time.Time       `json:"last_push,omitempty"`
	LastStream          *time.Time       `json:"last_stream,omitempty"`
	OfflineSnapshots    int              `json:"offline_snapshots"`
	RowsOnline          *int64           `json:"rows_online,omitempty"`
	ConsumerLag         map[string]int64 `json:"consumer_lag,omitempty"`
	LagError            string           `json:"lag_error,omitempty"`
}

func (a *app) statusCommand() *cobra.Command {
	var countOnline bool
	cmd := &cobra.Command{
		Use:   "status [VIEW...]",
		Short: "Show how fresh each feature view is: watermark, last materialization, push and stream writes, lag",
		Long: `Print, per feature view (all when none is named): its batch watermark and last successful
materialization, when pushed or streamed rows were last committed to its offline table, the
consumer lag per partition of a kafka source (asked of the brokers, 5s at most), and the rows it
has in the online store — counted for the embedded store; for Redis (which must scan every key
of the project) only with --count-online.`,
		RunE: func(cmd *cobra.Command, names []string) error {
			ctx := cmd.Context()
			cfg, err := a.config()
			if err != nil {
				return err
			}
			reg, err := a.registry(ctx, cfg)
			if err != nil {
				return err
			}
			defer reg.Close()
			applied, err := catalog.Load(ctx, reg, cfg.Project)
			if err != nil {
				return err
			}
			repo := applied.Repo
			views := repo.FeatureViews
			if len(names) > 0 {
				views = nil
				for _, n := range names {
					v := repo.FeatureView(n)
					if v == nil {
						return repo.UnknownError(definitions.KindFeatureView, n)
					}
					views = append(views, v)
				}
			}
			off, err := stores.OpenOffline(ctx, cfg, nil)
			if err != nil {
				return err
			}
			defer off.Close()
			var counter online.Counter
			if countOnline || strings.HasPrefix(cfg.Online, "sqlite://") {
				on, err := stores.OpenOnline(ctx, cfg)
				if err != nil {
					return err
				}
				defer on.Close()
				counter, _ = on.(online.Counter)
			}
			var out []statusJSON
			for _, fv := range views {
				src := repo.Source(fv.Source)
				gen := applied.Generation(fv.Name)
				var ov *online.View
				if fv.Online {
					ents := make([]definitions.Entity, 0, len(fv.Entities))
					for _, e := range fv.Entities {
						ents = append(ents, *repo.Entity(e))
					}
					if v, err := online.NewView(cfg.Project, fv, ents); err == nil {
						ov = v.WithGeneration(max(gen, 1))
					}
				}
				st, err := ingest.Status(ctx, reg, off, counter, cfg.Project, fv.Name, src.SourceType(), max(gen, 1), ov)
				if err != nil {
					return err
				}
				j := statusJSON{View: st.View, Source: st.Source, OfflineSnapshots: st.OfflineSnapshots,
					Watermark: timePtr(st.Watermark), LastMaterialization: timePtr(st.LastMaterialization),
					LastPush: timePtr(st.LastPush), LastStream: timePtr(st.LastStream)}
				if st.RowsOnline >= 0 {
					j.RowsOnline = &st.RowsOnline
				}
				if src.Kafka != nil {
					lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					lag, err := stream.Lag(lctx, src)
					cancel()
					if err != nil {
						j.LagError = err.Error()
					} else {
						j.ConsumerLag = map[string]int64{}
						for p, l := range lag {
							j.ConsumerLag[strconv.Itoa(int(p))] = l
						}
					}
				}
				out = append(out, j)
			}
			if a.jsonOutput() {
				if out == nil {
					out = []statusJSON{}
				}
				return a.printJSON(out)
			}
			w := a.table()
			fmt.Fprintln(w, "VIEW\tSOURCE\tWATERMARK\tLAST MATERIALIZED\tLAST PUSH\tLAST STREAM\tOFFLINE SNAPSHOTS\tLAG\tROWS ONLINE")
			for _, s := range out {
				rows := "-"
				if s.RowsOnline != nil {
					rows = strconv.FormatInt(*s.RowsOnline, 10)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.View, s.Source, fmtTime(s.Watermark), fmtTime(s.LastMaterialization),
					fmtTime(s.LastPush), fmtTime(s.LastStream), s.OfflineSnapshots, fmtLag(s), rows)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&countOnline, "count-online", false, "count the online rows also in Redis (scans every key of the project)")
	return cmd
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

func fmtLag(s statusJSON) string {
	switch {
	case s.LagError != "":
		return "unknown"
	case s.ConsumerLag == nil:
		return "-"
	}
	parts := make([]string, 0, len(s.ConsumerLag))
	for p, l := range s.ConsumerLag {
		parts = append(parts, p+":"+strconv.FormatInt(l, 10))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
