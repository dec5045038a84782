-- Quiver registry schema, version 1 (SQLite).
-- Times are TEXT in the fixed-width UTC form 2006-01-02T15:04:05.000000Z, so text order is time
-- order. Booleans are INTEGER 0/1. Specs and manifests are TEXT, stored byte for
-- byte as the caller produced them.

CREATE TABLE projects (
    name       TEXT PRIMARY KEY,
    revision   BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

-- One row per apply that changed something.
CREATE TABLE revisions (
    project    TEXT NOT NULL REFERENCES projects (name),
    revision   BIGINT NOT NULL,
    applied_at TEXT NOT NULL,
    applied_by TEXT NOT NULL,
    git_commit TEXT NOT NULL,
    PRIMARY KEY (project, revision)
);

-- Every applied version of every definition object; never updated. A removal is a version
-- with deleted = 1 and an empty spec.
CREATE TABLE object_versions (
    project    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    spec       TEXT NOT NULL,
    deleted    INTEGER NOT NULL,
    revision   BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    git_commit TEXT NOT NULL,
    PRIMARY KEY (project, kind, name, version),
    FOREIGN KEY (project, revision) REFERENCES revisions (project, revision)
);
CREATE INDEX object_versions_by_revision ON object_versions (project, revision);

CREATE TABLE materialization_runs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    project             TEXT NOT NULL,
    feature_view        TEXT NOT NULL,
    interval_start      TEXT NOT NULL,
    interval_end        TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
    rows_read           BIGINT NOT NULL DEFAULT 0,
    rows_written        BIGINT NOT NULL DEFAULT 0,
    started_at          TEXT NOT NULL,
    finished_at         TEXT,
    error               TEXT NOT NULL DEFAULT '',
    offline_snapshot_id BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX materialization_runs_by_view ON materialization_runs (project, feature_view, id);

CREATE TABLE watermarks (
    project      TEXT NOT NULL,
    feature_view TEXT NOT NULL,
    watermark    TEXT NOT NULL,
    run_id       BIGINT NOT NULL DEFAULT 0,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (project, feature_view)
);

CREATE TABLE datasets (
    project     TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    content_id  TEXT NOT NULL,
    inputs_hash TEXT NOT NULL DEFAULT '',
    location    TEXT NOT NULL DEFAULT '',
    row_count   BIGINT NOT NULL DEFAULT 0,
    manifest    TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL DEFAULT '',
    deleted     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project, name, version)
);
CREATE INDEX datasets_by_inputs ON datasets (project, inputs_hash);

-- Training runs (API in a later issue). info is JSON: command, host, GPUs, definition
-- versions, Quiver version, diff hash.
CREATE TABLE training_runs (
    id                 TEXT PRIMARY KEY,
    project            TEXT NOT NULL,
    job                TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('RUNNING', 'FINISHED', 'FAILED', 'KILLED')),
    attempt            INTEGER NOT NULL DEFAULT 1,
    exit_code          INTEGER,
    dataset_name       TEXT NOT NULL DEFAULT '',
    dataset_version    INTEGER NOT NULL DEFAULT 0,
    dataset_content_id TEXT NOT NULL DEFAULT '',
    git_commit         TEXT NOT NULL DEFAULT '',
    info               TEXT NOT NULL DEFAULT '',
    created_by         TEXT NOT NULL DEFAULT '',
    started_at         TEXT NOT NULL,
    finished_at        TEXT
);
CREATE INDEX training_runs_by_job ON training_runs (project, job, started_at);

-- Params are write-once: the primary key refuses a second value.
CREATE TABLE training_run_params (
    run_id TEXT NOT NULL REFERENCES training_runs (id),
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);

-- Metrics are append-only; seq orders points logged at the same step. Paged by (name, step, seq).
CREATE TABLE training_run_metrics (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    TEXT NOT NULL REFERENCES training_runs (id),
    name      TEXT NOT NULL,
    step      BIGINT NOT NULL,
    value     REAL NOT NULL,
    logged_at TEXT NOT NULL
);
CREATE INDEX training_run_metrics_by_name ON training_run_metrics (run_id, name, step, seq);

CREATE TABLE training_run_tags (
    run_id TEXT NOT NULL REFERENCES training_runs (id),
    name   TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE model_versions (
    project         TEXT NOT NULL,
    name            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    run_id          TEXT NOT NULL DEFAULT '',
    artifact_uri    TEXT NOT NULL,
    artifact_hash   TEXT NOT NULL DEFAULT '',
    runtime         TEXT NOT NULL DEFAULT '',
    feature_service TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (project, name, version)
);

-- An alias (churn@production) points at one version and moves atomically.
CREATE TABLE model_aliases (
    project    TEXT NOT NULL,
    name       TEXT NOT NULL,
    alias      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (project, name, alias),
    FOREIGN KEY (project, name, version) REFERENCES model_versions (project, name, version)
);

-- Audit trail of alias moves; to_version NULL means the alias was removed.
CREATE TABLE model_alias_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    name         TEXT NOT NULL,
    alias        TEXT NOT NULL,
    from_version INTEGER,
    to_version   INTEGER,
    changed_at   TEXT NOT NULL,
    changed_by   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX model_alias_events_by_alias ON model_alias_events (project, name, alias, id);
