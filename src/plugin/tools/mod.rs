//! The shipped plugins' tools, run in the server: `http-request` (a REST API under the
//! installation's base URL), `web-reader` (a public page as text) and `date-time`. Each gets
//! its installation's settings (secrets revealed) and the call's arguments, checked against
//! the manifest's parameters first; HTTP goes through the outbound guard.

mod date_time;
mod http_request;
mod web_reader;

use serde_json::{Map, Value, json};

use super::catalogue::{FieldType, Tool};
use crate::outbound::OutboundConfig;

/// What a tool gave: its result (an object) and a text for a model or a template.
pub struct ToolOutput {
    pub result: Value,
    pub text: String,
}

/// The JSON Schema of a tool's arguments, from its manifest parameters.
pub fn input_schema(tool: &Tool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for parameter in &tool.parameters {
        let mut schema = match parameter.field_type {
            FieldType::Integer => json!({ "type": "integer" }),
            FieldType::Number => json!({ "type": "number" }),
            FieldType::Boolean => json!({ "type": "boolean" }),
            FieldType::StringList => json!({ "type": "array", "items": { "type": "string" } }),
            FieldType::Url => json!({ "type": "string", "format": "uri" }),
            _ => json!({ "type": "string" }),
        };
        if let Some(options) = &parameter.options {
            schema["enum"] = json!(options);
        }
        if let Some(description) = &parameter.description {
            schema["description"] = json!(description);
        }
        properties.insert(parameter.name.clone(), schema);
        if parameter.required {
            required.push(parameter.name.clone());
        }
    }
    json!({ "type": "object", "properties": properties, "required": required,
            "additionalProperties": false })
}

/// The arguments checked against the tool's parameters: required ones present, each of its
/// type (a number given as text is taken), choices among the options, nothing undeclared.
fn check_arguments(tool: &Tool, arguments: &Value) -> Result<Map<String, Value>, String> {
    let given = match arguments {
        Value::Object(map) => map.clone(),
        Value::Null => Map::new(),
        _ => return Err("the arguments must be an object".into()),
    };
    let mut checked = Map::new();
    for (name, value) in &given {
        let parameter = tool
            .parameters
            .iter()
            .find(|p| &p.name == name)
            .ok_or_else(|| format!("the tool {} takes no argument {name:?}", tool.name))?;
        if value.is_null() {
            continue;
        }
        let value = match parameter.field_type {
            FieldType::Integer => json!(
                value
                    .as_i64()
                    .or_else(|| value.as_str()?.trim().parse().ok())
                    .ok_or_else(|| format!("{name} must be a whole number"))?
            ),
            FieldType::Number => json!(
                value
                    .as_f64()
                    .or_else(|| value.as_str()?.trim().parse().ok())
                    .ok_or_else(|| format!("{name} must be a number"))?
            ),
            FieldType::Boolean => json!(
                value
                    .as_bool()
                    .ok_or_else(|| format!("{name} must be true or false"))?
            ),
            FieldType::StringList => match value {
                Value::Array(items) if items.iter().all(Value::is_string) => value.clone(),
                Value::String(lines) => json!(lines.lines().collect::<Vec<_>>()),
                _ => return Err(format!("{name} must be a list of strings")),
            },
            _ => match value {
                Value::String(_) => value.clone(),
                other => Value::String(other.to_string()),
            },
        };
        if let (Some(options), Some(text)) = (&parameter.options, value.as_str())
            && !options.iter().any(|o| o == text)
        {
            return Err(format!("{name} must be one of {}", options.join(", ")));
        }
        checked.insert(name.clone(), value);
    }
    for parameter in tool.parameters.iter().filter(|p| p.required) {
        if !checked.contains_key(&parameter.name) {
            return Err(format!("the argument {} is required", parameter.name));
        }
    }
    Ok(checked)
}

/// Runs tool `tool` of plugin `plugin` with the installation's `settings`.
pub async fn call(
    plugin: &str,
    tool: &Tool,
    settings: &Map<String, Value>,
    arguments: &Value,
    outbound: &OutboundConfig,
) -> Result<ToolOutput, String> {
    let arguments = check_arguments(tool, arguments)?;
    match (plugin, tool.name.as_str()) {
        ("http-request", "request") => http_request::request(settings, &arguments, outbound).await,
        ("web-reader", "read_page") => web_reader::read_page(settings, &arguments, outbound).await,
        ("date-time", "now") => date_time::now(settings),
        ("date-time", "shift") => date_time::shift(&arguments),
        _ => Err(format!(
            "the plugin {plugin} has no runnable tool {}",
            tool.name
        )),
    }
}

fn setting_u64(settings: &Map<String, Value>, name: &str, default: u64) -> u64 {
    settings
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or(default)
}

fn setting_str<'a>(settings: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    settings.get(name).and_then(Value::as_str)
}

fn lines_of(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(text)) => text.lines().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// "Name: value" lines as header pairs; a line that is not one is refused.
fn header_lines(lines: &[String]) -> Result<Vec<(String, String)>, String> {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("{line:?} is not a 'Name: value' header"))?;
            let (name, value) = (name.trim(), value.trim());
            reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{name:?} is not a header name"))?;
            reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| format!("the value of {name} is not a header value"))?;
            Ok((name.to_string(), value.to_string()))
        })
        .collect()
}

/// Reads a response body up to `limit` bytes.
async fn body_of(response: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await.map_err(describe)? {
        body.extend_from_slice(&piece);
        if body.len() > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
    }
    Ok(body)
}

fn describe(error: reqwest::Error) -> String {
    if let Some(refused) = crate::outbound::Refused::within(&error) {
        refused.0
    } else if error.is_timeout() {
        "the request timed out".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        format!("the request failed: {}", error.without_url())
    }
}
