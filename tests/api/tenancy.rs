//! Organizations, teams, workspaces, members and invitations: roles, isolation, audit.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::TestServer;
use crate::harness::accounts::{
    Account, create_organization, data, error_code, invite, member, register,
};

const ME_TREE: &str = "{ me { organizations { id name myRole teams { id } }
                         teams { id name myRole members { role user { email } } workspaces { id } }
                         workspaces { id name myRole team { id organization { id } } } } }";

async fn create_workspace(server: &TestServer, by: &Account, team_id: Uuid, name: &str) -> Value {
    server
        .graphql_as(
            by.token(),
            "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { id name } }",
            json!({ "i": { "teamId": team_id, "name": name } }),
        )
        .await
}

async fn update_role(
    server: &TestServer,
    by: &Account,
    team_id: Uuid,
    user_id: Uuid,
    role: &str,
) -> Value {
    server
        .graphql_as(
            by.token(),
            "mutation($i: UpdateTeamMemberRoleInput!) { updateTeamMemberRole(input: $i) { role } }",
            json!({ "i": { "teamId": team_id, "userId": user_id, "role": role } }),
        )
        .await
}

async fn remove(server: &TestServer, by: &Account, team_id: Uuid, user_id: Uuid) -> Value {
    server
        .graphql_as(
            by.token(),
            "mutation($i: RemoveTeamMemberInput!) { removeTeamMember(input: $i) }",
            json!({ "i": { "teamId": team_id, "userId": user_id } }),
        )
        .await
}

#[tokio::test]
async fn creating_an_organization_makes_the_caller_owner_of_its_first_team_and_workspace() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    let tenant = create_organization(&server, &ada, "Analytical Engines").await;
    let me = data(server.graphql_as(ada.token(), ME_TREE, json!({})).await)["me"].clone();
    assert_eq!(me["organizations"][0]["name"], "Analytical Engines");
    assert_eq!(me["organizations"][0]["myRole"], "OWNER");
    assert_eq!(me["teams"][0]["myRole"], "OWNER");
    assert_eq!(
        me["teams"][0]["members"][0]["user"]["email"],
        "ada@example.com"
    );
    assert_eq!(me["workspaces"][0]["id"], tenant.workspace_id.to_string());
    assert_eq!(me["workspaces"][0]["myRole"], "OWNER");
    assert_eq!(
        me["workspaces"][0]["team"]["organization"]["id"],
        tenant.organization_id.to_string()
    );

    let workspace = data(
        server
            .graphql_as(
                ada.token(),
                "query($id: UUID!) { workspace(id: $id) { name } }",
                json!({ "id": tenant.workspace_id }),
            )
            .await,
    );
    assert_eq!(workspace["workspace"]["name"], "Default workspace");
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM audit_logs WHERE action = 'organization.create'")
            .await,
        1
    );
}

