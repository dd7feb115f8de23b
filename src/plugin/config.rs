//! A workspace's settings of a plugin, checked against the manifest. Secret settings are
//! stored sealed (AES-GCM under the configured key) and never returned.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::catalogue::{ConfigField, FieldType};
use crate::error::{AppError, AppResult};
use crate::secrets::{self, Secret};

/// The key under which a sealed secret is stored.
const SEALED: &str = "$sealed";

const MAX_TEXT: usize = 10_000;
const MAX_SECRET: usize = 4_096;
const MAX_URL: usize = 2_000;
const MAX_LIST: usize = 100;
const MAX_LIST_ITEM: usize = 1_000;

/// Checks one value against its setting; the value as stored (secrets not yet sealed).
pub fn check_value(field: &ConfigField, value: &Value) -> Result<Value, String> {
    let within = |n: f64| {
        if field.min.is_some_and(|min| n < min) || field.max.is_some_and(|max| n > max) {
            Err(match (field.min, field.max) {
                (Some(min), Some(max)) => format!("must be between {min} and {max}"),
                (Some(min), None) => format!("must be at least {min}"),
                (None, Some(max)) => format!("must be at most {max}"),
                (None, None) => String::new(),
            })
        } else {
            Ok(())
        }
    };
    let text = |max: usize| match value.as_str() {
        Some(s) if s.chars().count() > max => Err(format!("must be at most {max} characters")),
        Some(s) if s.contains('\0') => Err("must not contain NUL characters".to_string()),
        Some(s) => Ok(s.to_string()),
        None => Err("must be a string".to_string()),
    };
    match field.field_type {
        FieldType::String => text(MAX_TEXT).map(Value::String),
        FieldType::Secret => {
            let s = text(MAX_SECRET)?;
            if s.is_empty() {
                return Err("must not be empty".into());
            }
            Ok(Value::String(s))
        }
        FieldType::Url => {
            let s = text(MAX_URL)?;
            let lower = s.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("https://")
                .or_else(|| lower.strip_prefix("http://"))
                .ok_or("must start with http:// or https://")?;
            if rest.is_empty() || rest.starts_with('/') || rest.contains(char::is_whitespace) {
                return Err("must name a host".into());
            }
            Ok(Value::String(s))
        }
        FieldType::Number => {
            let n = value.as_f64().ok_or("must be a number")?;
            within(n)?;
            Ok(json!(n))
        }
        FieldType::Integer => {
            let n = value.as_i64().ok_or("must be an integer")?;
            within(n as f64)?;
            Ok(json!(n))
        }
        FieldType::Boolean => value
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| "must be true or false".to_string()),
        FieldType::Select => {
            let s = value.as_str().ok_or("must be a string")?;
            let options = field.options.as_deref().unwrap_or_default();
            if options.iter().any(|o| o == s) {
                Ok(Value::String(s.to_string()))
            } else {
                Err(format!("must be one of {}", options.join(", ")))
            }
        }
        FieldType::StringList => {
            let items = value.as_array().ok_or("must be a list of strings")?;
            if items.len() > MAX_LIST {
                return Err(format!("must have at most {MAX_LIST} items"));
            }
            for item in items {
                match item.as_str() {
                    Some(s) if s.chars().count() <= MAX_LIST_ITEM && !s.contains('\0') => {}
                    Some(_) => {
                        return Err(format!("items must be at most {MAX_LIST_ITEM} characters"));
                    }
                    None => return Err("must be a list of strings".into()),
                }
            }
            Ok(value.clone())
        }
    }
}

fn is_sealed(value: &Value) -> bool {
    value.get(SEALED).is_some_and(Value::is_string)
}

