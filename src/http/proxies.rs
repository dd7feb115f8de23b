//! `WEFT_TRUSTED_PROXIES`: addresses or networks of the reverse proxies in front of this
//! server (comma-separated, e.g. `10.0.0.0/8,127.0.0.1`). A request arriving from one of them
//! is attributed to the address its `X-Forwarded-For` names: the nearest address in that
//! list that is not itself a trusted proxy. From anywhere else the header is ignored (anyone
//! can write it), and the TCP peer is the client. The client address is what rate limits
//! count and the audit log records.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::outbound::Network;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    pub fn new(networks: Vec<Network>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    /// Reads `WEFT_TRUSTED_PROXIES` through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<TrustedProxies, String> {
        const NAME: &str = "WEFT_TRUSTED_PROXIES";
        match var(NAME) {
            Some(list) => Network::parse_list(NAME, &list).map(TrustedProxies),
            None => Ok(TrustedProxies::default()),
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address: the peer, or what a trusted proxy says the peer was.
    pub fn client_address(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.ip();
        if !self.trusts(client) {
            return client;
        }
        // Proxies append: the last entries are the nearest hops.
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect();
        for hop in hops.into_iter().rev() {
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn only_trusted_proxies_are_believed() {
        let peer: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let forwarded = headers("198.51.100.7, 10.0.0.9");
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_address(peer, &forwarded),
            "10.0.0.2".parse::<IpAddr>().unwrap(),
            "untrusted: the header is ignored"
        );
        let proxies = TrustedProxies::new(vec![Network::parse("10.0.0.0/8").unwrap()]);
        assert_eq!(
            proxies.client_address(peer, &forwarded),
            "198.51.100.7".parse::<IpAddr>().unwrap(),
            "the nearest address that is not a proxy"
        );
        // A client's own forged entries stand left of the one the proxy appended.
        let forged = headers("1.2.3.4, 203.0.113.5");
        assert_eq!(
            proxies.client_address(peer, &forged),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            proxies.client_address(peer, &HeaderMap::new()),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }
}
