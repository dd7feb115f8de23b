CREATE TABLE dataset_terms (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id       uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    dataset_id         uuid        NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    term               text        NOT NULL,
    document_frequency integer     NOT NULL CHECK (document_frequency >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dataset_id, term)
);
CREATE INDEX dataset_terms_workspace_id_idx ON dataset_terms (workspace_id);

INSERT INTO dataset_terms (workspace_id, dataset_id, term, document_frequency)
SELECT workspace_id, dataset_id, term, count(*) FROM segment_terms
GROUP BY workspace_id, dataset_id, term;

ALTER TABLE datasets
    ADD COLUMN indexed_segments integer NOT NULL DEFAULT 0 CHECK (indexed_segments >= 0),
    ADD COLUMN indexed_length   bigint  NOT NULL DEFAULT 0 CHECK (indexed_length >= 0);
UPDATE datasets d SET indexed_segments = s.segments, indexed_length = s.length
FROM (SELECT dataset_id, sum(indexed_segments) AS segments, sum(indexed_length) AS length
      FROM dataset_statistics GROUP BY dataset_id) s
WHERE s.dataset_id = d.id;

CREATE OR REPLACE FUNCTION weft_terms_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE datasets ds
    SET indexed_segments = ds.indexed_segments + a.segments,
        indexed_length = ds.indexed_length + a.length
    FROM (SELECT dataset_id, count(*) AS segments, sum(segment_length) AS length
          FROM (SELECT DISTINCT dataset_id, segment_id, segment_length FROM added) s
          GROUP BY dataset_id) a
    WHERE ds.id = a.dataset_id;
    INSERT INTO dataset_terms (workspace_id, dataset_id, term, document_frequency)
    SELECT workspace_id, dataset_id, term, count(*) FROM added
    GROUP BY workspace_id, dataset_id, term ORDER BY dataset_id, term
    ON CONFLICT (dataset_id, term) DO UPDATE
        SET document_frequency = dataset_terms.document_frequency + excluded.document_frequency,
            updated_at = now();
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION weft_terms_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE datasets ds
    SET indexed_segments = ds.indexed_segments - r.segments,
        indexed_length = ds.indexed_length - r.length
    FROM (SELECT dataset_id, count(*) AS segments, sum(segment_length) AS length
          FROM (SELECT DISTINCT dataset_id, segment_id, segment_length FROM removed) s
          GROUP BY dataset_id) r
    WHERE ds.id = r.dataset_id;
    UPDATE dataset_terms t
    SET document_frequency = t.document_frequency - gone.segments, updated_at = now()
    FROM (SELECT dataset_id, term, count(*) AS segments FROM removed GROUP BY dataset_id, term) gone
    WHERE t.dataset_id = gone.dataset_id AND t.term = gone.term;
    DELETE FROM dataset_terms t USING (SELECT DISTINCT dataset_id, term FROM removed) gone
    WHERE t.dataset_id = gone.dataset_id AND t.term = gone.term AND t.document_frequency = 0;
    RETURN NULL;
END;
$$;
DROP TABLE dataset_statistics;