/// The settings to store for `given`, checked against `fields`. Defaults fill settings not
/// given. On a change (`previous` set), a secret left out keeps its stored value and a secret
/// given as null is removed.
pub fn prepare(
    fields: &[ConfigField],
    given: &Value,
    previous: Option<&Value>,
    key: &Secret,
    installation: Uuid,
) -> AppResult<Value> {
    let given = match given {
        Value::Null => &Map::new(),
        Value::Object(map) => map,
        _ => return Err(AppError::bad_input("config", "config must be an object")),
    };
    if let Some(unknown) = given.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
        let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        return Err(AppError::bad_input(
            format!("config.{unknown}"),
            format!(
                "the plugin has no setting {unknown}; its settings are: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    let mut stored = Map::new();
    for field in fields {
        let path = format!("config.{}", field.name);
        let value = match given.get(&field.name) {
            Some(Value::Null) => None,
            Some(v) => Some(
                check_value(field, v)
                    .map_err(|m| AppError::bad_input(&path, format!("{} {m}", field.label)))?,
            ),
            None if field.field_type == FieldType::Secret => previous
                .and_then(|p| p.get(&field.name))
                .filter(|v| is_sealed(v))
                .cloned(),
            None => field.default.clone(),
        };
        let value = match (value, field.field_type) {
            (Some(Value::String(plain)), FieldType::Secret) => {
                let binding = binding(installation, &field.name);
                let sealed = secrets::encrypt(key, plain.as_bytes(), &binding)
                    .map_err(AppError::internal)?;
                Some(json!({ SEALED: STANDARD.encode(sealed) }))
            }
            (value, _) => value,
        };
        match value {
            Some(v) => {
                stored.insert(field.name.clone(), v);
            }
            None if field.required => {
                return Err(AppError::bad_input(
                    path,
                    format!("{} is required", field.label),
                ));
            }
            None => {}
        }
    }
    Ok(Value::Object(stored))
}

/// The settings as callers see them: secrets left out.
pub fn public_view(fields: &[ConfigField], stored: &Value) -> Value {
    let mut out = Map::new();
    for field in fields {
        if field.field_type == FieldType::Secret {
            continue;
        }
        if let Some(v) = stored.get(&field.name) {
            out.insert(field.name.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The names of the secret settings that hold a value.
pub fn secrets_set(fields: &[ConfigField], stored: &Value) -> Vec<String> {
    fields
        .iter()
        .filter(|f| f.field_type == FieldType::Secret)
        .filter(|f| stored.get(&f.name).is_some_and(is_sealed))
        .map(|f| f.name.clone())
        .collect()
}

/// What a secret setting's sealed value is bound to: its installation and its name.
fn binding(installation: Uuid, name: &str) -> String {
    format!("installed_plugins.config:{installation}:{name}")
}

/// The plain value of a secret setting, for the code that runs the plugin.
pub fn reveal(
    stored: &Value,
    name: &str,
    key: &Secret,
    installation: Uuid,
) -> AppResult<Option<String>> {
    let Some(encoded) = stored
        .get(name)
        .and_then(|v| v.get(SEALED))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let sealed = STANDARD.decode(encoded).map_err(AppError::internal)?;
    let plain =
        secrets::decrypt(key, &sealed, &binding(installation, name)).map_err(AppError::internal)?;
    String::from_utf8(plain)
        .map(Some)
        .map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::catalogue::shipped;

    fn key() -> Secret {
        Secret::new(vec![7u8; 32])
    }

    const HERE: Uuid = Uuid::from_u128(1);

    fn http_fields() -> Vec<ConfigField> {
        shipped()
            .unwrap()
            .into_iter()
            .find(|m| m.name == "http-request")
            .unwrap()
            .config
    }

    fn field_of(e: AppError) -> String {
        match e {
            AppError::BadUserInput { field, .. } => field,
            other => panic!("not a bad input: {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_in_and_secrets_are_sealed_and_hidden() {
        let fields = http_fields();
        let given =
            json!({ "baseUrl": "https://api.example.com", "authorization": "Bearer s3cret" });
        let stored = prepare(&fields, &given, None, &key(), HERE).unwrap();
        assert_eq!(stored["timeoutSeconds"], json!(10));
        assert!(!stored.to_string().contains("s3cret"));
        assert_eq!(
            reveal(&stored, "authorization", &key(), HERE)
                .unwrap()
                .as_deref(),
            Some("Bearer s3cret")
        );
        assert!(
            reveal(&stored, "authorization", &key(), Uuid::from_u128(2)).is_err(),
            "copied to another installation, it does not open"
        );
        let public = public_view(&fields, &stored);
        assert!(public.get("authorization").is_none());
        assert_eq!(public["baseUrl"], json!("https://api.example.com"));
        assert_eq!(
            secrets_set(&fields, &stored),
            vec!["authorization".to_string()]
        );
    }

    #[test]
    fn a_secret_left_out_on_change_is_kept_and_null_removes_it() {
        let fields = http_fields();
        let first = prepare(
            &fields,
            &json!({ "baseUrl": "https://a.example", "authorization": "k1" }),
            None,
            &key(),
            HERE,
        )
        .unwrap();
        let kept = prepare(
            &fields,
            &json!({ "baseUrl": "https://b.example" }),
            Some(&first),
            &key(),
            HERE,
        )
        .unwrap();
        assert_eq!(
            reveal(&kept, "authorization", &key(), HERE)
                .unwrap()
                .as_deref(),
            Some("k1")
        );
        let removed = prepare(
            &fields,
            &json!({ "baseUrl": "https://b.example", "authorization": null }),
            Some(&first),
            &key(),
            HERE,
        )
        .unwrap();
        assert!(secrets_set(&fields, &removed).is_empty());
    }

    #[test]
    fn bad_settings_name_the_field() {
        let fields = http_fields();
        let cases = [
            (json!({}), "config.baseUrl"),
            (json!({ "baseUrl": "ftp://x" }), "config.baseUrl"),
            (
                json!({ "baseUrl": "https://x", "timeoutSeconds": 0 }),
                "config.timeoutSeconds",
            ),
            (
                json!({ "baseUrl": "https://x", "timeoutSeconds": 1.5 }),
                "config.timeoutSeconds",
            ),
            (
                json!({ "baseUrl": "https://x", "defaultHeaders": "A: b" }),
                "config.defaultHeaders",
            ),
            (
                json!({ "baseUrl": "https://x", "authorization": "" }),
                "config.authorization",
            ),
            (
                json!({ "baseUrl": "https://x", "colour": "red" }),
                "config.colour",
            ),
            (json!([1, 2]), "config"),
        ];
        for (given, field) in cases {
            let e = prepare(&fields, &given, None, &key(), HERE).unwrap_err();
            assert_eq!(field_of(e), field, "{given}");
        }
    }
}
