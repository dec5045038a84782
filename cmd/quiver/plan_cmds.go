package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/project"
)

// plan makes the plan of the -C repo, printing invalid definitions.
func (a *app) plan(cmd *cobra.Command, p *project.Project) (*project.Plan, error) {
	pl, err := p.Plan(cmd.Context())
	return pl, a.reportInvalid(err)
}

func (a *app) planCommand() *cobra.Command {
	var keepData bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would change in the registry, field by field, compatible or breaking",
		Long: `Plan compares the definitions with the registry and prints every change field by field,
each marked compatible or BREAKING. For a removed feature view, and for every view a breaking
change starts a new generation of, it says what apply would drop: how many online rows and
which offline table.`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, _ []string) error {
		pl, err := a.plan(cmd, p)
		if err != nil {
			return err
		}
		p.PreviewDrops(ctx, pl)
		return a.render(pl, func() { pl.WriteText(a.stdout, false, keepData) })
	})
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "show the plan as apply --keep-data would run it")
	return cmd
}

func (a *app) applyCommand() *cobra.Command {
	var opts project.ApplyOptions
	var expect int64
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Register the definitions: a new version of every changed object, in one transaction",
		Long: `Apply writes a new version of every added or changed object to the registry in one
transaction. Earlier versions are kept. Objects that are no longer declared are removed only
with --prune. If someone else applied since this command read the registry, nothing is
written and the command exits 3; run plan again.

Breaking changes (see plan) are refused with exit code 1 unless --allow-breaking is given;
with it, each affected feature view starts a new definition generation. A removed view
(--prune) and a view that starts a new generation have their data dropped after the registry
commit: their online rows for every entity and their offline table (kept with --keep-data).
A drop that is interrupted is finished by the next apply.`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, _ []string) error {
		pl, err := a.plan(cmd, p)
		if err != nil {
			return err
		}
		if cmd.Flags().Changed("expect-revision") {
			opts.ExpectRevision = &expect
		}
		res, err := p.Apply(ctx, pl, opts)
		if res == nil {
			return err
		}
		return a.report(res, res.WriteText, err)
	})
	cmd.Flags().BoolVar(&opts.Prune, "prune", false, "also remove registered objects that are no longer declared, and drop the data of removed feature views")
	cmd.Flags().BoolVar(&opts.AllowBreaking, "allow-breaking", false, "apply breaking changes: each affected feature view starts a new definition generation")
	cmd.Flags().BoolVar(&opts.KeepData, "keep-data", false, "keep the offline tables of removed views and ended generations (online rows are always dropped)")
	cmd.Flags().Int64Var(&expect, "expect-revision", 0, "fail unless the registry is still at this revision (the one plan printed)")
	return cmd
}
