DROP TABLE team_invitations;
DROP TABLE team_members;
DROP TABLE workspaces;
DROP TABLE teams;
DROP TABLE organizations;
