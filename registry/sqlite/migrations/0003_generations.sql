-- Quiver registry schema, version 3 (SQLite): feature view definition generations and the
-- data drops that ending a generation leaves to do (docs/registry.md, "Generations").

-- The current definition generation of a feature view. A view without a row is at
-- generation 1, which is where every view written before this migration stays.
CREATE TABLE view_generations (
    project      TEXT NOT NULL,
    feature_view TEXT NOT NULL,
    generation   INTEGER NOT NULL,
    revision     BIGINT NOT NULL,
    PRIMARY KEY (project, feature_view)
);

-- Data of ended generations still to be deleted: the online rows and (unless kept) the
-- offline tables of generation <= generation. Written in the apply's transaction, removed
-- once the data is gone, so an interrupted drop is finished by the next apply.
CREATE TABLE pending_drops (
    project      TEXT NOT NULL,
    feature_view TEXT NOT NULL,
    generation   INTEGER NOT NULL,
    drop_online  INTEGER NOT NULL,
    drop_offline INTEGER NOT NULL,
    revision     BIGINT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (project, feature_view, generation)
);
