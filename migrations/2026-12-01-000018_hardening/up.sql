-- An invitation can be withdrawn before it is accepted (revokeInvitation, or its inviter
-- leaving the team): a revoked invitation cannot be accepted.
ALTER TABLE team_invitations ADD COLUMN revoked_at timestamptz;
