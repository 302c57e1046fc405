//! Who the client is: the peer, or behind trusted proxies the nearest address in their forwarding header that is not theirs.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Proxies whose forwarding header is believed; everyone else is the client themselves.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    pub nets: Vec<IpNet>,
    pub header: String,
}

impl TrustedProxies {
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether every address is trusted: then anyone can name themselves anyone.
    pub fn trusts_everyone(&self) -> bool {
        self.nets.iter().any(|net| net.prefix_len() == 0)
    }

    /// The peer, unless it is a trusted proxy: then the nearest address in the forwarding header
    /// that is not one of ours (right to left, since each proxy appends what it saw). Addresses
    /// are canonical: an IPv4 peer on a dual-stack listener (`::ffff:10.0.0.1`) is `10.0.0.1`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all(self.header.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop_address(hop) {
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
                // Garbage before any untrusted address: stop at the last hop we could vouch for.
                None => return client,
            }
        }
        client
    }
}

/// One entry of a forwarding header: `203.0.113.5`, `203.0.113.5:4711`, `2001:db8::1` or
/// `[2001:db8::1]:443` (proxies write ports, and brackets around IPv6), canonical.
fn hop_address(hop: &str) -> Option<IpAddr> {
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .or_else(|_| hop.trim_matches(['[', ']']).parse::<IpAddr>())
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let proxies = TrustedProxies {
            nets: vec!["10.0.0.0/8".parse().unwrap()],
            header: "x-forwarded-for".into(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.9, 203.0.113.5, 10.0.0.3".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        // The client is the nearest untrusted hop; anything left of it could be forged.
        assert_eq!(
            proxies.client(proxy, &headers),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            proxies.client(stranger, &headers),
            stranger,
            "an untrusted peer's header is ignored"
        );
        assert_eq!(proxies.client(proxy, &HeaderMap::new()), proxy);
        headers.insert("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(proxies.client(proxy, &headers), proxy);
    }

    #[test]
    fn forwarded_addresses_with_ports_and_mapped_peers_are_understood() {
        let proxies = TrustedProxies {
            nets: vec!["10.0.0.0/8".parse().unwrap()],
            header: "x-forwarded-for".into(),
        };
        let mapped_proxy: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let mut headers = HeaderMap::new();
        for (hop, client) in [
            ("198.51.100.9:4711", "198.51.100.9"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
            ("::ffff:198.51.100.9", "198.51.100.9"),
            ("198.51.100.9, 10.0.0.3:80", "198.51.100.9"),
        ] {
            headers.insert("x-forwarded-for", hop.parse().unwrap());
            assert_eq!(
                proxies.client(mapped_proxy, &headers),
                client.parse::<IpAddr>().unwrap(),
                "{hop}"
            );
        }
        let mapped_stranger: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            proxies.client(mapped_stranger, &headers),
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "shown as the IPv4 address it is"
        );
        assert!(!proxies.trusts_everyone());
        let everyone = TrustedProxies {
            nets: vec!["0.0.0.0/0".parse().unwrap()],
            header: "x-forwarded-for".into(),
        };
        assert!(everyone.trusts_everyone());
    }
}
