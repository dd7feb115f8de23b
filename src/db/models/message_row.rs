//! A message read from a statement's row in one pass over its columns.
//!
//! Diesel's derived `QueryableByName` looks each field up by name, a linear search over the
//! row's columns: for a message's 26 columns that search was about a tenth of the server's
//! time on a chat history page (400 messages). Here the columns are walked once and each is
//! matched by its name, so a statement may also read only some of them: a page of messages
//! that shows none of the replies' details reads their brief columns (`graphql::message_page`
//! says which, and when), and the columns it leaves out take the values of a message that
//! has none.

use diesel::deserialize::{self, FromSql, QueryableByName};
use diesel::pg::{Pg, PgValue};
use diesel::row::{Field, NamedRow, Row};
use diesel::sql_types::{Float8, Int4, Int8, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use serde_json::Value;

use super::Message;

/// Reads `value` into `slot` unless a column of the same name came first (Diesel reads the
/// first column of a name too).
fn fill<ST, T: FromSql<ST, Pg>>(
    slot: &mut Option<T>,
    value: Option<PgValue<'_>>,
) -> deserialize::Result<()> {
    if slot.is_none() {
        *slot = Some(T::from_nullable_sql(value)?);
    }
    Ok(())
}

/// A column every statement reading messages must give.
fn required<T>(slot: Option<T>, column: &str) -> deserialize::Result<T> {
    slot.ok_or_else(|| format!("Column `{column}` was not present in query").into())
}

impl QueryableByName<Pg> for Message {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        let mut id = None;
        let mut workspace_id = None;
        let mut conversation_id = None;
        let mut application_id = None;
        let mut execution_id = None;
        let mut sequence_number = None;
        let mut role = None;
        let mut content = None;
        let mut query = None;
        let mut answer = None;
        let mut inputs = None;
        let mut outputs = None;
        let mut model_provider = None;
        let mut model_name = None;
        let mut prompt_tokens = None;
        let mut completion_tokens = None;
        let mut total_tokens = None;
        let mut latency = None;
        let mut status = None;
        let mut error = None;
        let mut metadata = None;
        let mut created_at = None;
        let mut updated_at = None;
        let mut stream_seq = None;
        let mut tool_calls = None;
        let mut feedback_count = None;
        for index in 0..row.field_count() {
            let Some(field) = Row::get(row, index) else {
                break;
            };
            let Some(name) = field.field_name() else {
                continue;
            };
            let value = field.value();
            match name {
                "id" => fill::<SqlUuid, _>(&mut id, value)?,
                "workspace_id" => fill::<SqlUuid, _>(&mut workspace_id, value)?,
                "conversation_id" => fill::<SqlUuid, _>(&mut conversation_id, value)?,
                "application_id" => fill::<SqlUuid, _>(&mut application_id, value)?,
                "execution_id" => fill::<Nullable<SqlUuid>, _>(&mut execution_id, value)?,
                "sequence_number" => fill::<Int4, _>(&mut sequence_number, value)?,
                "role" => fill::<Text, _>(&mut role, value)?,
                "content" => fill::<Text, _>(&mut content, value)?,
                "query" => fill::<Nullable<Text>, _>(&mut query, value)?,
                "answer" => fill::<Nullable<Text>, _>(&mut answer, value)?,
                "inputs" => fill::<Jsonb, _>(&mut inputs, value)?,
                "outputs" => fill::<Nullable<Jsonb>, _>(&mut outputs, value)?,
                "model_provider" => fill::<Nullable<Text>, _>(&mut model_provider, value)?,
                "model_name" => fill::<Nullable<Text>, _>(&mut model_name, value)?,
                "prompt_tokens" => fill::<Int4, _>(&mut prompt_tokens, value)?,
                "completion_tokens" => fill::<Int4, _>(&mut completion_tokens, value)?,
                "total_tokens" => fill::<Int4, _>(&mut total_tokens, value)?,
                "latency" => fill::<Nullable<Float8>, _>(&mut latency, value)?,
                "status" => fill::<Text, _>(&mut status, value)?,
                "error" => fill::<Nullable<Text>, _>(&mut error, value)?,
                "metadata" => fill::<Jsonb, _>(&mut metadata, value)?,
                "created_at" => fill::<Timestamptz, _>(&mut created_at, value)?,
                "updated_at" => fill::<Timestamptz, _>(&mut updated_at, value)?,
                "stream_seq" => fill::<Nullable<Int8>, _>(&mut stream_seq, value)?,
                "tool_calls" => fill::<Jsonb, _>(&mut tool_calls, value)?,
                "feedback_count" => fill::<Int4, _>(&mut feedback_count, value)?,
                _ => {}
            }
        }
        Ok(Message {
            id: required(id, "id")?,
            workspace_id: required(workspace_id, "workspace_id")?,
            conversation_id: required(conversation_id, "conversation_id")?,
            application_id: required(application_id, "application_id")?,
            execution_id: required(execution_id, "execution_id")?,
            sequence_number: required(sequence_number, "sequence_number")?,
            role: required(role, "role")?,
            content: required(content, "content")?,
            status: required(status, "status")?,
            created_at: required(created_at, "created_at")?,
            updated_at: required(updated_at, "updated_at")?,
            feedback_count: required(feedback_count, "feedback_count")?,
            // Left out of a brief read: a message without them.
            query: query.flatten(),
            answer: answer.flatten(),
            inputs: inputs.unwrap_or_else(|| Value::Object(Default::default())),
            outputs: outputs.flatten(),
            model_provider: model_provider.flatten(),
            model_name: model_name.flatten(),
            prompt_tokens: prompt_tokens.unwrap_or(0),
            completion_tokens: completion_tokens.unwrap_or(0),
            total_tokens: total_tokens.unwrap_or(0),
            latency: latency.flatten(),
            error: error.flatten(),
            metadata: metadata.unwrap_or_else(|| Value::Object(Default::default())),
            stream_seq: stream_seq.flatten(),
            tool_calls: tool_calls.unwrap_or_else(|| Value::Array(Vec::new())),
        })
    }
}
