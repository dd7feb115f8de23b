-- Document metadata (key -> string, number or date) that searches filter on, and a
-- reranker per dataset.

ALTER TABLE documents
    ADD COLUMN doc_metadata jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(doc_metadata) = 'object');

ALTER TABLE datasets
    ADD COLUMN rerank_provider_id uuid REFERENCES llm_providers (id) ON DELETE SET NULL,
    ADD COLUMN rerank_model varchar(100);
CREATE INDEX datasets_rerank_provider_id_idx ON datasets (rerank_provider_id);

-- A metadata value read as a point in time: an ISO 8601 date (midnight UTC) or an RFC 3339
-- date-time with its offset; NULL for anything else. Values are checked when written, so
-- the cast does not fail; the handler is a safety net.
CREATE FUNCTION weft_metadata_time(v jsonb) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    s text;
BEGIN
    IF v IS NULL OR jsonb_typeof(v) <> 'string' THEN
        RETURN NULL;
    END IF;
    s := v #>> '{}';
    IF s ~ '^\d{4}-\d{2}-\d{2}$' THEN
        RETURN (s || 'T00:00:00Z')::timestamptz;
    ELSIF s ~ '^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$' THEN
        RETURN s::timestamptz;
    END IF;
    RETURN NULL;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

-- Whether a document's metadata `m` meets every condition of the filter `f`, a list of
-- {key, eq: value} | {key, in: [values]} | {key, number: {gt, gte, lt, lte}} |
-- {key, time: {gt, gte, lt, lte}} (bounds of `time` as RFC 3339). A missing key meets no
-- condition.
CREATE FUNCTION weft_metadata_matches(m jsonb, f jsonb) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements(f) c
        WHERE NOT coalesce(CASE
            WHEN c ? 'eq' THEN m -> (c ->> 'key') = c -> 'eq'
            WHEN c ? 'in' THEN EXISTS (
                SELECT 1 FROM jsonb_array_elements(c -> 'in') v WHERE v = m -> (c ->> 'key'))
            WHEN c ? 'number' THEN
                jsonb_typeof(m -> (c ->> 'key')) = 'number'
                AND (NOT (c -> 'number') ? 'gt'
                     OR (m ->> (c ->> 'key'))::numeric > (c -> 'number' ->> 'gt')::numeric)
                AND (NOT (c -> 'number') ? 'gte'
                     OR (m ->> (c ->> 'key'))::numeric >= (c -> 'number' ->> 'gte')::numeric)
                AND (NOT (c -> 'number') ? 'lt'
                     OR (m ->> (c ->> 'key'))::numeric < (c -> 'number' ->> 'lt')::numeric)
                AND (NOT (c -> 'number') ? 'lte'
                     OR (m ->> (c ->> 'key'))::numeric <= (c -> 'number' ->> 'lte')::numeric)
            WHEN c ? 'time' THEN
                weft_metadata_time(m -> (c ->> 'key')) IS NOT NULL
                AND (NOT (c -> 'time') ? 'gt'
                     OR weft_metadata_time(m -> (c ->> 'key')) > (c -> 'time' ->> 'gt')::timestamptz)
                AND (NOT (c -> 'time') ? 'gte'
                     OR weft_metadata_time(m -> (c ->> 'key')) >= (c -> 'time' ->> 'gte')::timestamptz)
                AND (NOT (c -> 'time') ? 'lt'
                     OR weft_metadata_time(m -> (c ->> 'key')) < (c -> 'time' ->> 'lt')::timestamptz)
                AND (NOT (c -> 'time') ? 'lte'
                     OR weft_metadata_time(m -> (c ->> 'key')) <= (c -> 'time' ->> 'lte')::timestamptz)
        END, false))
$$;
