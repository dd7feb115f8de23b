ALTER TABLE refresh_tokens DROP COLUMN successor_sealed;
ALTER TABLE team_invitations DROP COLUMN revoked_at;
