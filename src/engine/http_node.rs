//! The HTTP_REQUEST node. The URL's host is resolved first and every address it resolves
//! to must be public (not private, loopback, link-local, shared, multicast or reserved)
//! unless allow-listed (`WEFT_HTTP_ALLOWED_NETWORKS`); the request then goes to exactly the
//! addresses checked (no second lookup an attacker could answer differently), and
//! redirects are not followed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde_json::{Value, json};

use super::config::Network;
use super::template::Vars;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer's body kept.
const MAX_BODY: usize = 1024 * 1024;

/// Sends the request the node describes; the outputs are `status`, `body` and `json`.
pub async fn run(
    config: &Value,
    vars: &Vars,
    allowed: &[Network],
    longest: Duration,
) -> Result<Value, String> {
    let method = config
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let url_text = vars.render(config.get("url").and_then(Value::as_str).unwrap_or(""))?;
    let url = reqwest::Url::parse(url_text.trim()).map_err(|e| format!("bad url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https URLs are fetched, not {}",
            url.scheme()
        ));
    }
    let host = url.host_str().ok_or("the url has no host")?.to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let timeout = config
        .get("timeoutMs")
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_TIMEOUT)
        .min(longest);
    let addrs = resolve(&host, port, timeout).await?;
    if let Some(refused) = addrs.iter().find(|a| !permitted(a.ip(), allowed)) {
        return Err(format!(
            "{host} resolves to {}, a private, loopback or link-local address: refused \
             (allow it with WEFT_HTTP_ALLOWED_NETWORKS)",
            refused.ip()
        ));
    }
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(bare_host, &addrs)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot prepare the request: {e}"))?;
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("unknown method {method:?}"))?;
    let mut request = client.request(method, url);
    if let Some(Value::Object(headers)) = config.get("headers") {
        for (name, value) in headers {
            let value = vars.render(value.as_str().unwrap_or(""))?;
            request = request.header(name.as_str(), value);
        }
    }
    match config.get("body") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => request = request.body(vars.render(s)?),
        Some(other) => {
            let body = vars.render_value(other)?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
    }
    let mut response = request.send().await.map_err(describe)?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await.map_err(describe)? {
        body.extend_from_slice(&piece);
        if body.len() > MAX_BODY {
            return Err(format!("the answer is larger than {MAX_BODY} bytes"));
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let json = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
    Ok(json!({ "status": status, "body": body, "json": json }))
}

fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "the request timed out".into()
    } else if error.is_connect() {
        "cannot connect".into()
    } else {
        format!("the request failed: {}", error.without_url())
    }
}

async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((bare, port)))
        .await
        .map_err(|_| format!("looking up {host} timed out"))?
        .map_err(|_| format!("cannot resolve {host}"))?;
    let addrs: Vec<SocketAddr> = found.collect();
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    Ok(addrs)
}

/// Whether the node may connect to `ip`.
pub fn permitted(ip: IpAddr, allowed: &[Network]) -> bool {
    allowed.iter().any(|n| n.contains(ip)) || is_public(ip)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // 64:ff9b::/96 (NAT64) reaches the IPv4 address it embeds.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240) // reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.0.0.5",
            "172.16.3.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!permitted(ip.parse().unwrap(), &[]), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert!(permitted(ip.parse().unwrap(), &[]), "{ip}");
        }
        let allowed = [Network::parse("127.0.0.0/8").unwrap()];
        assert!(permitted("127.0.0.1".parse().unwrap(), &allowed));
        assert!(!permitted("10.0.0.1".parse().unwrap(), &allowed));
    }
}
