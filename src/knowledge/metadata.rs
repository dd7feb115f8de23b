//! Document metadata and the filters searches apply to it.
//!
//! A document's metadata is a JSON object of at most [`MAX_KEYS`] keys, each holding a
//! string, a number, a boolean or a date (a string: `2024-05-01`, midnight UTC, or an RFC
//! 3339 date-time with its offset, `2024-05-01T09:30:00+02:00`). A filter is a list of
//! conditions that must all hold: `{key, eq: value}`, `{key, in: [values]}` or
//! `{key, range: {gt, gte, lt, lte}}` with numbers or dates as bounds. It is checked here
//! and evaluated in PostgreSQL (`weft_metadata_matches`, migration 000027) before ranking.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Keys a document's metadata holds at most.
pub const MAX_KEYS: usize = 50;
/// The longest key, in characters.
const MAX_KEY_CHARS: usize = 64;
/// The longest string value, in characters.
const MAX_VALUE_CHARS: usize = 1000;
/// Conditions a filter holds at most.
const MAX_CONDITIONS: usize = 20;
/// Values an `in` condition lists at most.
const MAX_IN_VALUES: usize = 100;
/// PostgreSQL's largest offset from UTC is 15:59.
const MAX_OFFSET_SECONDS: i32 = 16 * 3600 - 60;

fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.chars().count() <= MAX_KEY_CHARS
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "metadata key {key:?} must be 1 to {MAX_KEY_CHARS} letters, digits, '_', '-' or '.'"
        ))
    }
}

/// `s` read as a date: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 date-time. `Ok(None)`
/// when `s` does not have the shape of one; an error when it has the shape but is no date
/// (`2024-02-30`), so that every stored value of that shape is one PostgreSQL can read.
fn as_time(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let date_shaped = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10);
    if !date_shaped {
        return Ok(None);
    }
    let bad = || format!("{s:?} is not a valid date (YYYY-MM-DD or RFC 3339 with an offset)");
    if b.len() == 10 {
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
        if date.format("%Y").to_string() == "0000" {
            return Err(bad());
        }
        return Ok(date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    if !date_time_shaped(b) {
        return Ok(None);
    }
    let parsed = DateTime::parse_from_rfc3339(s).map_err(|_| bad())?;
    if parsed.offset().local_minus_utc().abs() > MAX_OFFSET_SECONDS || s.starts_with("0000") {
        return Err(bad());
    }
    Ok(Some(parsed.with_timezone(&Utc)))
}

/// Whether `b` (which starts with a date) has the shape of an RFC 3339 date-time, as
/// `weft_metadata_time` reads one: `YYYY-MM-DD[Tt ]hh:mm:ss[.fraction](Z|±hh:mm)`.
fn date_time_shaped(b: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !matches!(b[10], b'T' | b't' | b' ')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let fraction = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if fraction == 0 {
            return false;
        }
        rest = &rest[1 + fraction..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Checks a document's metadata; the error names what is wrong.
pub fn check(value: &Value) -> Result<Map<String, Value>, String> {
    let map = match value {
        Value::Object(map) => map,
        Value::Null => return Ok(Map::new()),
        _ => return Err("metadata must be an object of keys and values".into()),
    };
    if map.len() > MAX_KEYS {
        return Err(format!("metadata holds at most {MAX_KEYS} keys"));
    }
    for (key, value) in map {
        check_key(key)?;
        match value {
            Value::String(s) => {
                if s.chars().count() > MAX_VALUE_CHARS {
                    return Err(format!(
                        "metadata {key:?} is longer than {MAX_VALUE_CHARS} characters"
                    ));
                }
                as_time(s).map_err(|e| format!("metadata {key:?}: {e}"))?;
            }
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => {}
            Value::Bool(_) => {}
            _ => {
                return Err(format!(
                    "metadata {key:?} must be a string, a number, a boolean or a date"
                ));
            }
        }
    }
    Ok(map.clone())
}

/// A checked filter, in the form `weft_metadata_matches` reads.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataFilter(Value);

impl MetadataFilter {
    /// The filter as `weft_metadata_matches` takes it.
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// Reads a filter: a list of conditions (an empty list or null is no filter).
    pub fn parse(value: &Value) -> Result<Option<MetadataFilter>, String> {
        let conditions = match value {
            Value::Null => return Ok(None),
            Value::Array(list) => list,
            _ => return Err("the metadata filter must be a list of conditions".into()),
        };
        if conditions.is_empty() {
            return Ok(None);
        }
        if conditions.len() > MAX_CONDITIONS {
            return Err(format!(
                "a metadata filter holds at most {MAX_CONDITIONS} conditions"
            ));
        }
        let checked = conditions
            .iter()
            .map(condition)
            .collect::<Result<Vec<Value>, String>>()?;
        Ok(Some(MetadataFilter(Value::Array(checked))))
    }
}

fn scalar(key: &str, value: &Value) -> Result<Value, String> {
    match value {
        Value::String(s) if s.chars().count() <= MAX_VALUE_CHARS => Ok(value.clone()),
        Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(value.clone()),
        Value::Bool(_) => Ok(value.clone()),
        _ => Err(format!(
            "the condition on {key:?} compares with a string, a number or a boolean"
        )),
    }
}

/// One condition, checked and put in the SQL function's form.
fn condition(c: &Value) -> Result<Value, String> {
    let map = c
        .as_object()
        .ok_or("each metadata condition is an object {key, eq | in | range}")?;
    let key = map
        .get("key")
        .and_then(Value::as_str)
        .ok_or("each metadata condition needs a key")?;
    check_key(key)?;
    let operators: Vec<&str> = ["eq", "in", "range"]
        .into_iter()
        .filter(|op| map.get(*op).is_some_and(|v| !v.is_null()))
        .collect();
    if let Some(other) = map
        .keys()
        .find(|k| !["key", "eq", "in", "range"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field {other:?} in the condition on {key:?} (eq, in or range)"
        ));
    }
    match operators.as_slice() {
        ["eq"] => Ok(json!({ "key": key, "eq": scalar(key, &map["eq"])? })),
        ["in"] => {
            let values = map["in"]
                .as_array()
                .filter(|v| !v.is_empty() && v.len() <= MAX_IN_VALUES)
                .ok_or_else(|| format!("\"in\" on {key:?} lists 1 to {MAX_IN_VALUES} values"))?;
            let values = values
                .iter()
                .map(|v| scalar(key, v))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "key": key, "in": values }))
        }
        ["range"] => range(key, &map["range"]),
        _ => Err(format!(
            "the condition on {key:?} needs exactly one of eq, in or range"
        )),
    }
}

