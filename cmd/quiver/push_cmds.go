package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/project"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving"
)

func (a *app) pushCommand() *cobra.Command {
	var (
		remote    remoteFlags
		batchRows int
	)
	cmd := &cobra.Command{
		Use:   "push VIEW FILE",
		Short: "Write the rows of a Parquet or CSV file to a push feature view",
		Long: `Write the rows of a Parquet (.parquet) or CSV (.csv) file to a feature view whose source is
a push source (push: {}). The file holds one column per join key and feature of the view, the
event time in the source's timestamp_field and, optionally, the created time in its
created_timestamp_field. The whole file is checked first: an unknown or missing column, a value
of the wrong type, a null join key or event time refuses it, naming the column and row (0-based),
and nothing is written.

Without --server the rows are written directly: the latest row per entity to the online store
(an older row never replaces a newer one), then all rows to the view's offline table in one
Iceberg commit. Pushing the same file again does not commit its rows twice.

With --server the rows are sent to a quiver serve (PushFeatures) in requests of --batch-rows
rows; each acknowledged request is online and logged on the server's disk, and reaches the
offline table within the server's --push-commit-interval. See docs/ingestion.md.`,
		Args: cobra.ExactArgs(2),
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		view, path := args[0], args[1]
		out := pushOutput{View: view, File: path}
		if remote.Server != "" {
			if batchRows <= 0 {
				return usage("--batch-rows must be at least 1")
			}
			b, err := p.PushBatch(ctx, view, path)
			if err != nil {
				return err
			}
			if err := a.pushRemote(ctx, &remote, view, b, batchRows, &out); err != nil {
				return err
			}
		} else {
			res, err := p.Push(ctx, view, path)
			if err != nil {
				return err
			}
			out.Rows, out.OnlineRows, out.StaleRows, out.OfflineRows, out.SnapshotID, out.AlreadyCommitted = res.Rows, res.OnlineRows, res.StaleRows, res.OfflineRows, idString(res.SnapshotID), res.AlreadyCommitted
		}
		return a.render(out, func() {
			online := fmt.Sprintf("%d entity rows online", out.OnlineRows)
			if out.StaleRows > 0 {
				online += fmt.Sprintf(", %d ignored as stale (the online store holds newer rows)", out.StaleRows)
			}
			switch {
			case out.Server != "":
				a.printf("Pushed %d rows of %s to %s in %d requests (%s); acknowledged through log sequence %s.\n",
					out.Rows, view, out.Server, out.Requests, online, out.LogSequence)
			case out.AlreadyCommitted:
				a.printf("Pushed %d rows of %s (%s); the offline table already held this file (snapshot %s).\n", out.Rows, view, online, out.SnapshotID)
			default:
				a.printf("Pushed %d rows of %s: %s, %d rows committed offline (snapshot %s).\n", out.Rows, view, online, out.OfflineRows, out.SnapshotID)
			}
		})
	})
	a.addRemoteFlags(cmd, &remote, "push through this quiver serve (HOST:PORT) instead of writing the stores directly")
	cmd.Flags().IntVar(&batchRows, "batch-rows", 5000, "rows per PushFeatures request with --server")
	return cmd
}

// pushRemote sends b to a quiver serve in requests of batchRows rows.
func (a *app) pushRemote(ctx context.Context, remote *remoteFlags, view string, b ingest.Batch, batchRows int, out *pushOutput) error {
	conn, err := a.dial(remote)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := pb.NewFeatureServingClient(conn)
	out.Server = remote.Server
	for from := 0; from < b.Rows(); from += batchRows {
		to := min(from+batchRows, b.Rows())
		resp, err := client.PushFeatures(ctx, serving.PushRequestFromBatch(view, b.Slice(from, to)))
		if err != nil {
			return fmt.Errorf("push rows %d to %d of %s: %w", from, to-1, view, statusError(err))
		}
		out.Requests++
		out.Rows += int64(resp.GetRows())
		out.OnlineRows += int64(resp.GetOnlineRows())
		out.StaleRows += int64(resp.GetStaleRows())
		out.LogSequence = fmt.Sprint(resp.GetLogSequence())
	}
	return nil
}
