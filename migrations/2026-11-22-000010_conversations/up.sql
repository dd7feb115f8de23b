-- Conversations of end users with applications, and their messages (seed 000, section 5).
CREATE TABLE conversations (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    application_id uuid         NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    end_user_id    uuid REFERENCES end_users (id) ON DELETE SET NULL,
    title          varchar(500) NOT NULL DEFAULT '',
    status         varchar(20)  NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'ARCHIVED')),
    summary        text,
    message_count  integer      NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    metadata       jsonb        NOT NULL DEFAULT '{}'::jsonb,
    deleted_at     timestamptz,
    created_at     timestamptz  NOT NULL DEFAULT now(),
    updated_at     timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX conversations_workspace_updated_idx ON conversations (workspace_id, updated_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX conversations_workspace_id_idx ON conversations (workspace_id);
CREATE INDEX conversations_application_updated_idx ON conversations (application_id, updated_at DESC);
CREATE INDEX conversations_end_user_updated_idx ON conversations (end_user_id, updated_at DESC);
SELECT weft_manage_updated_at('conversations');

CREATE TABLE messages (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    conversation_id   uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    application_id    uuid        NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    execution_id      uuid REFERENCES execution_records (id) ON DELETE SET NULL,
    sequence_number   integer     NOT NULL CHECK (sequence_number > 0),
    role              varchar(20) NOT NULL CHECK (role IN ('USER', 'ASSISTANT', 'SYSTEM')),
    content           text        NOT NULL DEFAULT '',
    query             text,
    answer            text,
    inputs            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    outputs           jsonb,
    model_provider    varchar(100),
    model_name        varchar(100),
    prompt_tokens     integer     NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens integer     NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    total_tokens      integer     NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    latency           double precision CHECK (latency >= 0),
    status            varchar(20) NOT NULL DEFAULT 'COMPLETED'
                      CHECK (status IN ('PENDING', 'STREAMING', 'COMPLETED', 'STOPPED', 'FAILED')),
    error             text,
    metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, sequence_number)
);
CREATE INDEX messages_workspace_created_idx ON messages (workspace_id, created_at DESC);
CREATE INDEX messages_application_id_idx ON messages (application_id);
CREATE INDEX messages_execution_id_idx ON messages (execution_id);
SELECT weft_manage_updated_at('messages');
