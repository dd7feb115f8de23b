ALTER TABLE team_invitations DROP COLUMN revoked_at;
