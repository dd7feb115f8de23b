//! `web-reader`'s `read_page`: a public page's title and readable text.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{ToolOutput, body_of, describe, lines_of, setting_str, setting_u64};
use crate::outbound::OutboundConfig;

/// The largest page read.
const MAX_PAGE: usize = 5 * 1024 * 1024;

pub async fn read_page(
    settings: &Map<String, Value>,
    arguments: &Map<String, Value>,
    outbound: &OutboundConfig,
) -> Result<ToolOutput, String> {
    let given = arguments.get("url").and_then(Value::as_str).unwrap_or("");
    let url = reqwest::Url::parse(given.trim()).map_err(|_| format!("{given:?} is not a URL"))?;
    outbound.check_url(&url).map_err(|refused| refused.0)?;
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    if lines_of(settings.get("blockedHosts"))
        .iter()
        .any(|blocked| {
            let blocked = blocked.trim().to_ascii_lowercase();
            !blocked.is_empty() && (host == blocked || host.ends_with(&format!(".{blocked}")))
        })
    {
        return Err(format!("{host} is blocked by this installation"));
    }
    let timeout = Duration::from_secs(setting_u64(settings, "timeoutSeconds", 15).clamp(1, 60));
    let client = outbound
        .client_builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot prepare the request: {e}"))?;
    let mut response = client
        .get(url.clone())
        .header(
            reqwest::header::USER_AGENT,
            setting_str(settings, "userAgent").unwrap_or("WeftWebReader/1.0"),
        )
        .send()
        .await
        .map_err(describe)?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{host} answered HTTP {}", status.as_u16()));
    }
    let html = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.contains("html"));
    let body = body_of(&mut response, MAX_PAGE).await?;
    let (title, text) = if html {
        let page = String::from_utf8_lossy(&body);
        let title = title_of(&page);
        let text = crate::knowledge::extract::text_of("text/html", &body)?;
        (title, text)
    } else {
        (String::new(), String::from_utf8_lossy(&body).into_owned())
    };
    let limit = setting_u64(settings, "maxCharacters", 20_000) as usize;
    let truncated = text.chars().count() > limit;
    let text: String = text.chars().take(limit).collect();
    Ok(ToolOutput {
        result: json!({ "title": title, "text": text, "url": url.as_str(), "truncated": truncated }),
        text: if title.is_empty() {
            text
        } else {
            format!("# {title}\n\n{text}")
        },
    })
}

/// The text of the page's `<title>`, entities left as they are but tags and spaces folded.
fn title_of(page: &str) -> String {
    let lower = page.to_ascii_lowercase();
    let Some(start) = lower.find("<title") else {
        return String::new();
    };
    let Some(open_end) = lower[start..].find('>') else {
        return String::new();
    };
    let from = start + open_end + 1;
    let Some(close) = lower[from..].find("</title") else {
        return String::new();
    };
    page[from..from + close]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(300)
        .collect()
}
