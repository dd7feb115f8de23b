//! Organizations, teams, workspaces, members and invitations. Plain functions taking a
//! connection and the caller; every lookup by id goes through `auth::permissions`.

pub mod invitations;
pub mod members;
pub mod organizations;

pub use invitations::{accept_invitation, invite_team_member, revoke_invitation};
pub use members::{remove_team_member, update_team_member_role};
pub use organizations::{create_organization, create_team, create_workspace};
