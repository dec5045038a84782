-- Resumable backfills (issue 24): a backfill of [range_start, range_end) of a view split into
-- chunks of chunk_micros, and each chunk's state, so that a re-run of the same backfill resumes
-- at the first chunk not DONE.

CREATE TABLE backfills (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    feature_view TEXT NOT NULL,
    range_start  TEXT NOT NULL,
    range_end    TEXT NOT NULL,
    chunk_micros INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (project, feature_view, range_start, range_end, chunk_micros)
);

CREATE TABLE backfill_chunks (
    backfill_id INTEGER NOT NULL REFERENCES backfills (id),
    seq         INTEGER NOT NULL,
    chunk_start TEXT NOT NULL,
    chunk_end   TEXT NOT NULL,
    status      TEXT NOT NULL,
    run_id      INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (backfill_id, seq)
);
