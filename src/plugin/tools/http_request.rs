//! `http-request`'s `request`: one call to a path under the installation's base URL, with
//! its stored Authorization and default headers.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{ToolOutput, body_of, describe, header_lines, lines_of, setting_str, setting_u64};
use crate::outbound::OutboundConfig;

/// The URL of `path` under `base`, refused when it would leave it (another host, a path
/// outside the base's, `..` segments).
fn under_base(base: &str, path: &str) -> Result<reqwest::Url, String> {
    let base = reqwest::Url::parse(base).map_err(|_| "the base URL does not parse".to_string())?;
    if !path.starts_with('/') || path.starts_with("//") || path.contains('\\') {
        return Err("path must start with a single / (a path under the base URL)".into());
    }
    let (path_part, query) = path.split_once('?').unwrap_or((path, ""));
    if path_part.split('/').any(|segment| {
        segment == ".." || segment == "." || segment.contains("%2e") || segment.contains("%2E")
    }) {
        return Err("path may not contain . or .. segments".into());
    }
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path_part);
    url.set_path(&joined);
    url.set_query((!query.is_empty()).then_some(query));
    if url.origin() != base.origin() || !url.path().starts_with(base.path().trim_end_matches('/')) {
        return Err("the path leaves the base URL".into());
    }
    Ok(url)
}

pub async fn request(
    settings: &Map<String, Value>,
    arguments: &Map<String, Value>,
    outbound: &OutboundConfig,
) -> Result<ToolOutput, String> {
    let base = setting_str(settings, "baseUrl").ok_or("the installation has no base URL")?;
    let path = arguments.get("path").and_then(Value::as_str).unwrap_or("/");
    let url = under_base(base, path)?;
    outbound.check_url(&url).map_err(|refused| refused.0)?;
    let method = arguments
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("unknown method {method:?}"))?;
    let timeout = Duration::from_secs(setting_u64(settings, "timeoutSeconds", 10).clamp(1, 60));
    let limit = setting_u64(settings, "maxResponseBytes", 1024 * 1024) as usize;
    let client = outbound
        .client_builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot prepare the request: {e}"))?;
    let mut request = client.request(method, url);
    for (name, value) in header_lines(&lines_of(settings.get("defaultHeaders")))?
        .into_iter()
        .chain(header_lines(&lines_of(arguments.get("headers")))?)
    {
        request = request.header(name, value);
    }
    if let Some(authorization) = setting_str(settings, "authorization") {
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
    }
    if let Some(body) = arguments.get("body").and_then(Value::as_str) {
        if serde_json::from_str::<Value>(body).is_ok() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        request = request.body(body.to_string());
    }
    let mut response = request.send().await.map_err(describe)?;
    let status = response.status().as_u16();
    let headers: Map<String, Value> = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), json!(value.to_str().ok()?))))
        .collect();
    let body = String::from_utf8_lossy(&body_of(&mut response, limit).await?).into_owned();
    let parsed = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
    Ok(ToolOutput {
        text: format!("HTTP {status}\n{body}"),
        result: json!({ "status": status, "headers": headers, "body": body, "json": parsed }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_base_url() {
        let base = "https://api.example.com/v1/";
        assert_eq!(
            under_base(base, "/items?limit=10").unwrap().as_str(),
            "https://api.example.com/v1/items?limit=10"
        );
        for bad in ["items", "//evil.com/x", "/../admin", "/a/%2e%2e/b", "/a\\b"] {
            assert!(under_base(base, bad).is_err(), "{bad}");
        }
    }
}
