//! The one outbound guard: every request to a URL a workspace controls (model providers'
//! chat and embeddings, HTTP_REQUEST nodes, MCP servers, plugin tools) goes through a client
//! made here.
//!
//! - `WEFT_HTTP_ALLOWED_NETWORKS`: comma-separated addresses or CIDR networks that may be
//!   reached although private, loopback or link-local (e.g. `10.0.0.0/8,127.0.0.1` for a
//!   model server on the same host). Unset: none.
//!
//! The rule a reader must not break: a host is resolved by the guard's resolver, which refuses
//! the whole name when any of its addresses is not public and not allow-listed, and the
//! connection then goes to exactly the addresses checked (no second lookup an attacker could
//! answer differently). URLs naming an address directly never reach a resolver, so
//! `check_url` is called before each request. Redirects are not followed and no proxy from
//! the environment is used.

mod network;

use std::error::Error as StdError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub use network::Network;

/// The networks outbound requests may reach although not public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundConfig {
    pub allowed: Vec<Network>,
}

impl OutboundConfig {
    /// Reads `WEFT_HTTP_ALLOWED_NETWORKS` through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<OutboundConfig, String> {
        const NAME: &str = "WEFT_HTTP_ALLOWED_NETWORKS";
        let allowed = match var(NAME) {
            Some(list) => Network::parse_list(NAME, &list)?,
            None => Vec::new(),
        };
        Ok(OutboundConfig { allowed })
    }

    /// Whether a request may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        permitted(ip, &self.allowed)
    }

    /// A client for URLs a workspace controls: guarded resolution, no redirects, no proxy.
    /// Share it: it keeps connections to the hosts it reached.
    pub fn client(&self, connect_timeout: Duration) -> reqwest::Client {
        self.client_builder()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .build()
            .unwrap_or_else(|e| {
                // Building fails only when the TLS backend cannot start; a client that can
                // reach nothing is then the safe answer.
                tracing::error!(error = %e, "cannot build the outbound HTTP client");
                reqwest::Client::builder()
                    .dns_resolver(Arc::new(Refusing))
                    .no_proxy()
                    .build()
                    .unwrap_or_default()
            })
    }

    /// The builder of `client`, for callers that set more (a timeout per request kind).
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                config: self.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    }

    /// Refuses a URL that is not http(s), or whose host is an address that may not be
    /// reached (names are checked when they are resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused(format!(
                "only http and https URLs are fetched, not {}",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| Refused("the url has no host".into()))?;
        match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => self.check_ip(url, ip),
            // A name: checked when the guard's resolver looks it up.
            Err(_) => Ok(()),
        }
    }

    fn check_ip(&self, url: &reqwest::Url, ip: IpAddr) -> Result<(), Refused> {
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Refused::address(url.host_str().unwrap_or(""), ip))
        }
    }
}

/// A request the guard would not let out; the message names the host, never a path or a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl Refused {
    fn address(host: &str, ip: IpAddr) -> Refused {
        Refused(format!(
            "{host} resolves to {ip}, a private, loopback or link-local address: refused \
             (allow it with WEFT_HTTP_ALLOWED_NETWORKS)"
        ))
    }

    /// The guard's refusal inside a transport error, if that is what it was.
    pub fn within(error: &reqwest::Error) -> Option<Refused> {
        let mut source: Option<&(dyn StdError + 'static)> = error.source();
        while let Some(e) = source {
            if let Some(refused) = e.downcast_ref::<Refused>() {
                return Some(refused.clone());
            }
            source = e.source();
        }
        None
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Refused {}

/// Resolves like the system, then refuses names with any address that is not permitted.
struct GuardedResolver {
    config: OutboundConfig,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let config = self.config.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| Refused(format!("cannot resolve {host}")))?
                .collect();
            if found.is_empty() {
                return Err(Box::new(Refused(format!("{host} has no address")))
                    as Box<dyn StdError + Send + Sync>);
            }
            if let Some(refused) = found.iter().find(|a| !config.permits(a.ip())) {
                return Err(Box::new(Refused::address(&host, refused.ip()))
                    as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

/// Resolves nothing: the client of last resort.
struct Refusing;

impl Resolve for Refusing {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            Err(Box::new(Refused(format!(
                "{host}: outbound requests are unavailable"
            ))) as Box<dyn StdError + Send + Sync>)
        })
    }
}

/// Whether `ip` may be reached: public, or in an allowed network.
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

    #[test]
    fn urls_naming_addresses_are_checked_before_any_lookup() {
        let config = OutboundConfig::default();
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://[::1]/v1",
            "http://169.254.169.254/latest",
            "http://[::ffff:10.0.0.1]/",
        ] {
            let url = reqwest::Url::parse(url).unwrap();
            assert!(config.check_url(&url).is_err(), "{url}");
        }
        assert!(
            config
                .check_url(&reqwest::Url::parse("file:///etc/passwd").unwrap())
                .is_err()
        );
        assert!(
            config
                .check_url(&reqwest::Url::parse("https://api.openai.com/v1").unwrap())
                .is_ok()
        );
        let local = OutboundConfig {
            allowed: vec![Network::parse("127.0.0.1").unwrap()],
        };
        assert!(
            local
                .check_url(&reqwest::Url::parse("http://127.0.0.1:11434/v1").unwrap())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_never_connect() {
        let client = OutboundConfig::default().client(Duration::from_secs(2));
        let error = client
            .get("http://localhost:9/")
            .send()
            .await
            .expect_err("refused");
        let refused = Refused::within(&error).expect("the guard refused it");
        assert!(refused.0.contains("localhost resolves to"), "{refused}");
    }
}
