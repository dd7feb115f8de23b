-- One row per data-changing mutation, written in the mutation's transaction.
CREATE TABLE audit_logs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid REFERENCES workspaces (id) ON DELETE SET NULL,
    actor_type        varchar(20)  NOT NULL CHECK (actor_type IN ('USER', 'API_KEY', 'END_USER', 'SYSTEM')),
    actor_user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_api_key_id  uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    actor_end_user_id uuid REFERENCES end_users (id) ON DELETE SET NULL,
    action            varchar(100) NOT NULL,
    resource_type     varchar(50)  NOT NULL,
    resource_id       uuid,
    metadata          jsonb        NOT NULL DEFAULT '{}'::jsonb,
    ip                varchar(64),
    user_agent        varchar(500),
    created_at        timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_workspace_created_idx ON audit_logs (workspace_id, created_at DESC);
CREATE INDEX audit_logs_actor_user_id_idx ON audit_logs (actor_user_id);
CREATE INDEX audit_logs_actor_api_key_id_idx ON audit_logs (actor_api_key_id);
CREATE INDEX audit_logs_actor_end_user_id_idx ON audit_logs (actor_end_user_id);
CREATE INDEX audit_logs_resource_idx ON audit_logs (resource_type, resource_id);
