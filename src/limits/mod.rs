//! Rate limits: which windows each operation counts against, how many streams may be open, when an HTTP/2 connection is idle, and who the client is behind proxies.

mod counters;
mod idle;
mod proxies;
mod streams;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

pub use counters::{Counter, MemoryCounter, RedisCounter, counter};
pub use idle::Activity;
pub use proxies::TrustedProxies;
pub use streams::{OpenStreams, StreamSlot};

use crate::secret;
use crate::session::StartedBy;

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
    /// PINs offered to PIN bridges per client, right or wrong: beside the per-session lock, so
    /// that one network cannot guess across many sessions.
    pub pin_per_client: Rate,
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
            pin_per_client: rate(20, 600),
            ipv6_prefix: 64,
            streams_per_session: 10,
            streams_per_browser: 10,
            streams_per_client: 100,
        }
    }
}

/// What a request does, as far as the limits go.
#[derive(Clone, Copy, Debug)]
pub enum Operation<'a> {
    /// Starting a session: the API's two inits and the desktop page's new code.
    Start { app_id: &'a str, by: StartedBy },
    /// The desktop asking after its session (poll, stream, cancel), with the polling token it sent.
    Status { polling_token: Option<&'a str> },
    /// The phone acting on a session: the API's phone calls and the approval page alike.
    Phone,
    /// A PIN offered to a PIN bridge: a phone request, and one guess.
    Pin,
}

impl<'a> Operation<'a> {
    /// The one table of what each operation counts against. A browser's start counts against
    /// its own network only: the app's key is public, so a budget shared by every browser of the
    /// app could be spent by one of them to lock out the others. The secret key's budget belongs
    /// to the app's backend, which is one client making starts for all of its users.
    fn buckets(self, client: IpAddr) -> Vec<Bucket<'a>> {
        match self {
            Operation::Start {
                by: StartedBy::Browser,
                ..
            } => vec![Bucket::InitClient(client)],
            Operation::Start {
                app_id,
                by: StartedBy::Backend,
            } => vec![Bucket::InitKey(app_id)],
            Operation::Status { polling_token } => std::iter::once(Bucket::StatusClient(client))
                .chain(polling_token.map(Bucket::StatusToken))
                .collect(),
            Operation::Phone => vec![Bucket::PhoneClient(client)],
            Operation::Pin => vec![Bucket::PhoneClient(client), Bucket::PinClient(client)],
        }
    }
}

/// One window a request counts against.
#[derive(Clone, Copy, Debug)]
enum Bucket<'a> {
    StatusToken(&'a str),
    StatusClient(IpAddr),
    InitKey(&'a str),
    InitClient(IpAddr),
    PhoneClient(IpAddr),
    PinClient(IpAddr),
}

impl Bucket<'_> {
    fn rate(&self, limits: &Limits) -> Rate {
        match self {
            Bucket::StatusToken(_) => limits.status_per_token,
            Bucket::StatusClient(_) => limits.status_per_client,
            Bucket::InitKey(_) => limits.init_per_key,
            Bucket::InitClient(_) => limits.init_per_client,
            Bucket::PhoneClient(_) => limits.phone_per_client,
            Bucket::PinClient(_) => limits.pin_per_client,
        }
    }

    /// The limit's name as the settings write it, for the metrics.
    fn name(&self) -> &'static str {
        match self {
            Bucket::StatusToken(_) => "status_per_token",
            Bucket::StatusClient(_) => "status_per_client",
            Bucket::InitKey(_) => "init_per_key",
            Bucket::InitClient(_) => "init_per_client",
            Bucket::PhoneClient(_) => "phone_per_client",
            Bucket::PinClient(_) => "pin_per_client",
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
            Bucket::PinClient(ip) => ("pn", client(ip)),
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

impl Limited {
    /// Whole seconds, rounded up, never 0: what `Retry-After` can say.
    pub fn retry_after_secs(&self) -> u64 {
        u64::try_from(self.retry_after.as_millis().div_ceil(1000))
            .unwrap_or(u64::MAX)
            .max(1)
    }
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

    /// Counts `client`'s request in each window its operation counts against (see
    /// [`Operation::buckets`]); refused if any is over its rate. If the counters cannot be
    /// reached the request passes: limits protect the service, they should not take it down.
    /// The windows are counted at once: on one Redis, one script rather than one per window.
    pub async fn admit(&self, operation: Operation<'_>, client: IpAddr) -> Result<(), Limited> {
        let buckets = operation.buckets(client);
        let windows: Vec<(String, Duration)> = buckets
            .iter()
            .map(|bucket| (bucket.key(&self.limits), bucket.rate(&self.limits).per))
            .collect();
        let hits = self.counter.hit_all(&windows).await;
        let mut wait = None;
        for (bucket, hit) in buckets.iter().zip(hits) {
            let rate = bucket.rate(&self.limits);
            match hit {
                Ok((n, left)) if n > rate.count => {
                    crate::telemetry::rate_limited(bucket.name());
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
        let clock = crate::clock::Clock::by_hand(crate::session::Timestamp::from_millis(1_000));
        let limiter = Limiter::new(limits, Arc::new(MemoryCounter::new(clock.clone())));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(limiter.admit(Operation::Phone, ip).await.is_ok());
        assert!(limiter.admit(Operation::Phone, ip).await.is_ok());
        let refused = limiter.admit(Operation::Phone, ip).await.unwrap_err();
        assert!(
            refused.retry_after <= Duration::from_millis(200) && !refused.retry_after.is_zero()
        );
        assert!(
            limiter.admit(Operation::Phone, other).await.is_ok(),
            "per address"
        );
        clock.turn(Duration::from_millis(199));
        assert!(
            limiter.admit(Operation::Phone, ip).await.is_err(),
            "the window is still open"
        );
        clock.turn(Duration::from_millis(1));
        assert!(limiter.admit(Operation::Phone, ip).await.is_ok());
    }

    #[test]
    fn each_operation_counts_where_the_table_says() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let kinds = |op: Operation<'_>| {
            op.buckets(ip)
                .iter()
                .map(|b| b.key(&Limits::default())[..2].to_owned())
                .collect::<Vec<_>>()
        };
        let browser = Operation::Start {
            app_id: "shop",
            by: StartedBy::Browser,
        };
        let backend = Operation::Start {
            app_id: "shop",
            by: StartedBy::Backend,
        };
        assert_eq!(
            kinds(browser),
            ["ic"],
            "a browser spends its own network's budget"
        );
        assert_eq!(kinds(backend), ["ik"], "the secret key spends the app's");
        let polled = Operation::Status {
            polling_token: Some("pt_x"),
        };
        assert_eq!(kinds(polled), ["sc", "st"]);
        let unnamed = Operation::Status {
            polling_token: None,
        };
        assert_eq!(kinds(unnamed), ["sc"]);
        assert_eq!(kinds(Operation::Phone), ["pc"]);
        assert_eq!(kinds(Operation::Pin), ["pc", "pn"]);
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
}
