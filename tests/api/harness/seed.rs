//! Rows written straight into the database for tests that need many of them.

use uuid::Uuid;

use super::TestServer;

/// Seeds a chat application in `workspace` with `conversations` conversations of
/// `messages` messages each, an end user per conversation, a like on every second reply
/// and an annotation on every tenth message. Returns the application id.
pub async fn chat_history(
    server: &TestServer,
    workspace: Uuid,
    conversations: i32,
    messages: i32,
) -> Uuid {
    use diesel_async::RunQueryDsl;
    let mut conn = server.app.pool.get().await.unwrap();
    let app = Uuid::new_v4();
    let statements = [
        format!("INSERT INTO applications (id, workspace_id, name, mode) VALUES ('{app}', '{workspace}', 'Seeded', 'CHAT')"),
        format!(
            "INSERT INTO end_users (workspace_id, external_user_id, name)
             SELECT '{workspace}', '{app}-' || g, 'User ' || g FROM generate_series(1, {conversations}) g"
        ),
        format!(
            "INSERT INTO conversations (workspace_id, application_id, end_user_id, title, message_count, updated_at)
             SELECT '{workspace}', '{app}', e.id, 'Conversation ' || g, {messages}, now() - g * interval '1 minute'
             FROM generate_series(1, {conversations}) g
             JOIN end_users e ON e.workspace_id = '{workspace}' AND e.external_user_id = '{app}-' || g"
        ),
        format!(
            "INSERT INTO messages (workspace_id, conversation_id, application_id, sequence_number, role, content, status)
             SELECT '{workspace}', c.id, '{app}', s, CASE WHEN s % 2 = 1 THEN 'USER' ELSE 'ASSISTANT' END,
                    repeat('A few words of a realistic chat message. ', 8) || s, 'COMPLETED'
             FROM conversations c, generate_series(1, {messages}) s WHERE c.application_id = '{app}'"
        ),
        format!(
            "INSERT INTO message_feedbacks (workspace_id, message_id, conversation_id, application_id, end_user_id, rating)
             SELECT '{workspace}', m.id, m.conversation_id, '{app}', c.end_user_id, 'LIKE'
             FROM messages m JOIN conversations c ON c.id = m.conversation_id
             WHERE m.application_id = '{app}' AND m.sequence_number % 4 = 0"
        ),
        format!(
            "INSERT INTO message_annotations (workspace_id, message_id, conversation_id, application_id, question, content)
             SELECT '{workspace}', m.id, m.conversation_id, '{app}', 'q', 'A better answer'
             FROM messages m WHERE m.application_id = '{app}' AND m.sequence_number % 10 = 0"
        ),
    ];
    for sql in statements {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }
    app
}
