//! What the stream examples share: rows to stream about, written as the chat pipeline would.

use diesel_async::RunQueryDsl;
use uuid::Uuid;
use weft::app::App;

/// An application with a conversation, an assistant message being generated, and a
/// running execution, in `workspace`.
pub struct Subjects {
    pub application: Uuid,
    pub conversation: Uuid,
    pub message: Uuid,
    pub execution: Uuid,
}

pub async fn seed(app: &App, workspace: Uuid) -> Result<Subjects, Box<dyn std::error::Error>> {
    let s = Subjects {
        application: Uuid::new_v4(),
        conversation: Uuid::new_v4(),
        message: Uuid::new_v4(),
        execution: Uuid::new_v4(),
    };
    let (workflow, version) = (Uuid::new_v4(), Uuid::new_v4());
    let mut conn = app.pool.get().await?;
    for sql in [
        format!(
            "INSERT INTO applications (id, workspace_id, name, mode) VALUES ('{}', '{workspace}', 'Driven', 'CHAT')",
            s.application
        ),
        format!(
            "INSERT INTO conversations (id, workspace_id, application_id, title) VALUES ('{}', '{workspace}', '{}', 'Driven')",
            s.conversation, s.application
        ),
        format!(
            "INSERT INTO messages (id, workspace_id, conversation_id, application_id, sequence_number, role, content, status)
             VALUES ('{}', '{workspace}', '{}', '{}', 2, 'ASSISTANT', '', 'STREAMING')",
            s.message, s.conversation, s.application
        ),
        format!("INSERT INTO workflows (id, workspace_id, name) VALUES ('{workflow}', '{workspace}', 'Driven')"),
        format!(
            "INSERT INTO workflow_versions (id, workspace_id, workflow_id, sequence_number, graph)
             VALUES ('{version}', '{workspace}', '{workflow}', 1, '{{}}')"
        ),
        format!(
            "INSERT INTO execution_records (id, workspace_id, workflow_id, version_id, status, started_at)
             VALUES ('{}', '{workspace}', '{workflow}', '{version}', 'RUNNING', now())",
            s.execution
        ),
    ] {
        diesel::sql_query(sql).execute(&mut conn).await?;
    }
    Ok(s)
}
