-- Workflows with immutable numbered versions, their graphs, and templates (seed 004).
CREATE TABLE workflow_templates (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    official_key       varchar(100) UNIQUE,
    name               varchar(255) NOT NULL,
    description        text,
    category           varchar(50),
    graph              jsonb        NOT NULL,
    is_official        boolean      NOT NULL DEFAULT false,
    is_public          boolean      NOT NULL DEFAULT false,
    created_by         uuid REFERENCES users (id) ON DELETE SET NULL,
    source_workflow_id uuid,
    usage_count        integer      NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    created_at         timestamptz  NOT NULL DEFAULT now(),
    updated_at         timestamptz  NOT NULL DEFAULT now(),
    -- Official templates ship with the server and belong to nobody.
    CONSTRAINT workflow_templates_official_key CHECK (NOT is_official OR official_key IS NOT NULL)
);
CREATE INDEX workflow_templates_created_by_idx ON workflow_templates (created_by);
CREATE INDEX workflow_templates_source_workflow_id_idx ON workflow_templates (source_workflow_id);
CREATE INDEX workflow_templates_listing_idx ON workflow_templates (is_official DESC, usage_count DESC)
    WHERE is_official OR is_public;
SELECT weft_manage_updated_at('workflow_templates');

CREATE TABLE workflows (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id       uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name               varchar(255) NOT NULL,
    description        text,
    icon               varchar(255),
    source_type        varchar(20)  NOT NULL DEFAULT 'SCRATCH'
                       CHECK (source_type IN ('SCRATCH', 'TEMPLATE', 'WORKFLOW')),
    source_template_id uuid REFERENCES workflow_templates (id) ON DELETE SET NULL,
    source_workflow_id uuid REFERENCES workflows (id) ON DELETE SET NULL,
    created_by         uuid REFERENCES users (id) ON DELETE SET NULL,
    deleted_at         timestamptz,
    created_at         timestamptz  NOT NULL DEFAULT now(),
    updated_at         timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT workflows_source_template CHECK (source_type <> 'TEMPLATE' OR source_workflow_id IS NULL),
    CONSTRAINT workflows_source_workflow CHECK (source_type <> 'WORKFLOW' OR source_template_id IS NULL)
);
CREATE INDEX workflows_workspace_created_idx ON workflows (workspace_id, created_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX workflows_workspace_id_idx ON workflows (workspace_id);
CREATE INDEX workflows_source_template_id_idx ON workflows (source_template_id);
CREATE INDEX workflows_source_workflow_id_idx ON workflows (source_workflow_id);
CREATE INDEX workflows_created_by_idx ON workflows (created_by);
SELECT weft_manage_updated_at('workflows');

ALTER TABLE workflow_templates
    ADD CONSTRAINT workflow_templates_source_workflow_id_fkey
    FOREIGN KEY (source_workflow_id) REFERENCES workflows (id) ON DELETE SET NULL;

CREATE TABLE workflow_versions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id       uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    sequence_number   integer     NOT NULL CHECK (sequence_number > 0),
    parent_version_id uuid REFERENCES workflow_versions (id) ON DELETE SET NULL,
    is_current        boolean     NOT NULL DEFAULT false,
    graph             jsonb       NOT NULL,
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow_id, sequence_number)
);
-- Exactly one current version per workflow.
CREATE UNIQUE INDEX workflow_versions_one_current_idx ON workflow_versions (workflow_id) WHERE is_current;
CREATE INDEX workflow_versions_workspace_id_idx ON workflow_versions (workspace_id);
CREATE INDEX workflow_versions_parent_version_id_idx ON workflow_versions (parent_version_id);
CREATE INDEX workflow_versions_created_by_idx ON workflow_versions (created_by);

CREATE TABLE nodes (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version_id   uuid         NOT NULL REFERENCES workflow_versions (id) ON DELETE CASCADE,
    node_key     varchar(100) NOT NULL,
    node_type    varchar(30)  NOT NULL CHECK (node_type IN
                 ('START', 'LLM', 'KNOWLEDGE_RETRIEVAL', 'TEMPLATE', 'CONDITION', 'HTTP_REQUEST', 'ANSWER', 'END')),
    title        varchar(255),
    config       jsonb        NOT NULL DEFAULT '{}'::jsonb,
    position_x   double precision,
    position_y   double precision,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (version_id, node_key)
);
CREATE INDEX nodes_workspace_id_idx ON nodes (workspace_id);

CREATE TABLE connections (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id    uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version_id      uuid         NOT NULL REFERENCES workflow_versions (id) ON DELETE CASCADE,
    source_node_key varchar(100) NOT NULL,
    target_node_key varchar(100) NOT NULL,
    source_handle   varchar(50),
    created_at      timestamptz  NOT NULL DEFAULT now(),
    FOREIGN KEY (version_id, source_node_key) REFERENCES nodes (version_id, node_key) ON DELETE CASCADE,
    FOREIGN KEY (version_id, target_node_key) REFERENCES nodes (version_id, node_key) ON DELETE CASCADE,
    CONSTRAINT connections_no_self_loop CHECK (source_node_key <> target_node_key)
);
CREATE INDEX connections_version_source_idx ON connections (version_id, source_node_key);
CREATE INDEX connections_version_target_idx ON connections (version_id, target_node_key);
CREATE INDEX connections_workspace_id_idx ON connections (workspace_id);
