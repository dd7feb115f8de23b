//! The HTTP_REQUEST node, through the outbound guard (`outbound`): every address the host
//! resolves to must be public unless allow-listed (`WEFT_HTTP_ALLOWED_NETWORKS`), the request
//! goes to exactly the addresses checked, and redirects are not followed.

use std::time::Duration;

use serde_json::{Value, json};

use super::template::Vars;
use crate::outbound::{OutboundConfig, Refused};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer's body kept.
const MAX_BODY: usize = 1024 * 1024;

/// Sends the request the node describes; the outputs are `status`, `body` and `json`.
pub async fn run(
    config: &Value,
    vars: &Vars,
    outbound: &OutboundConfig,
    longest: Duration,
) -> Result<Value, String> {
    let method = config
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let url_text = vars.render(config.get("url").and_then(Value::as_str).unwrap_or(""))?;
    let url = reqwest::Url::parse(url_text.trim()).map_err(|e| format!("bad url: {e}"))?;
    outbound.check_url(&url).map_err(|refused| refused.0)?;
    let timeout = config
        .get("timeoutMs")
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(longest);
    let client = outbound
        .client_builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot prepare the request: {e}"))?;
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("unknown method {method:?}"))?;
    let mut request = client.request(method, url);
    if let Some(Value::Object(headers)) = config.get("headers") {
        for (name, value) in headers {
            let value = vars.render(value.as_str().unwrap_or(""))?;
            request = request.header(name.as_str(), value);
        }
    }
    match config.get("body") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => request = request.body(vars.render(s)?),
        Some(other) => {
            let body = vars.render_value(other)?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
    }
    let mut response = request.send().await.map_err(describe)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await.map_err(describe)? {
        body.extend_from_slice(&piece);
        if body.len() > MAX_BODY {
            return Err(format!("the answer is larger than {MAX_BODY} bytes"));
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
    Ok(json!({ "status": status, "body": body, "json": json }))
}

fn describe(error: reqwest::Error) -> String {
    if let Some(refused) = Refused::within(&error) {
        refused.0
    } else if error.is_timeout() {
        "the request timed out".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        format!("the request failed: {}", error.without_url())
    }
}
