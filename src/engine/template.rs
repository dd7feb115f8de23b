//! Variables of a run and the templates that read them (API.md, "Workflow graphs"):
//! `{{sys.query}}`, `{{start.<input>}}`, `{{<nodeKey>.<output>}}`, rendered by minijinja in
//! a sandbox with a fuel limit (a template cannot loop forever). A variable that is not set
//! (a skipped node's output) renders as nothing.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

/// The variables visible to a node: `sys`, `start` and every finished node's outputs.
#[derive(Debug, Clone, Default)]
pub struct Vars(Map<String, Value>);

/// Instructions a template may spend; ample for any template a builder writes.
const FUEL: u64 = 200_000;
/// The longest text a template may produce.
const MAX_OUTPUT: usize = 1_000_000;

impl Vars {
    pub fn new(sys: Value, start: Value) -> Vars {
        let mut map = Map::new();
        map.insert("sys".into(), sys);
        map.insert("start".into(), start);
        Vars(map)
    }

    /// Sets the outputs of node `key`.
    pub fn set(&mut self, key: &str, outputs: Value) {
        self.0.insert(key.to_string(), outputs);
    }

    /// The value at `root.path` (dotted), as a condition reads it.
    pub fn lookup(&self, variable: &str) -> Option<&Value> {
        let inner = variable
            .trim()
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .trim();
        let mut parts = inner.split('.');
        let mut value = self.0.get(parts.next()?)?;
        for part in parts {
            value = match value {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }

    /// Renders `template`; an error names what is wrong with it.
    pub fn render(&self, template: &str) -> Result<String, String> {
        if !template.contains("{{") && !template.contains("{%") {
            return Ok(template.to_string());
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(FUEL));
        env.set_formatter(|out, state, value| {
            // JSON's spelling: true/false, and null as nothing.
            match value.kind() {
                minijinja::value::ValueKind::Bool => {
                    out.write_str(if value.is_true() { "true" } else { "false" })?;
                    return Ok(());
                }
                minijinja::value::ValueKind::None | minijinja::value::ValueKind::Undefined => {
                    return Ok(());
                }
                _ => {}
            }
            // Objects and lists render as JSON, the way a prompt wants them.
            if matches!(
                value.kind(),
                minijinja::value::ValueKind::Map | minijinja::value::ValueKind::Seq
            ) {
                let json = serde_json::to_string(value).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::BadSerialization, e.to_string())
                })?;
                out.write_str(&json)?;
                Ok(())
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let rendered = env
            .render_str(template, minijinja::value::Serde(&self.0))
            .map_err(|e| format!("template: {}", e.detail().unwrap_or(&e.to_string())))?;
        if rendered.len() > MAX_OUTPUT {
            return Err(format!(
                "template: the text is longer than {MAX_OUTPUT} bytes"
            ));
        }
        Ok(rendered)
    }

    /// A template that is one reference and nothing else (`{{ node.items }}`) gives the
    /// value itself (a number, a list, an object); any other template gives its text. Code
    /// and tool arguments take values this way.
    pub fn resolve(&self, template: &str) -> Result<Value, String> {
        let trimmed = template.trim();
        if let Some(inner) = trimmed
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
            .map(str::trim)
            && !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Ok(self.lookup(inner).cloned().unwrap_or(Value::Null));
        }
        self.render(template).map(Value::String)
    }

    /// Renders every string inside `value` (objects and lists kept as they are).
    pub fn render_value(&self, value: &Value) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(self.render(s)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value(v))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> Vars {
        let mut vars = Vars::new(
            json!({ "query": "hi <there>", "conversationId": "c1" }),
            json!({ "name": "Ada", "n": 3 }),
        );
        vars.set(
            "llm",
            json!({ "text": "reply", "usage": { "totalTokens": 5 }, "ok": true, "none": null }),
        );
        vars
    }

    #[test]
    fn renders_variables_without_escaping() {
        let v = vars();
        assert_eq!(
            v.render("{{sys.query}} / {{ start.name }} / {{llm.text}}")
                .unwrap(),
            "hi <there> / Ada / reply"
        );
        assert_eq!(v.render("{{llm.usage}}").unwrap(), r#"{"totalTokens":5}"#);
        assert_eq!(v.render("[{{skipped.text}}]").unwrap(), "[]");
        assert_eq!(v.render("{{llm.ok}}/{{llm.none}}").unwrap(), "true/");
        assert_eq!(v.render("plain").unwrap(), "plain");
    }

    #[test]
    fn a_runaway_template_stops() {
        let err = vars()
            .render(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            )
            .unwrap_err();
        assert!(err.starts_with("template:"), "{err}");
        assert!(vars().render("{{ unclosed").is_err());
    }

    #[test]
    fn looks_up_dotted_paths() {
        let v = vars();
        assert_eq!(v.lookup("llm.usage.totalTokens"), Some(&json!(5)));
        assert_eq!(v.lookup("{{start.n}}"), Some(&json!(3)));
        assert_eq!(v.lookup("nothing.here"), None);
    }
}
