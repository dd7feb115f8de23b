-- Published applications and the API keys end-user frontends call them with.
CREATE TABLE applications (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id               uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name                       varchar(255) NOT NULL,
    description                text,
    icon                       varchar(255),
    mode                       varchar(20)  NOT NULL CHECK (mode IN ('CHAT', 'WORKFLOW')),
    workflow_id                uuid REFERENCES workflows (id) ON DELETE SET NULL,
    status                     varchar(20)  NOT NULL DEFAULT 'DRAFT' CHECK (status IN ('DRAFT', 'PUBLISHED')),
    published_at               timestamptz,
    opening_statement          text,
    suggested_questions        jsonb        NOT NULL DEFAULT '[]'::jsonb
                               CHECK (jsonb_typeof(suggested_questions) = 'array'),
    annotation_reply_enabled   boolean      NOT NULL DEFAULT false,
    annotation_reply_threshold real         NOT NULL DEFAULT 0.9
                               CHECK (annotation_reply_threshold >= 0 AND annotation_reply_threshold <= 1),
    created_by                 uuid REFERENCES users (id) ON DELETE SET NULL,
    deleted_at                 timestamptz,
    created_at                 timestamptz  NOT NULL DEFAULT now(),
    updated_at                 timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT applications_published_at CHECK (status <> 'PUBLISHED' OR published_at IS NOT NULL)
);
CREATE INDEX applications_workspace_created_idx ON applications (workspace_id, created_at DESC);
CREATE INDEX applications_workflow_id_idx ON applications (workflow_id);
CREATE INDEX applications_created_by_idx ON applications (created_by);
SELECT weft_manage_updated_at('applications');

CREATE TABLE api_keys (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    application_id uuid         NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    name           varchar(255) NOT NULL,
    prefix         varchar(16)  NOT NULL,
    key_hash       varchar(128) NOT NULL UNIQUE,
    last_used_at   timestamptz,
    revoked_at     timestamptz,
    created_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at     timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_workspace_id_idx ON api_keys (workspace_id);
CREATE INDEX api_keys_application_id_idx ON api_keys (application_id);
CREATE INDEX api_keys_created_by_idx ON api_keys (created_by);
