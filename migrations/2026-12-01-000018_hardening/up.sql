-- An invitation can be withdrawn before it is accepted (revokeInvitation, or its inviter
-- leaving the team): a revoked invitation cannot be accepted.
ALTER TABLE team_invitations ADD COLUMN revoked_at timestamptz;

-- The token a refresh token was exchanged for, sealed, while that one is unused: a second
-- tab presenting the same refresh token within seconds gets the same new one instead of
-- revoking the session.
ALTER TABLE refresh_tokens ADD COLUMN successor_sealed bytea;

-- The seq of the event that ended a reply's or a run's stream, for the END (or
-- EXECUTION_FINISHED) that stands for the stream once Redis no longer retains it.
ALTER TABLE messages ADD COLUMN stream_seq bigint;
ALTER TABLE execution_records ADD COLUMN stream_seq bigint;
