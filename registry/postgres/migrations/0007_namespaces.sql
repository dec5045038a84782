-- Storage namespace ownership (issue 22): the project that first used each Iceberg namespace
-- (which also names its warehouse folder), so that no other project is ever given it.

CREATE TABLE namespace_owners (
    namespace  TEXT PRIMARY KEY,
    project    TEXT NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL
);
