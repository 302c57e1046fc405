//! Where a sign-in request comes from, in words for the person holding the phone: the desktop's city and country from a GeoIP file the self-hoster provides, and whether it is on the phone's own network.
//!
//! A phished QR code is one the attacker's computer made: it is rarely on the victim's network,
//! and its city is often not theirs. Neither is proof (a VPN, a phone on mobile data), so the
//! pages say it plainly and make declining the easy choice; they never refuse on it.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{Reader, geoip2};

use crate::apps::Invalid;
use crate::wire::{NetworkMatch, RequestedFrom};

/// The optional GeoIP database, opened once at start.
pub struct Places {
    geoip: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for Places {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Places")
            .field(
                "geoip",
                &self.geoip.as_ref().map(|r| &r.metadata.database_type),
            )
            .finish()
    }
}

impl Places {
    /// No database: the network signal only.
    pub fn none() -> Self {
        Places { geoip: None }
    }

    /// A MaxMind-format City database (GeoLite2-City, GeoIP2-City, or one of the same layout).
    pub fn open(path: &Path) -> Result<Self, Invalid> {
        let reader = Reader::open_readfile(path).map_err(|e| {
            Invalid::new(
                "geoip_database",
                format!(
                    "{} could not be read as a MaxMind DB file: {e}",
                    path.display()
                ),
            )
        })?;
        if !reader.metadata.database_type.contains("City") {
            return Err(Invalid::new(
                "geoip_database",
                format!(
                    "{} is a {:?} database; a City one (GeoLite2-City, GeoIP2-City) is needed",
                    path.display(),
                    reader.metadata.database_type
                ),
            ));
        }
        Ok(Places {
            geoip: Some(reader),
        })
    }

    /// Where the desktop of `session` is, as seen from the phone at `phone`, with place names in
    /// `lang` when the database has them (else English). A session the app's backend started
    /// recorded the backend's address, not the person's: nothing is said of it.
    pub fn of_session(
        &self,
        session: &crate::session::Session,
        phone: IpAddr,
        lang: &str,
    ) -> RequestedFrom {
        let desktop = match session.started_by {
            crate::session::StartedBy::Browser => session.requester.address.as_deref(),
            crate::session::StartedBy::Backend => None,
        };
        self.requested_from(desktop, phone, lang)
    }

    /// Where the desktop at `desktop` is, as seen from the phone at `phone`.
    pub fn requested_from(
        &self,
        desktop: Option<&str>,
        phone: IpAddr,
        lang: &str,
    ) -> RequestedFrom {
        let desktop = desktop.and_then(|a| a.parse::<IpAddr>().ok());
        let (city, country) = desktop
            .and_then(|ip| self.city_of(ip, lang))
            .unwrap_or_default();
        RequestedFrom {
            network: desktop.map_or(NetworkMatch::Unknown, |d| same_network(d, phone)),
            city,
            country,
        }
    }

    fn city_of(&self, ip: IpAddr, lang: &str) -> Option<(Option<String>, Option<String>)> {
        let found = self.geoip.as_ref()?.lookup(ip).ok()?;
        let city: geoip2::City = found.decode().ok()??;
        let named = |names: &geoip2::Names| name_in(names, lang).map(str::to_owned);
        let place = (named(&city.city.names), named(&city.country.names));
        (place.0.is_some() || place.1.is_some()).then_some(place)
    }
}

/// A place's name in `lang`, else in English.
fn name_in<'a>(names: &geoip2::Names<'a>, lang: &str) -> Option<&'a str> {
    let own = match lang {
        "de" => names.german,
        "es" => names.spanish,
        "fr" => names.french,
        "ja" => names.japanese,
        "pt" => names.brazilian_portuguese,
        _ => None,
    };
    own.or(names.english)
}

/// Whether two addresses are on one network: the same IPv4 /24 (a home or office behind one
/// NAT shows one address) or the same IPv6 /64 (one link). Different families say nothing: a
/// dual-stack home reaches one server over either.
pub fn same_network(a: IpAddr, b: IpAddr) -> NetworkMatch {
    match (a.to_canonical(), b.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let same = a.octets()[..3] == b.octets()[..3];
            if same {
                NetworkMatch::Same
            } else {
                NetworkMatch::Different
            }
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            if a.segments()[..4] == b.segments()[..4] {
                NetworkMatch::Same
            } else {
                NetworkMatch::Different
            }
        }
        _ => NetworkMatch::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_nat_or_one_link_is_one_network() {
        assert_eq!(
            same_network(ip("203.0.113.7"), ip("203.0.113.7")),
            NetworkMatch::Same
        );
        assert_eq!(
            same_network(ip("203.0.113.7"), ip("203.0.113.200")),
            NetworkMatch::Same
        );
        assert_eq!(
            same_network(ip("203.0.113.7"), ip("198.51.100.7")),
            NetworkMatch::Different
        );
        assert_eq!(
            same_network(ip("2001:db8:1:2::1"), ip("2001:db8:1:2:aaaa::9")),
            NetworkMatch::Same
        );
        assert_eq!(
            same_network(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1")),
            NetworkMatch::Different
        );
        assert_eq!(
            same_network(ip("::ffff:203.0.113.7"), ip("203.0.113.9")),
            NetworkMatch::Same,
            "an IPv4-mapped address is its IPv4 one"
        );
        assert_eq!(
            same_network(ip("203.0.113.7"), ip("2001:db8::1")),
            NetworkMatch::Unknown
        );
    }

    #[test]
    fn without_a_database_or_an_address_only_what_is_known_is_said() {
        let places = Places::none();
        let from = places.requested_from(Some("198.51.100.7"), ip("203.0.113.7"), "en");
        assert_eq!(from.network, NetworkMatch::Different);
        assert_eq!((from.city, from.country), (None, None));
        let unknown = places.requested_from(None, ip("203.0.113.7"), "en");
        assert_eq!(unknown.network, NetworkMatch::Unknown);
        let garbage = places.requested_from(Some("not an address"), ip("203.0.113.7"), "en");
        assert_eq!(garbage.network, NetworkMatch::Unknown);
    }
}
