-- Uploaded files: the bytes live in the object store under storage_key.
CREATE TABLE file_references (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    storage_key varchar(500) NOT NULL UNIQUE,
    name        varchar(255) NOT NULL,
    mime_type   varchar(255) NOT NULL,
    size        bigint       NOT NULL CHECK (size >= 0),
    sha256      varchar(64)  NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX file_references_workspace_created_idx ON file_references (workspace_id, created_at DESC);
CREATE INDEX file_references_created_by_idx ON file_references (created_by);