#[tokio::test]
async fn each_role_is_allowed_and_refused_as_the_permission_table_says() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let admin = member(
        &server,
        &owner,
        tenant.team_id,
        "admin@example.com",
        "ADMIN",
    )
    .await;
    let editor = member(
        &server,
        &owner,
        tenant.team_id,
        "editor@example.com",
        "EDITOR",
    )
    .await;
    let reader = member(
        &server,
        &owner,
        tenant.team_id,
        "member@example.com",
        "MEMBER",
    )
    .await;

    // Everyone in the team sees the workspace, with their own role.
    for (who, role) in [
        (&owner, "OWNER"),
        (&admin, "ADMIN"),
        (&editor, "EDITOR"),
        (&reader, "MEMBER"),
    ] {
        let answer = server
            .graphql_as(
                who.token(),
                "query($id: UUID!) { workspace(id: $id) { myRole } }",
                json!({ "id": tenant.workspace_id }),
            )
            .await;
        assert_eq!(data(answer)["workspace"]["myRole"], role);
    }

    // Creating workspaces and managing members: OWNER and ADMIN only.
    data(create_workspace(&server, &owner, tenant.team_id, "By owner").await);
    data(create_workspace(&server, &admin, tenant.team_id, "By admin").await);
    assert_eq!(
        error_code(&create_workspace(&server, &editor, tenant.team_id, "By editor").await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&create_workspace(&server, &reader, tenant.team_id, "By member").await),
        "FORBIDDEN"
    );
    data(
        invite(
            &server,
            &admin,
            tenant.team_id,
            "new1@example.com",
            "EDITOR",
        )
        .await,
    );
    assert_eq!(
        error_code(
            &invite(
                &server,
                &editor,
                tenant.team_id,
                "new2@example.com",
                "MEMBER"
            )
            .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(
            &invite(
                &server,
                &reader,
                tenant.team_id,
                "new3@example.com",
                "MEMBER"
            )
            .await
        ),
        "FORBIDDEN"
    );

    // Only an OWNER makes or unmakes owners.
    assert_eq!(
        error_code(&invite(&server, &admin, tenant.team_id, "boss@example.com", "OWNER").await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&update_role(&server, &admin, tenant.team_id, editor.id, "OWNER").await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&update_role(&server, &admin, tenant.team_id, owner.id, "MEMBER").await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&remove(&server, &admin, tenant.team_id, owner.id).await),
        "FORBIDDEN"
    );
    let promoted = data(update_role(&server, &admin, tenant.team_id, reader.id, "EDITOR").await);
    assert_eq!(promoted["updateTeamMemberRole"]["role"], "EDITOR");
    assert_eq!(
        error_code(&update_role(&server, &editor, tenant.team_id, reader.id, "ADMIN").await),
        "FORBIDDEN"
    );

    // Only OWNER and ADMIN see pending invitations.
    let pending = async |who: &Account| {
        server
            .graphql_as(
                who.token(),
                "{ me { teams { pendingInvitations { email } } } }",
                json!({}),
            )
            .await
    };
    assert_eq!(
        data(pending(&admin).await)["me"]["teams"][0]["pendingInvitations"][0]["email"],
        "new1@example.com"
    );
    assert_eq!(
        data(pending(&editor).await)["me"]["teams"][0]["pendingInvitations"],
        json!([])
    );

    // createTeam needs OWNER or ADMIN somewhere in the organization.
    let create_team = async |who: &Account| {
        server
            .graphql_as(
                who.token(),
                "mutation($i: CreateTeamInput!) { createTeam(input: $i) { id myRole } }",
                json!({ "i": { "organizationId": tenant.organization_id, "name": "Research" } }),
            )
            .await
    };
    assert_eq!(
        data(create_team(&admin).await)["createTeam"]["myRole"],
        "OWNER"
    );
    assert_eq!(error_code(&create_team(&editor).await), "FORBIDDEN");
}

#[tokio::test]
async fn invitations_are_accepted_once_and_only_by_the_invited_email() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let invited = register(&server, "invited@example.com").await;
    let stranger = register(&server, "stranger@example.com").await;
    let answer = data(
        invite(
            &server,
            &owner,
            tenant.team_id,
            "INVITED@example.com",
            "EDITOR",
        )
        .await,
    );
    let token = answer["inviteTeamMember"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        server
            .scalar(&format!(
                "SELECT count(*) FROM team_invitations WHERE token_hash = '{token}'"
            ))
            .await,
        0,
        "the token is stored hashed"
    );
    let accept = async |who: &Account| {
        server
            .graphql_as(
                who.token(),
                "mutation($t: String!) { acceptInvitation(token: $t) { role team { id } user { email } } }",
                json!({ "t": token }),
            )
            .await
    };
    assert_eq!(error_code(&accept(&stranger).await), "FORBIDDEN");
    let joined = data(accept(&invited).await);
    assert_eq!(joined["acceptInvitation"]["role"], "EDITOR");
    assert_eq!(
        joined["acceptInvitation"]["team"]["id"],
        tenant.team_id.to_string()
    );
    assert_eq!(error_code(&accept(&invited).await), "NOT_FOUND");
    // Inviting someone who is already in the team is a conflict.
    assert_eq!(
        error_code(
            &invite(
                &server,
                &owner,
                tenant.team_id,
                "invited@example.com",
                "MEMBER"
            )
            .await
        ),
        "CONFLICT"
    );
    assert_eq!(error_code(&accept(&stranger).await), "NOT_FOUND");
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    assert_eq!(
        error_code(&update_role(&server, &owner, tenant.team_id, owner.id, "ADMIN").await),
        "CONFLICT"
    );
    assert_eq!(
        error_code(&remove(&server, &owner, tenant.team_id, owner.id).await),
        "CONFLICT"
    );

    let second = member(
        &server,
        &owner,
        tenant.team_id,
        "second@example.com",
        "OWNER",
    )
    .await;
    data(update_role(&server, &second, tenant.team_id, owner.id, "ADMIN").await);
    assert_eq!(
        error_code(&remove(&server, &second, tenant.team_id, second.id).await),
        "CONFLICT"
    );
    // A member may leave by themselves.
    let leaver = member(
        &server,
        &second,
        tenant.team_id,
        "leaver@example.com",
        "MEMBER",
    )
    .await;
    assert_eq!(
        data(remove(&server, &leaver, tenant.team_id, leaver.id).await)["removeTeamMember"],
        true
    );
    assert_eq!(
        server
            .scalar("SELECT count(*) FROM team_members WHERE role = 'OWNER'")
            .await,
        1
    );
}

