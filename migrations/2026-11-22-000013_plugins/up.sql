-- The plugin catalogue and each workspace's installations (seed 000, section 8).
CREATE TABLE plugins (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              varchar(255) NOT NULL UNIQUE,
    display_name      varchar(255) NOT NULL,
    description       text,
    version           varchar(50)  NOT NULL,
    author            varchar(255),
    icon              varchar(500),
    category          varchar(50),
    plugin_type       varchar(50)  NOT NULL CHECK (plugin_type IN ('TOOL', 'MODEL', 'EXTENSION')),
    manifest          jsonb        NOT NULL DEFAULT '{}'::jsonb,
    source_url        varchar(500),
    documentation_url varchar(500),
    install_count     integer      NOT NULL DEFAULT 0 CHECK (install_count >= 0),
    rating            double precision CHECK (rating >= 0 AND rating <= 5),
    is_active         boolean      NOT NULL DEFAULT true,
    is_verified       boolean      NOT NULL DEFAULT false,
    created_at        timestamptz  NOT NULL DEFAULT now(),
    updated_at        timestamptz  NOT NULL DEFAULT now()
);
SELECT weft_manage_updated_at('plugins');

CREATE TABLE installed_plugins (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid        NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    plugin_id    uuid        NOT NULL REFERENCES plugins (id) ON DELETE CASCADE,
    config       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    is_enabled   boolean     NOT NULL DEFAULT true,
    installed_by uuid REFERENCES users (id) ON DELETE SET NULL,
    installed_at timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, plugin_id)
);
CREATE INDEX installed_plugins_plugin_id_idx ON installed_plugins (plugin_id);
CREATE INDEX installed_plugins_installed_by_idx ON installed_plugins (installed_by);
SELECT weft_manage_updated_at('installed_plugins');
