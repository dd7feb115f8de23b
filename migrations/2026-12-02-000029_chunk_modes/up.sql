-- How a document is cut into what search finds and what the model is given.
--   GENERAL: segments, each searched and given as it is.
--   PARENT_CHILD: the document is cut into parent segments (sections of up to a few
--     thousand tokens), each parent into small child segments; the children are searched
--     (precise matches), their parent is what the model is given (enough context).
--   QA: question-and-answer pairs (rows of a CSV file or a spreadsheet); the question is
--     the segment's content (searched), the answer is kept beside it and given with it.

ALTER TABLE documents
    ADD COLUMN chunk_mode varchar(20) NOT NULL DEFAULT 'GENERAL'
        CHECK (chunk_mode IN ('GENERAL', 'PARENT_CHILD', 'QA'));

CREATE TABLE parent_segments (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    dataset_id   uuid        NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    document_id  uuid        NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    position     integer     NOT NULL CHECK (position >= 0),
    content      text        NOT NULL,
    tokens       integer     NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, position)
);
CREATE INDEX parent_segments_workspace_id_idx ON parent_segments (workspace_id);
CREATE INDEX parent_segments_dataset_id_idx ON parent_segments (dataset_id);
SELECT weft_manage_updated_at('parent_segments');

ALTER TABLE document_segments
    ADD COLUMN parent_segment_id uuid REFERENCES parent_segments (id) ON DELETE CASCADE,
    ADD COLUMN answer text;
CREATE INDEX document_segments_parent_segment_id_idx ON document_segments (parent_segment_id);
