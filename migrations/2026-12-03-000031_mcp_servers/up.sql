-- MCP servers a workspace's agents and TOOL nodes call (Model Context Protocol, Streamable
-- HTTP). The headers sent to a server (an Authorization, an API key...) are sealed together
-- as one JSON object, bound to the row; only their names are kept in the clear.
CREATE TABLE mcp_servers (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id      uuid          NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name              varchar(255)  NOT NULL,
    url               varchar(2000) NOT NULL,
    headers_encrypted bytea,
    header_names      jsonb         NOT NULL DEFAULT '[]'::jsonb,
    enabled           boolean       NOT NULL DEFAULT true,
    created_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz   NOT NULL DEFAULT now(),
    updated_at        timestamptz   NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, name)
);
CREATE INDEX mcp_servers_created_by_idx ON mcp_servers (created_by);
SELECT weft_manage_updated_at('mcp_servers');