fn range(key: &str, range: &Value) -> Result<Value, String> {
    let map = range
        .as_object()
        .ok_or_else(|| format!("the range on {key:?} is an object {{gt, gte, lt, lte}}"))?;
    if let Some(other) = map
        .keys()
        .find(|k| !["gt", "gte", "lt", "lte"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown bound {other:?} in the range on {key:?} (gt, gte, lt, lte)"
        ));
    }
    let bounds: Vec<(&String, &Value)> = map.iter().filter(|(_, v)| !v.is_null()).collect();
    if bounds.is_empty() {
        return Err(format!("the range on {key:?} needs at least one bound"));
    }
    let numbers = bounds
        .iter()
        .all(|(_, v)| v.as_f64().is_some_and(f64::is_finite));
    if numbers {
        let bounds: Map<String, Value> = bounds
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        return Ok(json!({ "key": key, "number": bounds }));
    }
    let mut times = Map::new();
    for (bound, value) in bounds {
        let time = value
            .as_str()
            .map(as_time)
            .transpose()?
            .flatten()
            .ok_or_else(|| {
                format!("the bounds of the range on {key:?} are all numbers or all dates")
            })?;
        times.insert(
            bound.clone(),
            Value::String(time.to_rfc3339_opts(SecondsFormat::Micros, true)),
        );
    }
    Ok(json!({ "key": key, "time": times }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_holds_strings_numbers_booleans_and_dates() {
        let ok = json!({"lang": "en", "year": 2024, "score": 0.5, "public": true,
                        "published": "2024-05-01", "at": "2024-05-01T09:30:00+02:00"});
        assert_eq!(check(&ok).map(|m| m.len()), Ok(6));
        assert_eq!(check(&Value::Null).map(|m| m.len()), Ok(0));
        for bad in [
            json!(["a"]),
            json!({"nested": {"a": 1}}),
            json!({"list": [1]}),
            json!({"none": null}),
            json!({"bad key": 1}),
            json!({"": 1}),
            json!({"day": "2024-02-30"}),
            json!({"at": "2024-05-01T09:30:00+23:00"}),
            json!({"at": "2024-05-01T25:30:00Z"}),
        ] {
            assert!(check(&bad).is_err(), "{bad} accepted");
        }
        // Strings that only start like a date are plain strings.
        assert!(check(&json!({"note": "2024-05-01 meeting"})).is_ok());
        assert!(check(&json!({"note": "2024-05-01T09:30:00 local"})).is_ok());
        assert_eq!(
            as_time("2024-05-01 09:30:00.5+02:00").map(|t| t.map(|t| t.to_rfc3339())),
            Ok(Some("2024-05-01T07:30:00.500+00:00".to_string()))
        );
        let many: Map<String, Value> = (0..=MAX_KEYS)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        assert!(check(&Value::Object(many)).is_err());
    }

    #[test]
    fn filters_are_checked_and_dates_normalized() {
        let filter = MetadataFilter::parse(&json!([
            {"key": "lang", "eq": "en"},
            {"key": "year", "in": [2023, 2024]},
            {"key": "score", "range": {"gte": 0.5, "lt": 1}},
            {"key": "published", "range": {"gte": "2024-05-01", "lt": "2024-06-01T02:00:00+02:00"}},
        ]))
        .map(|f| f.map(|f| f.as_json().clone()));
        assert_eq!(
            filter,
            Ok(Some(json!([
                {"key": "lang", "eq": "en"},
                {"key": "year", "in": [2023, 2024]},
                {"key": "score", "number": {"gte": 0.5, "lt": 1}},
                {"key": "published", "time": {"gte": "2024-05-01T00:00:00.000000Z",
                                               "lt": "2024-06-01T00:00:00.000000Z"}},
            ])))
        );
        assert_eq!(MetadataFilter::parse(&json!([])), Ok(None));
        assert_eq!(MetadataFilter::parse(&Value::Null), Ok(None));
        for bad in [
            json!({"key": "a", "eq": 1}),
            json!([{"eq": 1}]),
            json!([{"key": "a"}]),
            json!([{"key": "a", "eq": 1, "in": [1]}]),
            json!([{"key": "a", "eq": [1]}]),
            json!([{"key": "a", "in": []}]),
            json!([{"key": "a", "range": {}}]),
            json!([{"key": "a", "range": {"gt": 1, "lt": "2024-01-01"}}]),
            json!([{"key": "a", "range": {"gt": "soon"}}]),
            json!([{"key": "a", "range": {"after": 1}}]),
            json!([{"key": "a", "like": "x"}]),
        ] {
            assert!(MetadataFilter::parse(&bad).is_err(), "{bad} accepted");
        }
    }
}
