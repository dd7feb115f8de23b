//! Accounts and tenants made through the API, for tests that need someone signed in.

use serde_json::{Value, json};
use uuid::Uuid;

use super::TestServer;

pub const PASSWORD: &str = "correct horse battery";

/// A registered user and their session.
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl Account {
    pub fn token(&self) -> Option<&str> {
        Some(&self.access_token)
    }
}

/// Panics with the answer when it has errors.
pub fn data(answer: Value) -> Value {
    assert!(
        answer.get("errors").is_none(),
        "unexpected errors: {answer:#}"
    );
    answer["data"].clone()
}

/// The code of the first error of an answer.
pub fn error_code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {answer:#}"))
}

pub const AUTH_FIELDS: &str = "accessToken refreshToken user { id email }";

pub async fn register(server: &TestServer, email: &str) -> Account {
    let answer = server
        .graphql(
            &format!("mutation($i: RegisterInput!) {{ register(input: $i) {{ {AUTH_FIELDS} }} }}"),
            json!({ "i": { "email": email, "password": PASSWORD, "name": "Test User" } }),
        )
        .await;
    account(&data(answer)["register"])
}

pub fn account(payload: &Value) -> Account {
    Account {
        id: payload["user"]["id"].as_str().unwrap().parse().unwrap(),
        email: payload["user"]["email"].as_str().unwrap().to_string(),
        access_token: payload["accessToken"].as_str().unwrap().to_string(),
        refresh_token: payload["refreshToken"].as_str().unwrap().to_string(),
    }
}

/// An organization made by `owner`, with its first team and workspace.
pub struct Tenant {
    pub organization_id: Uuid,
    pub team_id: Uuid,
    pub workspace_id: Uuid,
}

pub async fn create_organization(server: &TestServer, owner: &Account, name: &str) -> Tenant {
    let answer = server
        .graphql_as(
            owner.token(),
            "mutation($i: CreateOrganizationInput!) {
               createOrganization(input: $i) { id teams { id workspaces { id } } }
             }",
            json!({ "i": { "name": name } }),
        )
        .await;
    let org = data(answer)["createOrganization"].clone();
    let id = |v: &Value| v.as_str().unwrap().parse::<Uuid>().unwrap();
    Tenant {
        organization_id: id(&org["id"]),
        team_id: id(&org["teams"][0]["id"]),
        workspace_id: id(&org["teams"][0]["workspaces"][0]["id"]),
    }
}

/// Invites `email` to a team as `role` and returns the invitation token.
pub async fn invite(
    server: &TestServer,
    by: &Account,
    team_id: Uuid,
    email: &str,
    role: &str,
) -> Value {
    server
        .graphql_as(
            by.token(),
            "mutation($i: InviteTeamMemberInput!) {
               inviteTeamMember(input: $i) { token invitation { id email role } }
             }",
            json!({ "i": { "teamId": team_id, "email": email, "role": role } }),
        )
        .await
}

/// Registers `email` and makes them a member of `team_id` with `role`.
pub async fn member(
    server: &TestServer,
    owner: &Account,
    team_id: Uuid,
    email: &str,
    role: &str,
) -> Account {
    let user = register(server, email).await;
    let invitation = data(invite(server, owner, team_id, email, role).await);
    let token = invitation["inviteTeamMember"]["token"].as_str().unwrap();
    data(
        server
            .graphql_as(
                user.token(),
                "mutation($t: String!) { acceptInvitation(token: $t) { id role } }",
                json!({ "t": token }),
            )
            .await,
    );
    user
}
