//! What of a graph may be shown to everyone when it is published as a public template: the
//! nodes, their wiring and their settings, but no credentials. Header values (an HTTP
//! node's `Authorization`, API keys...), settings whose name says they are secret, and the
//! user part of URLs are emptied; names stay, so whoever uses the template sees what to
//! fill in.

use serde_json::Value;

/// How the names of settings holding credentials end (compared without case, `-` and
/// `_`): `apiKey`, `access_token`, `clientSecret`... but not `maxTokens`.
const SECRET_NAMES: [&str; 9] = [
    "apikey",
    "token",
    "secret",
    "password",
    "authorization",
    "accesskey",
    "privatekey",
    "credential",
    "credentials",
];

fn is_secret_name(name: &str) -> bool {
    let name: String = name
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    SECRET_NAMES.iter().any(|secret| name.ends_with(secret))
}

/// `graph` (as stored) without its credentials.
pub fn without_secrets(graph: &Value) -> Value {
    let mut graph = graph.clone();
    if let Some(nodes) = graph.get_mut("nodes").and_then(Value::as_array_mut) {
        for node in nodes {
            if let Some(config) = node.get_mut("config") {
                scrub(config);
                if let Some(Value::Object(headers)) = config.get_mut("headers") {
                    for value in headers.values_mut() {
                        *value = Value::String(String::new());
                    }
                }
            }
        }
    }
    graph
}

/// Empties secret-named settings and URL credentials, at any depth.
fn scrub(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (name, inner) in object.iter_mut() {
                if is_secret_name(name) && !inner.is_object() && !inner.is_array() {
                    *inner = Value::String(String::new());
                } else {
                    scrub(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::String(text) => {
            if let Some(clean) = without_userinfo(text) {
                *text = clean;
            }
        }
        _ => {}
    }
}

/// `https://user:pass@host/...` without `user:pass@`; `None` when there is nothing to take.
fn without_userinfo(text: &str) -> Option<String> {
    let (scheme, rest) = text.split_once("://")?;
    if !scheme
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some(format!("{scheme}://{}", &rest[at + 1..]))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn credentials_are_emptied_and_the_rest_kept() {
        let graph = json!({
            "nodes": [
                { "key": "call", "type": "HTTP_REQUEST", "config": {
                    "url": "https://bot:hunter2@api.example.com/v1?q={{start.q}}",
                    "method": "POST",
                    "headers": { "Authorization": "Bearer sk-live", "X-Trace": "yes" },
                    "body": { "api_key": "k-1", "query": "{{start.q}}" },
                } },
                { "key": "llm", "type": "LLM", "config": {
                    "providerId": "00000000-0000-0000-0000-000000000001",
                    "prompt": "Say {{start.q}}",
                    "x-access-token": "t",
                    "maxTokens": 200,
                } },
            ],
            "connections": [{ "source": "call", "target": "llm" }],
        });
        let public = without_secrets(&graph);
        let call = &public["nodes"][0]["config"];
        assert_eq!(call["url"], "https://api.example.com/v1?q={{start.q}}");
        assert_eq!(
            call["headers"],
            json!({ "Authorization": "", "X-Trace": "" })
        );
        assert_eq!(
            call["body"],
            json!({ "api_key": "", "query": "{{start.q}}" })
        );
        assert_eq!(call["method"], "POST");
        let llm = &public["nodes"][1]["config"];
        assert_eq!(llm["x-access-token"], "");
        assert_eq!(llm["prompt"], "Say {{start.q}}");
        assert_eq!(llm["maxTokens"], 200);
        assert_eq!(llm["providerId"], graph["nodes"][1]["config"]["providerId"]);
        assert_eq!(public["connections"], graph["connections"]);
    }

    #[test]
    fn text_that_only_looks_like_a_url_is_left() {
        assert_eq!(without_userinfo("mail me at a@b.c"), None);
        assert_eq!(without_userinfo("https://example.com/a@b"), None);
        assert_eq!(
            without_userinfo("postgres://u:p@db:5432/x").as_deref(),
            Some("postgres://db:5432/x")
        );
    }
}
