ALTER TABLE execution_records DROP COLUMN stream_seq;
ALTER TABLE messages DROP COLUMN stream_seq;
ALTER TABLE refresh_tokens DROP COLUMN successor_sealed;
ALTER TABLE team_invitations DROP COLUMN revoked_at;
