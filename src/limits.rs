//! Rate limits: fixed windows counted in memory or in Redis (shared by every instance), and who the client is behind proxies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::HeaderMap;
use ipnet::IpNet;
use redis::Script;
use redis::aio::ConnectionManager;
use serde::Deserialize;

use crate::secret;
use crate::session::StartedBy;
use crate::settings::StoreKind;

/// At most `count` requests per `per`, written `"60/1m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate {
    pub count: u64,
    pub per: Duration,
}

impl TryFrom<String> for Rate {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let problem =
            || format!("{text:?}: expected a rate such as \"60/1m\" (requests per duration)");
        let (count, per) = text.split_once('/').ok_or_else(problem)?;
        let count = count.trim().parse().map_err(|_| problem())?;
        let per = humantime::parse_duration(per.trim()).map_err(|_| problem())?;
        if count == 0 || per.is_zero() {
            return Err(problem());
        }
        Ok(Rate { count, per })
    }
}

/// The `[limits]` settings. Defaults leave room for the SDK's polling (a GET every 3 s, retried
/// on errors) and for many people behind one address.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Status polls and stream opens per polling token.
    pub status_per_token: Rate,
    /// Status polls, stream opens and cancels per client address.
    pub status_per_client: Rate,
    /// Session starts per app through its secret key (its backend): nobody else can spend it.
    pub init_per_key: Rate,
    /// Session starts from browsers (publishable key, the desktop page) per client.
    pub init_per_client: Rate,
    /// Phone requests (context, sign-up, verify, deny) per client.
    pub phone_per_client: Rate,
    /// IPv6 clients are counted by this prefix (a /64 is what one home or phone gets), so one
    /// network's many addresses are one client.
    pub ipv6_prefix: u8,
    /// Status streams open at once for one session, on one instance.
    pub streams_per_session: usize,
    /// Desktop-page streams open at once for one browser session, on one instance.
    pub streams_per_browser: usize,
    /// Streams of any kind open at once from one client, on one instance: so that one network
    /// cannot hold the connections everyone shares (`max_connections`).
    pub streams_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let rate = |count, secs| Rate {
            count,
            per: Duration::from_secs(secs),
        };
        Limits {
            status_per_token: rate(60, 60),
            status_per_client: rate(1200, 60),
            init_per_key: rate(1200, 60),
            init_per_client: rate(60, 60),
            phone_per_client: rate(120, 60),
            ipv6_prefix: 64,
            streams_per_session: 10,
            streams_per_browser: 10,
            streams_per_client: 100,
        }
    }
}

/// What one request counts against.
#[derive(Clone, Copy, Debug)]
pub enum Bucket<'a> {
    StatusToken(&'a str),
    StatusClient(IpAddr),
    InitKey(&'a str),
    InitClient(IpAddr),
    PhoneClient(IpAddr),
}

impl<'a> Bucket<'a> {
    /// What starting a session counts against. A browser's start counts against its own
    /// network only: the app's key is public, so a budget shared by every browser of the app
    /// could be spent by one of them to lock out the others. The secret key's budget belongs to
    /// the app's backend, which is one client making starts for all of its users.
    pub fn for_start(app_id: &'a str, by: StartedBy, client: IpAddr) -> Bucket<'a> {
        match by {
            StartedBy::Browser => Bucket::InitClient(client),
            StartedBy::Backend => Bucket::InitKey(app_id),
        }
    }

    fn rate(&self, limits: &Limits) -> Rate {
        match self {
            Bucket::StatusToken(_) => limits.status_per_token,
            Bucket::StatusClient(_) => limits.status_per_client,
            Bucket::InitKey(_) => limits.init_per_key,
            Bucket::InitClient(_) => limits.init_per_client,
            Bucket::PhoneClient(_) => limits.phone_per_client,
        }
    }

    /// Counters are named by digests, so no token or key ever appears in a counter's name.
    fn key(&self, limits: &Limits) -> String {
        let client = |ip: &IpAddr| secret::digest(&network(*ip, limits.ipv6_prefix).to_string());
        let (kind, value) = match self {
            Bucket::StatusToken(t) => ("st", secret::digest(t)),
            Bucket::StatusClient(ip) => ("sc", client(ip)),
            Bucket::InitKey(k) => ("ik", secret::digest(k)),
            Bucket::InitClient(ip) => ("ic", client(ip)),
            Bucket::PhoneClient(ip) => ("pc", client(ip)),
        };
        format!("{kind}:{}", &value[..32])
    }
}

/// The network a client is counted as: its IPv4 address, or its IPv6 address's `v6_prefix`.
pub fn network(ip: IpAddr, v6_prefix: u8) -> IpNet {
    let ip = ip.to_canonical();
    let prefix = match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => v6_prefix.min(128),
    };
    // The prefix is within the address's length, so this cannot fail.
    IpNet::new(ip, prefix).map_or_else(|_| IpNet::from(ip), |net| net.trunc())
}

/// A refusal: come back after this long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

/// Counts hits in fixed windows: the hit's number in the current window, and the time left in it.
#[async_trait]
pub trait Counter: Send + Sync + 'static {
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), String>;
}

