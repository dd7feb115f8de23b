-- End users of published applications (seed 000, section 3.1).
CREATE TABLE end_users (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id     uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    session_id       varchar(255),
    external_user_id varchar(255),
    name             varchar(255),
    email            varchar(255),
    phone            varchar(50),
    avatar_url       varchar(500),
    metadata         jsonb        NOT NULL DEFAULT '{}'::jsonb,
    is_anonymous     boolean      NOT NULL DEFAULT false,
    last_active_at   timestamptz,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT end_users_identified CHECK (external_user_id IS NOT NULL OR session_id IS NOT NULL),
    UNIQUE (workspace_id, external_user_id)
);
CREATE INDEX end_users_workspace_session_idx ON end_users (workspace_id, session_id);
CREATE INDEX end_users_workspace_created_idx ON end_users (workspace_id, created_at DESC);
SELECT weft_manage_updated_at('end_users');
