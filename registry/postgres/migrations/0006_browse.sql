-- Indexes for the web UI (quiver ui, issue 16): a project's training runs paged newest first,
-- and metric series drawn from the index alone (run, name, step, value) without reading rows.

CREATE INDEX training_runs_by_started ON training_runs (project, started_at, id);
CREATE INDEX training_run_metrics_series ON training_run_metrics (run_id, name, step, value);
