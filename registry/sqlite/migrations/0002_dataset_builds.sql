-- Quiver registry schema, version 2 (SQLite): in-flight dataset builds.
-- A build is recorded before it writes any file; its id names its staging folder
-- (warehouse/projects/PROJECT/datasets/.staging/bID), so no two builds share one. Finishing a
-- build deletes its row and inserts the dataset version in one transaction, so versions are
-- numbered only when a build succeeds: no gaps, nothing registered by a build that crashed.
CREATE TABLE dataset_builds (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT NOT NULL,
    name       TEXT NOT NULL,
    host       TEXT NOT NULL DEFAULT '',
    pid        INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL
);
CREATE INDEX dataset_builds_by_project ON dataset_builds (project, id);
CREATE INDEX datasets_by_content ON datasets (project, content_id);
