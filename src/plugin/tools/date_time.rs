//! `date-time`: the current time in the installation's time zone, and dates shifted.

use chrono::{Datelike, Duration, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::{ToolOutput, setting_str};

pub fn now(settings: &Map<String, Value>) -> Result<ToolOutput, String> {
    let zone_name = setting_str(settings, "timezone").unwrap_or("UTC");
    let zone: Tz = zone_name
        .parse()
        .map_err(|_| format!("{zone_name:?} is not an IANA time zone"))?;
    let now = Utc::now().with_timezone(&zone);
    let result = json!({
        "iso": now.to_rfc3339(),
        "date": now.format("%Y-%m-%d").to_string(),
        "time": now.format("%H:%M:%S").to_string(),
        "weekday": now.format("%A").to_string(),
        "unix": now.timestamp(),
        "timezone": zone_name,
    });
    let text = match setting_str(settings, "format").unwrap_or("RFC3339") {
        "DATE" => now.format("%Y-%m-%d").to_string(),
        "DATETIME" => now.format("%Y-%m-%d %H:%M:%S").to_string(),
        "UNIX" => now.timestamp().to_string(),
        _ => now.to_rfc3339(),
    };
    Ok(ToolOutput {
        text: format!("{text} ({}, {zone_name})", now.format("%A")),
        result,
    })
}

pub fn shift(arguments: &Map<String, Value>) -> Result<ToolOutput, String> {
    let given = arguments.get("date").and_then(Value::as_str).unwrap_or("");
    let date = NaiveDate::parse_from_str(given.get(..10).unwrap_or(given), "%Y-%m-%d")
        .map_err(|_| format!("{given:?} is not a date (YYYY-MM-DD)"))?;
    let amount = arguments.get("amount").and_then(Value::as_i64).unwrap_or(0);
    if amount.abs() > 100_000 {
        return Err("amount is too large".into());
    }
    let shifted = match arguments.get("unit").and_then(Value::as_str) {
        Some("WEEKS") => date.checked_add_signed(Duration::weeks(amount)),
        Some("MONTHS") => {
            let months = Months::new(amount.unsigned_abs() as u32);
            if amount >= 0 {
                date.checked_add_months(months)
            } else {
                date.checked_sub_months(months)
            }
        }
        _ => date.checked_add_signed(Duration::days(amount)),
    }
    .ok_or("the date falls outside the calendar")?;
    let text = shifted.format("%Y-%m-%d").to_string();
    Ok(ToolOutput {
        result: json!({ "date": text, "weekday": shifted.weekday().to_string() }),
        text,
    })
}