#[tokio::test]
async fn another_tenants_objects_are_not_found_through_every_operation() {
    let server = TestServer::start().await;
    let alice = register(&server, "alice@example.com").await;
    let a = create_organization(&server, &alice, "A").await;
    let a_member = member(&server, &alice, a.team_id, "a-member@example.com", "MEMBER").await;
    let bob = register(&server, "bob@example.com").await;
    let b = create_organization(&server, &bob, "B").await;
    let audit_before = server.scalar("SELECT count(*) FROM audit_logs").await;

    // Reads: null at the top level, absent from `me`.
    let read = server
        .graphql_as(
            bob.token(),
            "query($id: UUID!) { workspace(id: $id) { id } }",
            json!({ "id": a.workspace_id }),
        )
        .await;
    assert_eq!(data(read)["workspace"], Value::Null);
    let random = server
        .graphql_as(
            bob.token(),
            "query($id: UUID!) { workspace(id: $id) { id } }",
            json!({ "id": Uuid::new_v4() }),
        )
        .await;
    assert_eq!(data(random)["workspace"], Value::Null);
    let tree = data(server.graphql_as(bob.token(), ME_TREE, json!({})).await).to_string();
    for id in [a.organization_id, a.team_id, a.workspace_id] {
        assert!(!tree.contains(&id.to_string()), "B sees {id} of A");
    }

    // Writes: NOT_FOUND, exactly as for an id that does not exist.
    let create_team = server
        .graphql_as(
            bob.token(),
            "mutation($i: CreateTeamInput!) { createTeam(input: $i) { id } }",
            json!({ "i": { "organizationId": a.organization_id, "name": "x" } }),
        )
        .await;
    assert_eq!(error_code(&create_team), "NOT_FOUND");
    assert_eq!(
        error_code(&create_workspace(&server, &bob, a.team_id, "x").await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&create_workspace(&server, &bob, Uuid::new_v4(), "x").await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&invite(&server, &bob, a.team_id, "x@example.com", "MEMBER").await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&update_role(&server, &bob, a.team_id, a_member.id, "ADMIN").await),
        "NOT_FOUND"
    );
    assert_eq!(
        error_code(&remove(&server, &bob, a.team_id, a_member.id).await),
        "NOT_FOUND"
    );
    // B's own team does not hold A's member either.
    assert_eq!(
        error_code(&update_role(&server, &bob, b.team_id, a_member.id, "ADMIN").await),
        "NOT_FOUND"
    );

    assert_eq!(
        server.scalar("SELECT count(*) FROM audit_logs").await,
        audit_before,
        "failed mutations wrote audit rows"
    );
    assert_eq!(server.scalar("SELECT count(*) FROM teams").await, 2);
}

#[tokio::test]
async fn bad_tenancy_inputs_name_the_field_and_change_nothing() {
    let server = TestServer::start().await;
    let ada = register(&server, "ada@example.com").await;
    let too_long = "x".repeat(256);
    let answer = server
        .graphql_as(
            ada.token(),
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { id } }",
            json!({ "i": { "name": too_long } }),
        )
        .await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
    assert_eq!(answer["errors"][0]["extensions"]["field"], "name");
    assert_eq!(server.scalar("SELECT count(*) FROM organizations").await, 0);

    let tenant = create_organization(&server, &ada, "Org").await;
    let answer = invite(&server, &ada, tenant.team_id, "not an email", "MEMBER").await;
    assert_eq!(answer["errors"][0]["extensions"]["field"], "email");
    let answer = invite(&server, &ada, tenant.team_id, "x@example.com", "SUPERUSER").await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
    assert_eq!(
        server.scalar("SELECT count(*) FROM team_invitations").await,
        0
    );

    let anonymous = server
        .graphql(
            "mutation { createOrganization(input: { name: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn every_tenancy_mutation_writes_one_audit_row_with_the_client() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Org").await;
    let editor = member(
        &server,
        &owner,
        tenant.team_id,
        "editor@example.com",
        "EDITOR",
    )
    .await;
    data(update_role(&server, &owner, tenant.team_id, editor.id, "ADMIN").await);
    data(create_workspace(&server, &owner, tenant.team_id, "Second").await);
    data(remove(&server, &owner, tenant.team_id, editor.id).await);
    // A change to the team is written into the trail of each of its workspaces: the removal
    // came after the second workspace.
    for (action, rows) in [
        ("organization.create", 1),
        ("team_invitation.create", 1),
        ("team_invitation.accept", 1),
        ("team_member.update_role", 1),
        ("workspace.create", 1),
        ("team_member.remove", 2),
    ] {
        let n = server
            .scalar(&format!(
                "SELECT count(*) FROM audit_logs WHERE action = '{action}' AND ip = '127.0.0.1' AND actor_type = 'USER'"
            ))
            .await;
        assert_eq!(n, rows, "{action}");
    }
}