pub struct Limiter {
    limits: Limits,
    counter: Arc<dyn Counter>,
}

impl Limiter {
    pub fn new(limits: Limits, counter: Arc<dyn Counter>) -> Self {
        Self { limits, counter }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Counts the request in each bucket; refused if any is over its rate. If the counters cannot
    /// be reached the request passes: limits protect the service, they should not take it down.
    /// The buckets are counted at once: on Redis, one round trip rather than one per bucket.
    pub async fn check(&self, buckets: &[Bucket<'_>]) -> Result<(), Limited> {
        let hits = futures::future::join_all(buckets.iter().map(|bucket| async move {
            let rate = bucket.rate(&self.limits);
            (
                rate,
                self.counter.hit(&bucket.key(&self.limits), rate.per).await,
            )
        }))
        .await;
        let mut wait = None;
        for (rate, hit) in hits {
            match hit {
                Ok((n, left)) if n > rate.count => {
                    wait = Some(wait.unwrap_or(Duration::ZERO).max(left))
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "rate limit counter unavailable; letting the request through")
                }
            }
        }
        match wait {
            Some(retry_after) => Err(Limited { retry_after }),
            None => Ok(()),
        }
    }
}

/// Windows in this process: for the embedded store's single instance.
#[derive(Default)]
pub struct MemoryCounter {
    windows: Mutex<HashMap<String, (u64, Instant)>>,
}

#[async_trait]
impl Counter for MemoryCounter {
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), String> {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (_, ends)| *ends > now);
        }
        let entry = windows.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok((entry.0, entry.1 - now))
    }
}

/// Windows in Redis, so a limit holds across every instance sharing it.
pub struct RedisCounter {
    conn: ConnectionManager,
    prefix: String,
    script: Script,
}

/// The window starts with its first hit and ends by Redis's clock.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}
";

impl RedisCounter {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        // Fails fast like the store: a limit that cannot be counted lets the request through.
        let conn = crate::store::redis_manager(&client)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            script: Script::new(HIT),
        })
    }
}

#[async_trait]
impl Counter for RedisCounter {
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), String> {
        let (n, left): (u64, u64) = self
            .script
            .key(format!("{}:rl:{key}", self.prefix))
            .arg(window.as_millis() as u64)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| e.to_string())?;
        Ok((n, Duration::from_millis(left)))
    }
}

/// The counter that fits the store: Redis counters for a Redis store, else this process's.
pub async fn counter(kind: &StoreKind, prefix: &str) -> Result<Arc<dyn Counter>, String> {
    Ok(match kind {
        StoreKind::Memory => Arc::new(MemoryCounter::default()),
        StoreKind::Redis { url } => Arc::new(RedisCounter::connect(url, prefix).await?),
    })
}

/// Proxies whose forwarding header is believed; everyone else is the client themselves.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    pub nets: Vec<IpNet>,
    pub header: String,
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
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
    fn rates_are_written_per_duration() {
        assert_eq!(
            Rate::try_from("60/1m".to_owned()),
            Ok(Rate {
                count: 60,
                per: Duration::from_secs(60)
            })
        );
        assert_eq!(
            Rate::try_from(" 5 / 10s ".to_owned()).unwrap().per,
            Duration::from_secs(10)
        );
        for bad in ["60", "x/1m", "0/1m", "5/0s", "5/soon"] {
            assert!(Rate::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_window_counts_then_refuses_then_reopens() {
        let limits = Limits {
            phone_per_client: Rate {
                count: 2,
                per: Duration::from_millis(200),
            },
            ..Limits::default()
        };
        let limiter = Limiter::new(limits, Arc::new(MemoryCounter::default()));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(limiter.check(&[Bucket::PhoneClient(ip)]).await.is_ok());
        assert!(limiter.check(&[Bucket::PhoneClient(ip)]).await.is_ok());
        let refused = limiter.check(&[Bucket::PhoneClient(ip)]).await.unwrap_err();
        assert!(
            refused.retry_after <= Duration::from_millis(200) && !refused.retry_after.is_zero()
        );
        assert!(
            limiter.check(&[Bucket::PhoneClient(other)]).await.is_ok(),
            "per address"
        );
        tokio::time::sleep(Duration::from_millis(220)).await;
        assert!(limiter.check(&[Bucket::PhoneClient(ip)]).await.is_ok());
    }

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
    fn counter_names_never_hold_the_token() {
        let key = Bucket::StatusToken("pt_supersecret").key(&Limits::default());
        assert!(!key.contains("supersecret"));
    }

    #[test]
    fn clients_are_counted_by_network() {
        let limits = Limits::default();
        let key = |ip: &str| Bucket::InitClient(ip.parse().unwrap()).key(&limits);
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff::9"),
            "one /64"
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(
            key("::ffff:192.0.2.7"),
            key("192.0.2.7"),
            "IPv4-mapped is IPv4"
        );
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        let wider = Limits {
            ipv6_prefix: 48,
            ..Limits::default()
        };
        let k48 = |ip: &str| Bucket::PhoneClient(ip.parse().unwrap()).key(&wider);
        assert_eq!(k48("2001:db8:1:2::1"), k48("2001:db8:1:3::1"));
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
