//! Creating prompt templates and their versions.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use uuid::Uuid;

use crate::audit::{self, AuditEntry};
use crate::auth::permissions::{authorize_workspace, visible_workspace_ids};
use crate::auth::{Action, Actor, ClientInfo};
use crate::db::models::{PromptTemplate, PromptTemplateVersion};
use crate::db::schema::{prompt_template_versions, prompt_templates};
use crate::error::{AppError, AppResult};
use crate::validate;
use crate::workflow::graph::references;

/// The `{{variable}}` names a prompt uses, in order of first use.
pub fn variables_of(content: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (root, path) in references(&serde_json::Value::String(content.to_string())) {
        let name = if path.is_empty() {
            root
        } else {
            format!("{root}.{path}")
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

async fn insert_version(
    conn: &mut AsyncPgConnection,
    template: &PromptTemplate,
    content: &str,
    actor: Actor,
) -> AppResult<PromptTemplateVersion> {
    let last: Option<i32> = prompt_template_versions::table
        .filter(prompt_template_versions::prompt_template_id.eq(template.id))
        .select(diesel::dsl::max(prompt_template_versions::version_number))
        .first(conn)
        .await?;
    diesel::update(prompt_template_versions::table)
        .filter(prompt_template_versions::prompt_template_id.eq(template.id))
        .filter(prompt_template_versions::is_current.eq(true))
        .set(prompt_template_versions::is_current.eq(false))
        .execute(conn)
        .await?;
    let version: PromptTemplateVersion = diesel::insert_into(prompt_template_versions::table)
        .values((
            prompt_template_versions::workspace_id.eq(template.workspace_id),
            prompt_template_versions::prompt_template_id.eq(template.id),
            prompt_template_versions::version_number.eq(last.unwrap_or(0) + 1),
            prompt_template_versions::content.eq(content),
            prompt_template_versions::variables.eq(json!(variables_of(content))),
            prompt_template_versions::is_current.eq(true),
            prompt_template_versions::created_by.eq(actor.user_id().ok()),
        ))
        .returning(PromptTemplateVersion::as_returning())
        .get_result(conn)
        .await?;
    diesel::update(prompt_templates::table.find(template.id))
        .set(prompt_templates::updated_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(version)
}

/// Creates a prompt template with its first version (EDITOR and up).
pub async fn create_prompt_template(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    workspace_id: Uuid,
    name: &str,
    description: Option<&str>,
    content: &str,
) -> AppResult<PromptTemplate> {
    let name = validate::name("name", name, 255)?;
    let description = description
        .map(|d| validate::text("description", d, 10_000))
        .transpose()?;
    let content = validate::name("content", content, 100_000)?;
    conn.transaction(async |conn| {
        authorize_workspace(conn, actor, workspace_id, Action::Build).await?;
        let template: PromptTemplate = diesel::insert_into(prompt_templates::table)
            .values((
                prompt_templates::workspace_id.eq(workspace_id),
                prompt_templates::name.eq(&name),
                prompt_templates::description.eq(&description),
                prompt_templates::created_by.eq(actor.user_id().ok()),
            ))
            .returning(PromptTemplate::as_returning())
            .get_result(conn)
            .await?;
        let version = insert_version(conn, &template, &content, actor).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(workspace_id),
                action: "prompt_template.create",
                resource_type: "prompt_template",
                resource_id: Some(template.id),
                metadata: json!({ "name": name, "versionId": version.id }),
            },
        )
        .await?;
        Ok(template)
    })
    .await
}

/// Adds a version that becomes the current one.
pub async fn create_prompt_template_version(
    conn: &mut AsyncPgConnection,
    actor: Actor,
    client: &ClientInfo,
    prompt_template_id: Uuid,
    content: &str,
) -> AppResult<PromptTemplateVersion> {
    let user_id = actor.user_id()?;
    let content = validate::name("content", content, 100_000)?;
    conn.transaction(async |conn| {
        let template: PromptTemplate = prompt_templates::table
            .find(prompt_template_id)
            .filter(prompt_templates::deleted_at.is_null())
            .filter(prompt_templates::workspace_id.eq_any(visible_workspace_ids(user_id)))
            .select(PromptTemplate::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(AppError::NotFound("prompt template"))?;
        authorize_workspace(conn, actor, template.workspace_id, Action::Build).await?;
        let version = insert_version(conn, &template, &content, actor).await?;
        audit::record(
            conn,
            actor,
            client,
            AuditEntry {
                workspace_id: Some(template.workspace_id),
                action: "prompt_template.create_version",
                resource_type: "prompt_template",
                resource_id: Some(template.id),
                metadata: json!({ "versionNumber": version.version_number }),
            },
        )
        .await?;
        Ok(version)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_found_once_in_order() {
        assert_eq!(
            variables_of("Hello {{ name }}, about {{topic}}: {{name}} and {{sys.query}}"),
            vec!["name", "topic", "sys.query"]
        );
        assert!(variables_of("no variables").is_empty());
    }
}
