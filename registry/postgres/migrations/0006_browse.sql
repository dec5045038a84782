-- An index for the web UI (quiver ui, issue 16): a project's training runs paged newest first
-- without sorting them all.

CREATE INDEX training_runs_by_started ON training_runs (project, started_at, id);
