-- Knowledge indexing: the text a document is made from and how it is split, the provider
-- that embeds a dataset's segments, indexing jobs on the same durable queue as runs, and
-- the segments a chat reply used.

-- A TEXT document's text (a FILE document's is extracted from its file at each indexing);
-- process_rule: { "maxTokens", "overlapTokens" } for splitting.
ALTER TABLE documents
    ADD COLUMN source_text  text,
    ADD COLUMN process_rule jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(process_rule) = 'object');

-- The provider whose embeddings endpoint embeds a HIGH_QUALITY dataset (embedding_model
-- names the model); embedding_version changes whenever the dataset's embeddings do, so an
-- instance knows when the vectors it holds in memory are stale.
ALTER TABLE datasets
    ADD COLUMN embedding_provider_id uuid REFERENCES llm_providers (id) ON DELETE SET NULL,
    ADD COLUMN embedding_version     bigint NOT NULL DEFAULT 0;
CREATE INDEX datasets_embedding_provider_id_idx ON datasets (embedding_provider_id);

-- The queue carries two kinds of work: RUN (an execution) and INDEX (a document).
ALTER TABLE execution_jobs
    ALTER COLUMN execution_id DROP NOT NULL,
    ADD COLUMN kind        varchar(20) NOT NULL DEFAULT 'RUN' CHECK (kind IN ('RUN', 'INDEX')),
    ADD COLUMN document_id uuid REFERENCES documents (id) ON DELETE CASCADE,
    ADD CONSTRAINT execution_jobs_subject CHECK (
        (kind = 'RUN' AND execution_id IS NOT NULL AND document_id IS NULL)
        OR (kind = 'INDEX' AND document_id IS NOT NULL AND execution_id IS NULL));
-- One indexing of a document waits or runs at a time.
CREATE UNIQUE INDEX execution_jobs_document_id_idx ON execution_jobs (document_id);

-- The segments a reply was given (Dify's retriever resources): a copy of what was used, so
-- the record stays true when the segment is later edited or re-indexed away.
CREATE TABLE message_retriever_resources (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    message_id    uuid         NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    position      integer      NOT NULL CHECK (position >= 1),
    dataset_id    uuid         NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    document_id   uuid         NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    segment_id    uuid REFERENCES document_segments (id) ON DELETE SET NULL,
    node_key      varchar(100) NOT NULL,
    score         double precision NOT NULL,
    content       text         NOT NULL,
    document_name varchar(255) NOT NULL,
    created_at    timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (message_id, position)
);
CREATE INDEX message_retriever_resources_workspace_id_idx ON message_retriever_resources (workspace_id);
CREATE INDEX message_retriever_resources_dataset_id_idx ON message_retriever_resources (dataset_id);
CREATE INDEX message_retriever_resources_document_id_idx ON message_retriever_resources (document_id);
CREATE INDEX message_retriever_resources_segment_id_idx ON message_retriever_resources (segment_id);
