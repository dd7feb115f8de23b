//! Settings of the engine, read from the environment:
//!
//! - `WEFT_WORKERS` (256): runs one instance executes at once (they mostly wait on models);
//!   0 makes an instance that serves the API and watches leases but executes no runs.
//! - `WEFT_RUN_LEASE_SECS` (30): how long a claimed run stays an instance's without a
//!   renewal (renewed every third of it); a run whose lease ran out is finished as FAILED
//!   ("interrupted").
//! - `WEFT_NODE_TIMEOUT_SECS` (300): the longest one node may take.
//! - `WEFT_ECHO_PACE_MS` (40): the pause between the words of the ECHO provider.
//! - `WEFT_HTTP_ALLOWED_NETWORKS`: comma-separated addresses or CIDR networks HTTP_REQUEST
//!   nodes may reach although private, loopback or link-local (e.g. `10.0.0.0/8,127.0.0.1`).
//! - `WEFT_VECTOR_CACHE_MB` (1024): memory for datasets' embeddings held for vector search.
//! - `WEFT_DEMO` (`true`): seed the demo on an empty database (`false` or `--no-demo`: not).

use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub workers: usize,
    pub lease: Duration,
    pub node_timeout: Duration,
    pub echo_pace: Duration,
    pub http_allowed: Vec<Network>,
    pub demo: bool,
    pub vector_cache_mb: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 256,
            lease: Duration::from_secs(30),
            node_timeout: Duration::from_secs(300),
            echo_pace: Duration::from_millis(40),
            http_allowed: Vec::new(),
            demo: true,
            vector_cache_mb: 1024,
        }
    }
}

impl EngineConfig {
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<EngineConfig, String> {
        let defaults = EngineConfig::default();
        let number = |name: &str, default: u64, zero_ok: bool| -> Result<u64, String> {
            match var(name) {
                Some(v) => v
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
                        format!("{name} must be {kind}, got {v:?}")
                    }),
                None => Ok(default),
            }
        };
        let http_allowed = match var("WEFT_HTTP_ALLOWED_NETWORKS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    Network::parse(s).ok_or_else(|| {
                        format!(
                            "WEFT_HTTP_ALLOWED_NETWORKS: {s:?} is not an address or a CIDR network"
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let demo = match var("WEFT_DEMO").as_deref().map(str::trim) {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(v) => return Err(format!("WEFT_DEMO must be true or false, got {v:?}")),
        };
        Ok(EngineConfig {
            workers: number("WEFT_WORKERS", defaults.workers as u64, true)? as usize,
            vector_cache_mb: number(
                "WEFT_VECTOR_CACHE_MB",
                defaults.vector_cache_mb as u64,
                false,
            )? as usize,
            lease: Duration::from_secs(number(
                "WEFT_RUN_LEASE_SECS",
                defaults.lease.as_secs(),
                false,
            )?),
            node_timeout: Duration::from_secs(number(
                "WEFT_NODE_TIMEOUT_SECS",
                defaults.node_timeout.as_secs(),
                false,
            )?),
            echo_pace: Duration::from_millis(number(
                "WEFT_ECHO_PACE_MS",
                defaults.echo_pace.as_millis() as u64,
                true,
            )?),
            http_allowed,
            demo,
        })
    }
}

/// An address range: `10.0.0.0/8`, `fd00::/8`, or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Option<Network> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (
                u128::from(u32::from(n)) << 96,
                u128::from(u32::from(i)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), self.prefix),
            _ => return false,
        };
        if bits == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - u32::from(bits));
        a & mask == b & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one = Network::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            Network::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        assert!(Network::parse("10.0.0.0/33").is_none());
        assert!(Network::parse("example.com").is_none());
    }
}
