-- Keyword ranking by Okapi BM25: an inverted index of every retrievable segment (enabled,
-- not archived, of an enabled, not archived, live document) kept in the transaction that
-- changes it. segment_terms holds one row per (segment, term): the term's frequency in the
-- segment and the segment's length, both from the segment's tsvector positions;
-- dataset_terms the number of indexed segments holding each term (its document
-- frequency); datasets the number of indexed segments and their total length. A search
-- reads the postings of its terms only; the statistics are the same on every instance.

ALTER TABLE datasets
    ADD COLUMN indexed_segments integer NOT NULL DEFAULT 0 CHECK (indexed_segments >= 0),
    ADD COLUMN indexed_length   bigint  NOT NULL DEFAULT 0 CHECK (indexed_length >= 0);

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

-- dataset_id and segment_id are the segment's; the rows go with it through the triggers
-- below (one statement for all the segments a statement removes), not through a foreign
-- key (whose cascade runs once per segment).
CREATE TABLE segment_terms (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    dataset_id     uuid        NOT NULL,
    segment_id     uuid        NOT NULL,
    term           text        NOT NULL,
    frequency      smallint    NOT NULL CHECK (frequency > 0),
    segment_length integer     NOT NULL CHECK (segment_length > 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- A term's postings in a dataset, read from the index alone.
CREATE INDEX segment_terms_workspace_dataset_term_idx ON segment_terms (workspace_id, dataset_id, term)
    INCLUDE (segment_id, frequency, segment_length);
CREATE INDEX segment_terms_segment_id_idx ON segment_terms (segment_id, term) INCLUDE (frequency, segment_length);

-- Indexes the given segments, those retrievable.
CREATE FUNCTION weft_index_segments(_segments uuid[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO segment_terms (workspace_id, dataset_id, segment_id, term, frequency, segment_length)
    SELECT s.workspace_id, s.dataset_id, s.id, t.lexeme, t.frequency,
           sum(t.frequency) OVER (PARTITION BY s.id)
    FROM document_segments s
    JOIN documents d ON d.id = s.document_id
    CROSS JOIN LATERAL (
        SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1)::smallint AS frequency
        FROM unnest(s.content_tsv) u
    ) t
    WHERE s.id = ANY(_segments)
      AND s.enabled AND NOT s.archived AND d.enabled AND NOT d.archived AND d.deleted_at IS NULL
$$;

-- Indexes the given segments afresh: their postings removed, the retrievable ones added.
CREATE FUNCTION weft_reindex_segments(_segments uuid[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM segment_terms WHERE segment_id = ANY(_segments);
    SELECT weft_index_segments(_segments);
$$;

CREATE FUNCTION weft_segments_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM weft_index_segments(ARRAY(SELECT id FROM added));
    RETURN NULL;
END;
$$;
CREATE TRIGGER index_added_segments AFTER INSERT ON document_segments
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION weft_segments_added();

CREATE FUNCTION weft_segments_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM segment_terms p USING removed r WHERE p.segment_id = r.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER unindex_removed_segments AFTER DELETE ON document_segments
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION weft_segments_removed();

-- A segment whose text or retrievability changed is indexed again (a hit count is not).
CREATE FUNCTION weft_segment_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM weft_reindex_segments(ARRAY[NEW.id]);
    RETURN NULL;
END;
$$;
CREATE TRIGGER index_changed_segment AFTER UPDATE ON document_segments
    FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content
                       OR OLD.enabled IS DISTINCT FROM NEW.enabled
                       OR OLD.archived IS DISTINCT FROM NEW.archived)
    EXECUTE FUNCTION weft_segment_changed();

-- A document enabled, disabled, archived, restored or deleted: its segments follow.
CREATE FUNCTION weft_document_retrievability_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM weft_reindex_segments(ARRAY(SELECT id FROM document_segments WHERE document_id = NEW.id));
    RETURN NULL;
END;
$$;
CREATE TRIGGER index_document_segments AFTER UPDATE ON documents
    FOR EACH ROW WHEN ((OLD.enabled AND NOT OLD.archived AND OLD.deleted_at IS NULL)
                       IS DISTINCT FROM (NEW.enabled AND NOT NEW.archived AND NEW.deleted_at IS NULL))
    EXECUTE FUNCTION weft_document_retrievability_changed();

-- The statistics follow the postings. The dataset's row is updated first, so writers of
-- one dataset take its terms' rows one transaction at a time (no deadlock between them).
CREATE FUNCTION weft_terms_added() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER count_added_terms AFTER INSERT ON segment_terms
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION weft_terms_added();

CREATE FUNCTION weft_terms_removed() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER count_removed_terms AFTER DELETE ON segment_terms
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION weft_terms_removed();

-- What is there already.
SELECT weft_index_segments(ARRAY(SELECT id FROM document_segments));
