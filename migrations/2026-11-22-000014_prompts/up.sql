-- Prompt templates with numbered versions, one current (like workflow versions).
CREATE TABLE prompt_templates (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         varchar(255) NOT NULL,
    description  text,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    deleted_at   timestamptz,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    updated_at   timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX prompt_templates_workspace_created_idx ON prompt_templates (workspace_id, created_at DESC);
CREATE INDEX prompt_templates_created_by_idx ON prompt_templates (created_by);
SELECT weft_manage_updated_at('prompt_templates');

CREATE TABLE prompt_template_versions (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id       uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    prompt_template_id uuid        NOT NULL REFERENCES prompt_templates (id) ON DELETE CASCADE,
    version_number     integer     NOT NULL CHECK (version_number > 0),
    content            text        NOT NULL,
    variables          jsonb       NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(variables) = 'array'),
    is_current         boolean     NOT NULL DEFAULT false,
    created_by         uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (prompt_template_id, version_number)
);
CREATE UNIQUE INDEX prompt_template_versions_one_current_idx
    ON prompt_template_versions (prompt_template_id) WHERE is_current;
CREATE INDEX prompt_template_versions_workspace_id_idx ON prompt_template_versions (workspace_id);
CREATE INDEX prompt_template_versions_created_by_idx ON prompt_template_versions (created_by);
