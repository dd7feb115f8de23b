//! Input validation shared by every mutation: each failure is BAD_USER_INPUT naming the
//! input field, and nothing is changed.

use crate::error::{AppError, AppResult};

/// A numeric setting `name` read through `var` (start-up configuration): `default` when
/// unset; refused, naming the variable, when it is not a whole number, or is 0 where
/// `zero_ok` is false.
pub fn setting(
    var: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: u64,
    zero_ok: bool,
) -> Result<u64, String> {
    let Some(value) = var(name) else {
        return Ok(default);
    };
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| zero_ok || *n > 0)
        .ok_or_else(|| {
            let kind = if zero_ok {
                "a whole number"
            } else {
                "a positive number"
            };
            format!("{name} must be {kind}, got {value:?}")
        })
}

/// A required name: trimmed, not empty, at most `max` characters (the column's limit).
pub fn name(field: &str, value: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::bad_input(
            field,
            format!("{field} must not be empty"),
        ));
    }
    text(field, value, max)
}

/// Optional or free text: at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let count = value.chars().count();
    if count > max {
        return Err(AppError::bad_input(
            field,
            format!("{field} must be at most {max} characters (got {count})"),
        ));
    }
    Ok(value.to_string())
}

/// An email address, normalized to lower case (emails are compared case-insensitively).
pub fn email(field: &str, value: &str) -> AppResult<String> {
    let value = value.trim().to_lowercase();
    let bad = || AppError::bad_input(field, format!("{field} is not a valid email address"));
    if value.chars().count() > 255 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = value.split_once('@').ok_or_else(bad)?;
    let local_ok =
        !local.is_empty() && local.len() <= 64 && !local.contains(['<', '>', ',', ';', '"']);
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(value)
    } else {
        Err(bad())
    }
}

/// A password: 8 to 1024 bytes.
pub fn password(field: &str, value: &str) -> AppResult<()> {
    match value.len() {
        8..=1024 => Ok(()),
        n => Err(AppError::bad_input(
            field,
            format!("{field} must be 8 to 1024 bytes long (got {n})"),
        )),
    }
}

/// Truncates text kept for information only (user agents) to a column's limit.
pub fn truncate(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("email", " Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@@example.com",
            "ada@-x.com",
            "ada@x..com",
        ] {
            let e = email("email", bad).unwrap_err();
            assert_eq!(e.code(), "BAD_USER_INPUT", "{bad}");
        }
    }

    #[test]
    fn names_and_passwords() {
        assert!(name("name", "   ", 255).is_err());
        assert!(name("name", &"x".repeat(256), 255).is_err());
        assert_eq!(name("name", " Ada ", 255).unwrap(), "Ada");
        assert!(password("password", "short").is_err());
        assert!(password("password", &"x".repeat(1025)).is_err());
        assert!(password("password", "longenough").is_ok());
    }
}
