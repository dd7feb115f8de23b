-- organization -> teams -> workspaces; membership is per team and reaches the team's workspaces.
CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        varchar(255) NOT NULL,
    description text,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX organizations_created_by_idx ON organizations (created_by);
SELECT weft_manage_updated_at('organizations');

CREATE TABLE teams (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid         NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            varchar(255) NOT NULL,
    description     text,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    updated_at      timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX teams_organization_id_idx ON teams (organization_id);
SELECT weft_manage_updated_at('teams');

CREATE TABLE workspaces (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id     uuid         NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name        varchar(255) NOT NULL,
    description text,
    icon        varchar(255),
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz  NOT NULL DEFAULT now(),
    updated_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX workspaces_team_id_idx ON workspaces (team_id);
CREATE INDEX workspaces_created_by_idx ON workspaces (created_by);
SELECT weft_manage_updated_at('workspaces');

CREATE TABLE team_members (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id    uuid        NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       varchar(20) NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'EDITOR', 'MEMBER')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, user_id)
);
CREATE INDEX team_members_user_id_idx ON team_members (user_id);
SELECT weft_manage_updated_at('team_members');

CREATE TABLE team_invitations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id     uuid         NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    email       varchar(255) NOT NULL,
    role        varchar(20)  NOT NULL CHECK (role IN ('OWNER', 'ADMIN', 'EDITOR', 'MEMBER')),
    token_hash  varchar(128) NOT NULL UNIQUE,
    expires_at  timestamptz  NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX team_invitations_team_id_idx ON team_invitations (team_id);
CREATE INDEX team_invitations_accepted_by_idx ON team_invitations (accepted_by);
CREATE INDEX team_invitations_invited_by_idx ON team_invitations (invited_by);
CREATE INDEX team_invitations_email_idx ON team_invitations (lower(email));
