package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/project"
)

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
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, names []string) error {
		st, err := p.Status(ctx, names, countOnline)
		if err != nil {
			return err
		}
		return a.render(st, func() { st.WriteText(a.stdout) })
	})
	cmd.Flags().BoolVar(&countOnline, "count-online", false, "count the online rows also in Redis (scans every key of the project)")
	return cmd
}
