//! `WEFT_ALLOWED_ORIGINS`: the browser origins, besides the server's own, whose pages may
//! call this server — by CORS on every endpoint and by the WebSocket `Origin` check. One
//! list for both, so a page that may fetch may also subscribe.
//!
//! Comma-separated (`http://localhost:5173,https://app.example`), `*` for any. Unset: the
//! server's own origin only. Requests without `Origin` (servers, CLIs) are not from browsers
//! and are not governed by it.

/// The origins allowed to call from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Option<Vec<String>>);

impl AllowedOrigins {
    /// These origins, as written in `WEFT_ALLOWED_ORIGINS`.
    pub fn list<S: AsRef<str>>(origins: &[S]) -> AllowedOrigins {
        AllowedOrigins(Some(
            origins
                .iter()
                .map(|o| normalize(o.as_ref()))
                .filter(|o| !o.is_empty())
                .collect(),
        ))
    }

    /// Reads `WEFT_ALLOWED_ORIGINS` through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> AllowedOrigins {
        match var("WEFT_ALLOWED_ORIGINS") {
            Some(list) => AllowedOrigins::list(&list.split(',').collect::<Vec<_>>()),
            None => AllowedOrigins(None),
        }
    }

    /// Whether a browser page of `origin` may call a server reached as `host`: its own
    /// origin always, and the listed ones (any with `*`).
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = normalize(origin);
        let listed = self
            .0
            .as_ref()
            .is_some_and(|list| list.iter().any(|o| o == "*" || *o == origin));
        let same = host.is_some_and(|host| {
            let bare = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            bare == Some(host.trim().to_ascii_lowercase().as_str())
        });
        listed || same
    }
}

fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_only_by_default() {
        let origins = AllowedOrigins::default();
        assert!(origins.allows("http://localhost:8080", Some("localhost:8080")));
        assert!(!origins.allows("https://evil.example", Some("localhost:8080")));
        assert!(!origins.allows("http://localhost:8080", None));
    }

    #[test]
    fn listed_origins_and_star() {
        let vars = |name: &str| {
            (name == "WEFT_ALLOWED_ORIGINS").then(|| "https://app.example/, http://x:3000".into())
        };
        let origins = AllowedOrigins::from_vars(vars);
        assert!(origins.allows("https://APP.example", Some("api.example")));
        assert!(
            origins.allows("http://api.example", Some("api.example")),
            "its own origin stays allowed beside the list"
        );
        assert!(origins.allows("http://x:3000", None));
        assert!(!origins.allows("https://other.example", Some("api.example")));
        assert!(AllowedOrigins::list(&["*"]).allows("https://whatever", None));
    }
}