const REVOKE: &str = "mutation($id: UUID!) { revokeInvitation(id: $id) { id revokedAt } }";

async fn revoke(server: &TestServer, by: &Account, id: &str) -> Value {
    server
        .graphql_as(by.token(), REVOKE, json!({ "id": id }))
        .await
}

#[tokio::test]
async fn invitations_can_be_revoked_and_go_with_their_inviter() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let admin = member(
        &server,
        &owner,
        tenant.team_id,
        "admin@example.com",
        "ADMIN",
    )
    .await;
    let plain = member(
        &server,
        &owner,
        tenant.team_id,
        "plain@example.com",
        "MEMBER",
    )
    .await;
    let stranger = register(&server, "stranger@example.com").await;
    let invited = register(&server, "new@example.com").await;
    let invitation = |answer: Value| {
        let payload = data(answer)["inviteTeamMember"].clone();
        (
            payload["invitation"]["id"].as_str().unwrap().to_string(),
            payload["token"].as_str().unwrap().to_string(),
        )
    };
    let accept = |token: String| {
        server.graphql_as(
            invited.token(),
            "mutation($t: String!) { acceptInvitation(token: $t) { id } }",
            json!({ "t": token }),
        )
    };

    // Revoked by an ADMIN: its token no longer works, and it leaves the pending list.
    let (id, token) =
        invitation(invite(&server, &owner, tenant.team_id, "new@example.com", "MEMBER").await);
    assert_eq!(error_code(&revoke(&server, &plain, &id).await), "FORBIDDEN");
    assert_eq!(
        error_code(&revoke(&server, &stranger, &id).await),
        "NOT_FOUND"
    );
    let revoked = data(revoke(&server, &admin, &id).await);
    assert!(revoked["revokeInvitation"]["revokedAt"].is_string());
    assert_eq!(
        data(revoke(&server, &admin, &id).await)["revokeInvitation"]["revokedAt"],
        revoked["revokeInvitation"]["revokedAt"],
        "revoking again changes nothing"
    );
    assert_eq!(error_code(&accept(token).await), "NOT_FOUND");
    let pending = data(
        server
            .graphql_as(
                owner.token(),
                "{ me { teams { pendingInvitations { id } } } }",
                json!({}),
            )
            .await,
    );
    assert_eq!(pending["me"]["teams"][0]["pendingInvitations"], json!([]));

    // An ADMIN's pending invitations go when the ADMIN is removed; accepted ones stay.
    let (_, pending_token) =
        invitation(invite(&server, &admin, tenant.team_id, "new@example.com", "EDITOR").await);
    let (accepted_id, accepted_token) = invitation(
        invite(
            &server,
            &admin,
            tenant.team_id,
            "plain2@example.com",
            "MEMBER",
        )
        .await,
    );
    let plain2 = register(&server, "plain2@example.com").await;
    data(
        server
            .graphql_as(
                plain2.token(),
                "mutation($t: String!) { acceptInvitation(token: $t) { id } }",
                json!({ "t": accepted_token }),
            )
            .await,
    );
    assert_eq!(
        error_code(&revoke(&server, &owner, &accepted_id).await),
        "CONFLICT",
        "an accepted invitation is a membership now"
    );
    data(
        server
            .graphql_as(
                owner.token(),
                "mutation($i: RemoveTeamMemberInput!) { removeTeamMember(input: $i) }",
                json!({ "i": { "teamId": tenant.team_id, "userId": admin.id } }),
            )
            .await,
    );
    assert_eq!(error_code(&accept(pending_token).await), "NOT_FOUND");

    // Membership changes are in the workspace's audit trail.
    let logs = data(
        server
            .graphql_as(
                owner.token(),
                "query($w: UUID!) { workspace(id: $w) { auditLogs(first: 50) { edges { node { action metadata } } } } }",
                json!({ "w": tenant.workspace_id }),
            )
            .await,
    );
    let actions: Vec<&str> = logs["workspace"]["auditLogs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    for action in [
        "team_invitation.create",
        "team_invitation.accept",
        "team_invitation.revoke",
        "team_member.remove",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let removal = logs["workspace"]["auditLogs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["action"] == "team_member.remove")
        .unwrap();
    assert_eq!(removal["node"]["metadata"]["revokedInvitations"], 1);
}
