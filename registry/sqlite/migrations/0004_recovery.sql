-- Recovery and housekeeping (issue 11): heartbeats of running jobs, so that runs whose process
-- died are reaped as FAILED ("abandoned"), the reason a training run failed, and an audit
-- trail of manual corrections (online sync, replace-online, watermark resets, entity deletes,
-- garbage collection).

ALTER TABLE materialization_runs ADD COLUMN heartbeat_at TEXT;
ALTER TABLE training_runs ADD COLUMN heartbeat_at TEXT;
ALTER TABLE training_runs ADD COLUMN error TEXT NOT NULL DEFAULT '';
CREATE INDEX materialization_runs_by_status ON materialization_runs (project, status);
CREATE INDEX training_runs_by_status ON training_runs (project, status);

CREATE TABLE audit_events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL DEFAULT '',
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_by_project ON audit_events (project, id);
