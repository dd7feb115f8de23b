-- Writers of one dataset's keyword index no longer wait for each other. A term's document
-- frequency is no longer kept in a row of its own (dataset_terms, which every writer of the
-- dataset updated, one transaction at a time, for as long as its transaction lasted): it is
-- the number of the term's postings, counted when a query reads them. The dataset's
-- indexed segments and their total length are kept in 16 rows per dataset
-- (dataset_statistics), a writer adding its changes to the row of its own backend's number
-- modulo 16; their sums are the dataset's figures. A row may go below zero (segments
-- added through one and removed through another); the sums cannot.

CREATE TABLE dataset_statistics (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    dataset_id       uuid        NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    shard            smallint    NOT NULL CHECK (shard >= 0 AND shard < 16),
    indexed_segments bigint      NOT NULL DEFAULT 0,
    indexed_length   bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dataset_id, shard)
);
CREATE INDEX dataset_statistics_workspace_id_idx ON dataset_statistics (workspace_id);

INSERT INTO dataset_statistics (workspace_id, dataset_id, shard, indexed_segments, indexed_length)
SELECT workspace_id, id, 0, indexed_segments, indexed_length FROM datasets
WHERE indexed_segments > 0;

ALTER TABLE datasets DROP COLUMN indexed_segments, DROP COLUMN indexed_length;

CREATE OR REPLACE FUNCTION weft_terms_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dataset_statistics
        (workspace_id, dataset_id, shard, indexed_segments, indexed_length)
    SELECT workspace_id, dataset_id, pg_backend_pid() % 16, count(*), sum(segment_length)
    FROM (SELECT DISTINCT workspace_id, dataset_id, segment_id, segment_length FROM added) s
    GROUP BY workspace_id, dataset_id ORDER BY dataset_id
    ON CONFLICT (dataset_id, shard) DO UPDATE
        SET indexed_segments = dataset_statistics.indexed_segments + excluded.indexed_segments,
            indexed_length = dataset_statistics.indexed_length + excluded.indexed_length,
            updated_at = now();
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION weft_terms_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dataset_statistics
        (workspace_id, dataset_id, shard, indexed_segments, indexed_length)
    SELECT workspace_id, dataset_id, pg_backend_pid() % 16, -count(*), -sum(segment_length)
    FROM (SELECT DISTINCT workspace_id, dataset_id, segment_id, segment_length FROM removed) s
    GROUP BY workspace_id, dataset_id ORDER BY dataset_id
    ON CONFLICT (dataset_id, shard) DO UPDATE
        SET indexed_segments = dataset_statistics.indexed_segments + excluded.indexed_segments,
            indexed_length = dataset_statistics.indexed_length + excluded.indexed_length,
            updated_at = now();
    RETURN NULL;
END;
$$;

DROP TABLE dataset_terms;
