-- Runs of a workflow version and the result of each node in them.
CREATE TABLE execution_records (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id                uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    workflow_id                 uuid        NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version_id                  uuid        NOT NULL REFERENCES workflow_versions (id) ON DELETE CASCADE,
    status                      varchar(20) NOT NULL DEFAULT 'QUEUED'
                                CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'STOPPED')),
    inputs                      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    outputs                     jsonb,
    error                       text,
    elapsed_ms                  bigint CHECK (elapsed_ms >= 0),
    total_tokens                integer     NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    total_steps                 integer     NOT NULL DEFAULT 0 CHECK (total_steps >= 0),
    triggered_by_user_id        uuid REFERENCES users (id) ON DELETE SET NULL,
    triggered_by_application_id uuid REFERENCES applications (id) ON DELETE SET NULL,
    triggered_by_end_user_id    uuid REFERENCES end_users (id) ON DELETE SET NULL,
    started_at                  timestamptz,
    finished_at                 timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT execution_records_finished CHECK
        (status NOT IN ('SUCCEEDED', 'FAILED', 'STOPPED') OR finished_at IS NOT NULL)
);
CREATE INDEX execution_records_workspace_created_idx ON execution_records (workspace_id, created_at DESC);
CREATE INDEX execution_records_workspace_status_idx ON execution_records (workspace_id, status);
CREATE INDEX execution_records_workflow_created_idx ON execution_records (workflow_id, created_at DESC);
CREATE INDEX execution_records_version_id_idx ON execution_records (version_id);
CREATE INDEX execution_records_triggered_by_user_id_idx ON execution_records (triggered_by_user_id);
CREATE INDEX execution_records_triggered_by_application_id_idx ON execution_records (triggered_by_application_id);
CREATE INDEX execution_records_triggered_by_end_user_id_idx ON execution_records (triggered_by_end_user_id);
SELECT weft_manage_updated_at('execution_records');

CREATE TABLE node_execution_results (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id   uuid         NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    execution_id   uuid         NOT NULL REFERENCES execution_records (id) ON DELETE CASCADE,
    node_key       varchar(100) NOT NULL,
    node_type      varchar(30)  NOT NULL CHECK (node_type IN
                   ('START', 'LLM', 'KNOWLEDGE_RETRIEVAL', 'TEMPLATE', 'CONDITION', 'HTTP_REQUEST', 'ANSWER', 'END')),
    title          varchar(255),
    status         varchar(20)  NOT NULL
                   CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'STOPPED')),
    inputs         jsonb,
    outputs        jsonb,
    error          text,
    elapsed_ms     bigint CHECK (elapsed_ms >= 0),
    total_tokens   integer      NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    sequence_index integer      NOT NULL CHECK (sequence_index >= 0),
    started_at     timestamptz,
    finished_at    timestamptz,
    created_at     timestamptz  NOT NULL DEFAULT now(),
    updated_at     timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (execution_id, node_key)
);
CREATE INDEX node_execution_results_execution_sequence_idx ON node_execution_results (execution_id, sequence_index);
CREATE INDEX node_execution_results_workspace_id_idx ON node_execution_results (workspace_id);
SELECT weft_manage_updated_at('node_execution_results');
