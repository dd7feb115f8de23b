-- Model providers of a workspace, with RAGFlow's token quota.
CREATE TABLE llm_providers (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name              varchar(255) NOT NULL,
    provider_type     varchar(50)  NOT NULL CHECK (provider_type IN ('OPENAI_COMPATIBLE', 'ECHO')),
    base_url          varchar(500),
    api_key_encrypted bytea,
    models            jsonb        NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(models) = 'array'),
    default_model     varchar(100),
    embedding_model   varchar(100),
    max_tokens        bigint CHECK (max_tokens >= 0),
    used_tokens       bigint       NOT NULL DEFAULT 0 CHECK (used_tokens >= 0),
    is_enabled        boolean      NOT NULL DEFAULT true,
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz  NOT NULL DEFAULT now(),
    updated_at        timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);
CREATE INDEX llm_providers_created_by_idx ON llm_providers (created_by);
SELECT weft_manage_updated_at('llm_providers');
