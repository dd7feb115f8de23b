-- Knowledge bases: datasets, their documents (with RAGFlow's progress fields) and segments.
CREATE TABLE datasets (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id             uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                     varchar(255) NOT NULL,
    description              text,
    icon                     varchar(255),
    embedding_model          varchar(100),
    embedding_model_provider varchar(100),
    retrieval_model_config   jsonb        NOT NULL DEFAULT '{}'::jsonb,
    indexing_technique       varchar(50)  NOT NULL DEFAULT 'KEYWORD'
                             CHECK (indexing_technique IN ('KEYWORD', 'HIGH_QUALITY')),
    document_count           integer      NOT NULL DEFAULT 0 CHECK (document_count >= 0),
    word_count               integer      NOT NULL DEFAULT 0 CHECK (word_count >= 0),
    tokens                   integer      NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    similarity_threshold     real         NOT NULL DEFAULT 0
                             CHECK (similarity_threshold >= 0 AND similarity_threshold <= 1),
    vector_similarity_weight real         NOT NULL DEFAULT 0.3
                             CHECK (vector_similarity_weight >= 0 AND vector_similarity_weight <= 1),
    top_k                    integer      NOT NULL DEFAULT 5 CHECK (top_k BETWEEN 1 AND 100),
    created_by               uuid REFERENCES users (id) ON DELETE SET NULL,
    deleted_at               timestamptz,
    created_at               timestamptz  NOT NULL DEFAULT now(),
    updated_at               timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX datasets_workspace_created_idx ON datasets (workspace_id, created_at DESC);
CREATE INDEX datasets_created_by_idx ON datasets (created_by);
SELECT weft_manage_updated_at('datasets');

CREATE TABLE documents (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    dataset_id       uuid         NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    name             varchar(255) NOT NULL,
    data_source_type varchar(50)  NOT NULL DEFAULT 'TEXT' CHECK (data_source_type IN ('TEXT', 'FILE')),
    data_source_info jsonb        NOT NULL DEFAULT '{}'::jsonb,
    file_id          uuid REFERENCES file_references (id) ON DELETE SET NULL,
    position         integer      NOT NULL DEFAULT 0 CHECK (position >= 0),
    word_count       integer      NOT NULL DEFAULT 0 CHECK (word_count >= 0),
    tokens           integer      NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    indexing_status  varchar(50)  NOT NULL DEFAULT 'WAITING' CHECK (indexing_status IN
                     ('WAITING', 'PARSING', 'SPLITTING', 'INDEXING', 'COMPLETED', 'ERROR')),
    error            text,
    progress         real         NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    progress_msg     text,
    process_begin_at timestamptz,
    process_duration double precision CHECK (process_duration >= 0),
    enabled          boolean      NOT NULL DEFAULT true,
    disabled_at      timestamptz,
    disabled_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    archived         boolean      NOT NULL DEFAULT false,
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    deleted_at       timestamptz,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT documents_file_source CHECK (data_source_type <> 'FILE' OR file_id IS NOT NULL)
);
CREATE INDEX documents_workspace_id_idx ON documents (workspace_id);
CREATE INDEX documents_dataset_position_idx ON documents (dataset_id, position);
CREATE INDEX documents_file_id_idx ON documents (file_id);
CREATE INDEX documents_disabled_by_idx ON documents (disabled_by);
CREATE INDEX documents_created_by_idx ON documents (created_by);
SELECT weft_manage_updated_at('documents');

CREATE TABLE document_segments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    document_id     uuid         NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    dataset_id      uuid         NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    position        integer      NOT NULL CHECK (position >= 0),
    content         text         NOT NULL,
    word_count      integer      NOT NULL DEFAULT 0 CHECK (word_count >= 0),
    tokens          integer      NOT NULL DEFAULT 0 CHECK (tokens >= 0),
    keywords        jsonb        NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(keywords) = 'array'),
    index_node_id   varchar(255),
    index_node_hash varchar(255),
    hit_count       integer      NOT NULL DEFAULT 0 CHECK (hit_count >= 0),
    enabled         boolean      NOT NULL DEFAULT true,
    disabled_at     timestamptz,
    disabled_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    archived        boolean      NOT NULL DEFAULT false,
    status          varchar(50)  NOT NULL DEFAULT 'WAITING'
                    CHECK (status IN ('WAITING', 'INDEXING', 'COMPLETED', 'ERROR')),
    error           text,
    content_tsv     tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
    embedding       real[],
    created_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (document_id, position)
);
CREATE INDEX document_segments_workspace_id_idx ON document_segments (workspace_id);
CREATE INDEX document_segments_dataset_id_idx ON document_segments (dataset_id);
CREATE INDEX document_segments_disabled_by_idx ON document_segments (disabled_by);
CREATE INDEX document_segments_created_by_idx ON document_segments (created_by);
CREATE INDEX document_segments_content_tsv_idx ON document_segments USING gin (content_tsv);
SELECT weft_manage_updated_at('document_segments');

CREATE TABLE dataset_application_joins (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    dataset_id     uuid        NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    application_id uuid        NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dataset_id, application_id)
);
CREATE INDEX dataset_application_joins_workspace_id_idx ON dataset_application_joins (workspace_id);
CREATE INDEX dataset_application_joins_application_id_idx ON dataset_application_joins (application_id);
