//! The CONDITION node: `{ logic: and|or, conditions: [{ variable, operator, value }] }`.
//! `variable` names a value (`llm.text` or `{{llm.text}}`); `value` may itself be a template.

use serde_json::Value;

use super::template::Vars;

/// Whether the condition holds, or why it cannot be evaluated.
pub fn evaluate(config: &Value, vars: &Vars) -> Result<bool, String> {
    let any = config.get("logic").and_then(Value::as_str) == Some("or");
    let conditions = config
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or("the node has no conditions")?;
    let mut results = Vec::with_capacity(conditions.len());
    for condition in conditions {
        let variable = condition
            .get("variable")
            .and_then(Value::as_str)
            .unwrap_or("");
        let left = vars.lookup(variable).cloned().unwrap_or(Value::Null);
        let right = match condition.get("value") {
            Some(Value::String(s)) => Value::String(vars.render(s)?),
            Some(other) => other.clone(),
            None => Value::Null,
        };
        let operator = condition
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or("");
        results.push(compare(&left, operator, &right)?);
    }
    Ok(if any {
        results.iter().any(|r| *r)
    } else {
        results.iter().all(|r| *r)
    })
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn equal(left: &Value, right: &Value) -> bool {
    match (number(left), number(right)) {
        (Some(a), Some(b)) if !left.is_string() || !right.is_string() => a == b,
        _ => text(left) == text(right),
    }
}

fn compare(left: &Value, operator: &str, right: &Value) -> Result<bool, String> {
    Ok(match operator {
        "eq" => equal(left, right),
        "ne" => !equal(left, right),
        "contains" => match left {
            Value::Array(items) => items.iter().any(|item| equal(item, right)),
            other => text(other).contains(&text(right)),
        },
        "gt" | "lt" => {
            let (Some(a), Some(b)) = (number(left), number(right)) else {
                return Err(format!(
                    "\"{operator}\" compares numbers: {} and {} are not both numbers",
                    text(left),
                    text(right)
                ));
            };
            if operator == "gt" { a > b } else { a < b }
        }
        "empty" => is_empty(left),
        "not_empty" => !is_empty(left),
        other => return Err(format!("unknown operator {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new(json!({ "query": "refund please" }), json!({ "age": 42 }));
        v.set("http", json!({ "status": 200, "body": "" }));
        v
    }

    fn check(conditions: Value, logic: &str) -> Result<bool, String> {
        evaluate(
            &json!({ "logic": logic, "conditions": conditions }),
            &vars(),
        )
    }

    #[test]
    fn operators() {
        let one = |variable: &str, operator: &str, value: Value| {
            check(
                json!([{ "variable": variable, "operator": operator, "value": value }]),
                "and",
            )
        };
        assert!(one("sys.query", "contains", json!("refund")).unwrap());
        assert!(!one("sys.query", "contains", json!("invoice")).unwrap());
        assert!(one("start.age", "gt", json!("40")).unwrap());
        assert!(one("{{start.age}}", "lt", json!(50)).unwrap());
        assert!(one("http.status", "eq", json!("200")).unwrap());
        assert!(one("http.status", "ne", json!(404)).unwrap());
        assert!(one("http.body", "empty", Value::Null).unwrap());
        assert!(one("missing.value", "empty", Value::Null).unwrap());
        assert!(one("sys.query", "not_empty", Value::Null).unwrap());
        assert!(one("sys.query", "eq", json!("{{sys.query}}")).unwrap());
        assert!(one("sys.query", "gt", json!(1)).is_err());
    }

    #[test]
    fn logic() {
        let conditions = json!([
            { "variable": "sys.query", "operator": "contains", "value": "refund" },
            { "variable": "start.age", "operator": "lt", "value": 18 }
        ]);
        assert!(!check(conditions.clone(), "and").unwrap());
        assert!(check(conditions, "or").unwrap());
    }
}
