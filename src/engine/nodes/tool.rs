//! TOOL nodes: one call of a tool of the workspace (an MCP server's or a plugin's) with
//! arguments from templates; outputs `result` (JSON) and `text`. The tool's error fails the
//! node with its message.

use serde_json::{Map, Value, json};

use super::{NodeContext, NodeOutput};
use crate::engine::template::Vars;
use crate::tools::{self, ToolRef};

/// Argument values: templates rendered (one that is a single reference gives the value
/// itself), other JSON rendered string by string.
pub fn arguments(config: &Value, vars: &Vars) -> Result<Value, String> {
    let mut arguments = Map::new();
    if let Some(Value::Object(given)) = config.get("arguments") {
        for (name, value) in given {
            let value = match value {
                Value::String(template) => vars.resolve(template),
                other => vars.render_value(other),
            }
            .map_err(|e| format!("config.arguments.{name}: {e}"))?;
            arguments.insert(name.clone(), value);
        }
    }
    Ok(Value::Object(arguments))
}

pub async fn run(ctx: &NodeContext<'_>, config: &Value, vars: &Vars) -> Result<NodeOutput, String> {
    let reference = ToolRef::parse(config.get("tool").unwrap_or(&Value::Null))
        .map_err(|e| format!("config.tool: {e}"))?;
    let arguments = arguments(config, vars)?;
    let patience = ctx.config.node_timeout;
    let tool = {
        let mut conn = ctx.app.engine.pool.get().await.map_err(|e| {
            tracing::error!(error = %e, "no database connection for a tool node");
            "the database is unavailable".to_string()
        })?;
        tools::prepare(ctx.app, &mut conn, ctx.workspace_id, &reference, patience).await?
    };
    let output = tools::call(ctx.app, &tool, arguments.clone(), patience).await?;
    Ok(NodeOutput {
        inputs: Some(json!({ "tool": tool.name, "arguments": arguments })),
        outputs: json!({ "result": output.result, "text": output.text }),
        ..NodeOutput::default()
    })
}
