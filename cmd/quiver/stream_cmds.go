package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/ingest/stream"
	"github.com/quiverfs/quiver/project"
)

func (a *app) streamCommand() *cobra.Command {
	var opts project.StreamOptions
	cmd := &cobra.Command{
		Use:   "stream [VIEW...]",
		Short: "Consume the Kafka sources of feature views into the online and offline stores",
		Long: `Consume the Kafka topics of feature views whose source is a kafka source (all of them when
none is named), until interrupted. Each message becomes a row: the latest row per entity is
written to the online store at once (an older row never replaces a newer one), the rows are
appended to the view's Iceberg table at least every --commit-interval, and only then are the
consumer group's offsets committed. A restart resumes from the committed offsets; messages the
offline table already holds are not appended again. A message that cannot be read is copied to
the source's dead_letter_topic (on_error: dead_letter) or counted and skipped (on_error: skip).
Prometheus metrics (consumer lag per partition, event-to-online latency, message counts) are
served on --metrics-addr. Several quiver stream processes may consume one consumer group: they
share its partitions, and when one dies the others take its partitions over (give each its
own --metrics-addr on one host). See docs/ingestion.md.

Every --refresh, and before every offline commit, it checks the registry's revision. After an
apply that changes a consumed view or its source (a breaking change starts a new definition
generation), it consumes again, from the committed offsets, what it had not committed yet and
goes on with the new definitions, writing the new generation's table, without a restart. If a
consumed view is removed, or its source is no longer a kafka source, it commits nothing more
for it and stops with an error (exit code 4).`,
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, names []string) error {
		opts.Views = names
		return p.Stream(ctx, opts)
	})
	f := cmd.Flags()
	f.DurationVar(&opts.Consumer.CommitInterval, "commit-interval", stream.DefaultCommitInterval, "most time a consumed row waits before its offline commit and the offset commit")
	f.DurationVar(&opts.Consumer.SessionTimeout, "session-timeout", stream.DefaultSessionTimeout, "consumer group session timeout: how soon a dead consumer's partitions move on")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "127.0.0.1:9465", "Prometheus /metrics listen address HOST:PORT (empty: none); never authenticated, so loopback only unless --allow-unauthenticated-metrics")
	f.BoolVar(&opts.AllowUnauthenticatedMetrics, "allow-unauthenticated-metrics", false, "serve /metrics on a non-loopback --metrics-addr (anyone who reaches it reads the consumers' metrics)")
	f.DurationVar(&opts.Refresh, "refresh", catalog.DefaultInterval, "how often to check the registry for new definitions of the consumed views")
	return cmd
}
