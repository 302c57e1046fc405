//! The bridge's settings: `Leptos.toml` overlaid by `QR_BRIDGE_*` environment variables, checked once at start.
//!
//! Longer than 400 lines only with its tests, which sit below the checks they pin.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use ipnet::IpNet;
use serde::Deserialize;

use crate::apps::{
    App, AppConfig, Apps, DEMO_PUBLISHABLE_KEY, Invalid, is_local_host, parse_origin,
};
use crate::limits::{Limits, TrustedProxies};
pub use crate::logging::LogFormat;
use crate::place::Places;
pub use crate::store::StoreKind;
use crate::tls::{self, TlsFiles, acme};

/// The settings file's shape. Unknown keys are errors, so a typo never silently falls back to a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "default_addr")]
    addr: SocketAddr,
    #[serde(default)]
    public_origin: Option<String>,
    #[serde(default = "default_store")]
    store: String,
    #[serde(default = "default_session_ttl", with = "humantime_serde")]
    session_ttl: Duration,
    #[serde(default)]
    site_root: Option<PathBuf>,
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    /// No longer read: signing keys live in the store. Kept so its presence gets a useful message.
    #[serde(default)]
    signing_key: Option<PathBuf>,
    #[serde(default = "default_token_ttl", with = "humantime_serde")]
    token_ttl: Duration,
    #[serde(default = "default_audit_retention", with = "humantime_serde")]
    audit_retention: Duration,
    #[serde(default = "default_webhook_first_retry", with = "humantime_serde")]
    webhook_first_retry: Duration,
    #[serde(default = "default_webhook_give_up_after", with = "humantime_serde")]
    webhook_give_up_after: Duration,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    trusted_proxies: Vec<IpNet>,
    #[serde(default = "default_client_ip_header")]
    client_ip_header: String,
    #[serde(default)]
    home_app: Option<String>,
    #[serde(default)]
    geoip_database: Option<PathBuf>,
    #[serde(default = "default_redis_prefix")]
    redis_prefix: String,
    #[serde(default)]
    allow_volatile_redis: bool,
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    header_timeout: Duration,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    request_timeout: Duration,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_stream_heartbeat", with = "humantime_serde")]
    stream_heartbeat: Duration,
    #[serde(default)]
    tls_cert: Option<PathBuf>,
    #[serde(default)]
    tls_key: Option<PathBuf>,
    #[serde(default = "default_tls_watch_every", with = "humantime_serde")]
    tls_watch_every: Duration,
    #[serde(default)]
    acme: Option<AcmeFile>,
    #[serde(default)]
    redirect_addr: Option<SocketAddr>,
    #[serde(default = "default_metrics")]
    metrics: String,
    #[serde(default)]
    log_format: LogFormat,
    #[serde(default = "default_log_level")]
    log_level: String,
    #[serde(default)]
    apps: Vec<AppConfig>,
}

/// The `[acme]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcmeFile {
    domains: Vec<String>,
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default = "default_acme_directory")]
    directory: String,
    #[serde(default)]
    cache_dir: Option<PathBuf>,
    #[serde(default = "default_acme_challenge")]
    challenge: String,
    #[serde(default)]
    directory_ca: Option<PathBuf>,
}

fn default_acme_directory() -> String {
    acme::LETS_ENCRYPT.to_owned()
}

fn default_acme_challenge() -> String {
    "tls-alpn-01".to_owned()
}

fn default_tls_watch_every() -> Duration {
    Duration::from_secs(10)
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_stream_heartbeat() -> Duration {
    Duration::from_secs(15)
}

fn default_max_connections() -> usize {
    10_000
}

fn default_redis_prefix() -> String {
    "qrb".into()
}

fn default_client_ip_header() -> String {
    "x-forwarded-for".into()
}

fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}

fn default_store() -> String {
    "memory".into()
}

fn default_session_ttl() -> Duration {
    Duration::from_secs(300)
}

fn default_metrics() -> String {
    "off".into()
}

fn default_log_level() -> String {
    "info".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_webhook_first_retry() -> Duration {
    Duration::from_secs(5)
}

fn default_webhook_give_up_after() -> Duration {
    Duration::from_secs(26 * 3600)
}

fn default_audit_retention() -> Duration {
    Duration::from_secs(90 * 86_400)
}

fn default_token_ttl() -> Duration {
    Duration::from_secs(3600)
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub addr: SocketAddr,
    /// Where people reach this bridge, e.g. `https://bridge.example`; the hosted approval page's origin.
    pub public_origin: String,
    pub store: StoreKind,
    pub session_ttl: Duration,
    /// The built site (wasm, JS, CSS); found by [`crate::state::site_root`] when not set.
    pub site_root: Option<PathBuf>,
    /// Where the embedded store keeps users and passkeys, and where a signing key is made if none is given.
    pub data_dir: PathBuf,
    pub token_ttl: Duration,
    /// How long the audit trail keeps an event.
    pub audit_retention: Duration,
    /// The wait after a webhook's first failed attempt; each next one doubles (up to an hour).
    pub webhook_first_retry: Duration,
    /// How long a failing webhook is retried before it is dropped (at least a day).
    pub webhook_give_up_after: Duration,
    pub apps: Arc<Apps>,
    /// The app whose sign-in page is served at `/`.
    pub home_app: Option<String>,
    /// The GeoIP City file the phone's "where from" reads, if one is configured.
    pub places: Arc<Places>,
    /// What every Redis key of this deployment starts with, so deployments can share a Redis.
    pub redis_prefix: String,
    /// Serve on a Redis that keeps nothing on disk (users and passkeys lost on its restart):
    /// for tests only. Without it, `serve` refuses such a Redis.
    pub allow_volatile_redis: bool,
    pub limits: Limits,
    /// Whose forwarding header names the client (for rate limits); nobody's by default.
    pub proxies: TrustedProxies,
    /// What is allowed but probably a mistake: said loudly at start.
    pub warnings: Vec<String>,
    pub connections: Connections,
    /// HTTPS in the binary: certificate files or ACME.
    pub tls: Option<tls::Source>,
    /// A plain-HTTP listener that only redirects to HTTPS (and answers ACME HTTP-01 checks).
    pub redirect_addr: Option<SocketAddr>,
    /// Where `/metrics` is served, if anywhere.
    pub metrics: MetricsAt,
    /// Text or JSON lines.
    pub log_format: LogFormat,
    /// The log filter (`info`, `warn,qr_bridge=debug`…); `RUST_LOG` wins when set.
    pub log_level: String,
}

/// Where Prometheus scrapes the bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsAt {
    /// Not at all (the default): nothing is recorded.
    Off,
    /// `/metrics` on the main listener, beside the API: reachable by whoever reaches the bridge.
    Main,
    /// `/metrics` on a listener of its own, e.g. `127.0.0.1:9464`: the safer choice.
    Addr(SocketAddr),
}

/// How long and how many connections may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connections {
    /// A connection must send a whole request head within this, also while idle between requests.
    pub header_timeout: Duration,
    /// A request must be answered (its response begun) within this: a slow body is cut off.
    pub request_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// How often a quiet event stream sends a comment, so proxies keep it open.
    pub stream_heartbeat: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {0} not found (pass --config PATH or set QR_BRIDGE_CONFIG)")]
    Missing(PathBuf),
    #[error("{0}")]
    Parse(Box<figment::Error>),
    #[error("{source_name}: {invalid}")]
    Invalid {
        source_name: String,
        invalid: Invalid,
    },
}

impl Settings {
    /// Reads `path`, then lets `QR_BRIDGE_<KEY>` variables override its top-level keys.
    pub fn load(path: &Path) -> Result<Settings, SettingsError> {
        if !path.is_file() {
            return Err(SettingsError::Missing(path.to_owned()));
        }
        let figment = Figment::from(Toml::file_exact(path))
            .merge(Env::prefixed("QR_BRIDGE_").ignore(&["config"]).split("__"));
        Self::from_figment(figment, &path.display().to_string())
    }

    /// Settings from TOML text alone, without the environment: what tests use.
    pub fn from_toml(text: &str) -> Result<Settings, SettingsError> {
        Self::from_figment(Figment::from(Toml::string(text)), "settings")
    }

    fn from_figment(figment: Figment, source_name: &str) -> Result<Settings, SettingsError> {
        let file: File = figment
            .extract()
            .map_err(|e| SettingsError::Parse(Box::new(e)))?;
        file.check().map_err(|invalid| SettingsError::Invalid {
            source_name: source_name.to_owned(),
            invalid,
        })
    }
}

impl File {
    fn check(mut self) -> Result<Settings, Invalid> {
        let tls = self.tls()?;
        let port = match self.addr.port() {
            443 if tls.is_some() => String::new(),
            port => format!(":{port}"),
        };
        let public_origin = match (&self.public_origin, &tls) {
            (Some(text), _) => parse_origin(text).map_err(|p| Invalid::new("public_origin", p))?,
            (None, Some(tls::Source::Acme(acme))) => format!("https://{}{port}", acme.domains[0]),
            (None, Some(tls::Source::Files(_))) => format!("https://localhost{port}"),
            (None, None) => format!("http://localhost{port}"),
        };
        if matches!(tls, Some(tls::Source::Files(_)))
            && self.public_origin.is_none()
            && !self.addr.ip().is_loopback()
        {
            return Err(Invalid::new(
                "public_origin",
                "must name the host in the certificate when the bridge serves HTTPS beyond this \
                 machine (e.g. \"https://bridge.example.com\"): passkeys belong to that name",
            ));
        }
        let https = public_origin.starts_with("https://");
        if tls.is_some() && !https {
            return Err(Invalid::new(
                "public_origin",
                "must be https:// when the bridge serves HTTPS itself (tls_cert or [acme])",
            ));
        }
        if self.redirect_addr.is_some() && !https {
            return Err(Invalid::new(
                "redirect_addr",
                "redirects to HTTPS: set tls_cert and tls_key, or [acme], or an https:// public_origin served by your proxy",
            ));
        }
        let mut warnings = Vec::new();
        if let Some(tls::Source::Acme(acme)) = &tls {
            // The CA checks on the standard ports; another may be forwarded to, so only a warning.
            let checked_on = match acme.challenge {
                acme::Challenge::TlsAlpn01 => Some(("addr", self.addr.port(), 443)),
                acme::Challenge::Http01 => {
                    self.redirect_addr.map(|a| ("redirect_addr", a.port(), 80))
                }
            };
            if let Some((key, port, standard)) = checked_on
                && port != standard
            {
                warnings.push(format!(
                    "the ACME CA checks the name on port {standard}, and {key} listens on {port}: \
                     forward {standard} to it, or no certificate will come"
                ));
            }
            if acme.challenge == acme::Challenge::Http01 && self.redirect_addr.is_none() {
                return Err(Invalid::new(
                    "acme.challenge",
                    "\"http-01\" is answered on port 80: set redirect_addr (e.g. \"0.0.0.0:80\"), or use \"tls-alpn-01\"",
                ));
            }
            let host = url::Url::parse(&public_origin)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned));
            if !host.as_ref().is_some_and(|h| acme.domains.contains(h)) {
                return Err(Invalid::new(
                    "public_origin",
                    format!(
                        "its host must be one of acme.domains ({})",
                        acme.domains.join(", ")
                    ),
                ));
            }
        }
        let bridge_host = url::Url::parse(&public_origin)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .ok_or_else(|| Invalid::new("public_origin", "has no host"))?;
        let store = match self.store.trim() {
            "memory" => StoreKind::Memory,
            url if url.starts_with("redis://")
                || url.starts_with("rediss://")
                || crate::store::cluster_nodes(url).is_some() =>
            {
                let nodes =
                    crate::store::cluster_nodes(url).unwrap_or_else(|| vec![url.to_owned()]);
                for node in &nodes {
                    redis::Client::open(node.as_str()).map_err(|e| {
                        Invalid::new("store", format!("not a usable Redis URL: {e}"))
                    })?;
                }
                StoreKind::Redis {
                    url: url.to_owned(),
                }
            }
            other => {
                // Only the scheme: what follows may be a password.
                let scheme = other.split("://").next().unwrap_or_default();
                return Err(Invalid::new(
                    "store",
                    format!(
                        "a {scheme:?} URL: expected \"memory\", a redis:// URL or \
                         redis+cluster://host:port,host:port"
                    ),
                ));
            }
        };
        if self.session_ttl < Duration::from_millis(50)
            || self.session_ttl > Duration::from_secs(3600)
        {
            return Err(Invalid::new(
                "session_ttl",
                "must be between 50ms and 1h (e.g. \"5m\")",
            ));
        }
        if self.token_ttl < Duration::from_secs(60)
            || self.token_ttl > crate::token::LONGEST_TOKEN_TTL
        {
            return Err(Invalid::new(
                "token_ttl",
                "must be between 1m and 30d (e.g. \"1h\")",
            ));
        }

        if let Some(path) = &self.signing_key {
            return Err(Invalid::new(
                "signing_key",
                format!(
                    "keys now live in the store and rotate with `qr-bridge keys rotate`; \
                     run `qr-bridge keys import {}` once to keep signing with this key, then remove the line",
                    path.display()
                ),
            ));
        }
        // Checked here so a typo fails at start rather than silently trusting nothing.
        let proxies = TrustedProxies {
            header: axum::http::HeaderName::from_bytes(self.client_ip_header.as_bytes())
                .map_err(|_| Invalid::new("client_ip_header", "is not an HTTP header name"))?
                .to_string(),
            nets: self.trusted_proxies,
        };
        if self.header_timeout.is_zero()
            || self.request_timeout.is_zero()
            || self.stream_heartbeat.is_zero()
            || self.max_connections == 0
        {
            return Err(Invalid::new(
                "header_timeout",
                "header_timeout, request_timeout, stream_heartbeat and max_connections must be above zero",
            ));
        }
        if self.limits.ipv6_prefix > 128 {
            return Err(Invalid::new(
                "limits.ipv6_prefix",
                "must be between 0 and 128 (e.g. 64)",
            ));
        }
        let apps = self
            .apps
            .iter()
            .enumerate()
            .map(|(i, app)| App::from_config(&format!("apps[{i}]"), app, &bridge_host))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(i) = apps
            .iter()
            .position(|a| a.publishable_key == DEMO_PUBLISHABLE_KEY)
            && !(is_local_host(&bridge_host) && self.addr.ip().is_loopback())
        {
            return Err(Invalid::new(
                format!("apps[{i}].publishable_key"),
                format!(
                    "is the demo app's published key, which anyone can use; it is only served on \
                     localhost (public_origin and addr), not on {public_origin} at {}. Remove the demo app (`qr-bridge apps remove {}`) \
                     and add your own with `qr-bridge apps add`",
                    self.addr, apps[i].id
                ),
            ));
        }
        Ok(Settings {
            addr: self.addr,
            public_origin,
            store,
            session_ttl: self.session_ttl,
            audit_retention: self.audit_retention,
            webhook_first_retry: if self.webhook_first_retry >= Duration::from_millis(100) {
                self.webhook_first_retry
            } else {
                return Err(Invalid::new(
                    "webhook_first_retry",
                    "must be at least 100ms: a failing backend would otherwise be hit in a loop",
                ));
            },
            webhook_give_up_after: if self.webhook_give_up_after >= Duration::from_secs(86_400) {
                self.webhook_give_up_after
            } else {
                return Err(Invalid::new(
                    "webhook_give_up_after",
                    "must be at least a day: a backend down overnight must still hear of every sign-in",
                ));
            },
            site_root: self.site_root,
            data_dir: self.data_dir,
            token_ttl: self.token_ttl,
            home_app: match self.home_app {
                Some(id) if apps.iter().all(|a| a.id != id) => {
                    return Err(Invalid::new(
                        "home_app",
                        format!("{id:?} is not the id of an app below"),
                    ));
                }
                other => other,
            },
            apps: Arc::new(Apps::new(apps)?),
            places: Arc::new(match &self.geoip_database {
                Some(path) => Places::open(path)?,
                None => Places::none(),
            }),
            redis_prefix: match self.redis_prefix.trim() {
                p if !p.is_empty() && !p.contains(['{', '}', ' ']) => p.to_owned(),
                _ => {
                    return Err(Invalid::new(
                        "redis_prefix",
                        "must be non-empty, without spaces or braces",
                    ));
                }
            },
            allow_volatile_redis: self.allow_volatile_redis,
            limits: self.limits,
            connections: Connections {
                header_timeout: self.header_timeout,
                request_timeout: self.request_timeout,
                max_connections: self.max_connections,
                stream_heartbeat: self.stream_heartbeat,
            },
            tls,
            redirect_addr: self.redirect_addr,
            metrics: match self.metrics.trim() {
                "off" => MetricsAt::Off,
                "main" => MetricsAt::Main,
                addr => MetricsAt::Addr(addr.parse().map_err(|_| {
                    Invalid::new(
                        "metrics",
                        "must be \"off\", \"main\" or an address such as \"127.0.0.1:9464\"",
                    )
                })?),
            },
            log_format: self.log_format,
            log_level: {
                crate::logging::check_level(&self.log_level)
                    .map_err(|e| Invalid::new("log_level", e))?;
                self.log_level
            },
            warnings: proxies
                .trusts_everyone()
                .then(|| {
                    format!(
                        "trusted_proxies trusts every address: any client can name itself anyone in {}, \
                         which defeats the rate limits and shows phones a made-up address; list only your proxies",
                        proxies.header
                    )
                })
                .into_iter()
                .chain(warnings)
                .collect(),
            proxies,
        })
    }
}

impl File {
    /// `tls_cert` and `tls_key` together, or `[acme]`, or neither.
    fn tls(&mut self) -> Result<Option<tls::Source>, Invalid> {
        let files = match (self.tls_cert.take(), self.tls_key.take()) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                watch_every: self.tls_watch_every,
            }),
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(Invalid::new(
                    "tls_cert",
                    "tls_cert and tls_key go together: both PEM files, or neither",
                ));
            }
        };
        if self.tls_watch_every < Duration::from_millis(100) {
            return Err(Invalid::new(
                "tls_watch_every",
                "must be at least 100ms (e.g. \"10s\")",
            ));
        }
        let Some(table) = self.acme.take() else {
            return Ok(files.map(tls::Source::Files));
        };
        if files.is_some() {
            return Err(Invalid::new(
                "acme",
                "[acme] obtains the certificate itself: remove tls_cert and tls_key, or the [acme] table",
            ));
        }
        if table.domains.is_empty() {
            return Err(Invalid::new(
                "acme.domains",
                "names no domain (e.g. [\"bridge.example.com\"])",
            ));
        }
        for domain in &table.domains {
            match url::Host::parse(domain) {
                Ok(url::Host::Domain(d)) if d == *domain && d.contains('.') && !d.contains('*') => {
                }
                _ => {
                    return Err(Invalid::new(
                        "acme.domains",
                        format!(
                            "{domain:?} is not a lower-case DNS name a CA can issue for (no IP addresses, no wildcards)"
                        ),
                    ));
                }
            }
        }
        let challenge = match table.challenge.as_str() {
            "tls-alpn-01" => acme::Challenge::TlsAlpn01,
            "http-01" => acme::Challenge::Http01,
            other => {
                return Err(Invalid::new(
                    "acme.challenge",
                    format!("{other:?}: expected \"tls-alpn-01\" or \"http-01\""),
                ));
            }
        };
        url::Url::parse(&table.directory)
            .ok()
            .filter(|u| u.scheme() == "https")
            .ok_or_else(|| Invalid::new("acme.directory", "must be an https:// URL"))?;
        Ok(Some(tls::Source::Acme(acme::Acme {
            domains: table.domains,
            contact: table
                .contact
                .into_iter()
                .map(|c| match c.strip_prefix("mailto:") {
                    Some(_) => c,
                    None => format!("mailto:{c}"),
                })
                .collect(),
            directory: table.directory,
            cache_dir: table
                .cache_dir
                .unwrap_or_else(|| self.data_dir.join("acme")),
            challenge,
            directory_ca: table.directory_ca,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
        [[apps]]
        id = "app_demo"
        name = "Demo"
        publishable_key = "cli_demo_0123456789abcdef"
        secret_key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
        allowed_origins = ["http://localhost:3000"]
        rp_id = "localhost"
    "#;

    fn message(text: &str) -> String {
        Settings::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let s = Settings::from_toml(APP).unwrap();
        assert_eq!(s.addr, default_addr());
        assert_eq!(s.public_origin, "http://localhost:3000");
        assert_eq!(s.store, StoreKind::Memory);
        assert_eq!(s.session_ttl, Duration::from_secs(300));
        assert!(s.apps.get("app_demo").is_some());
    }

    #[test]
    fn errors_name_the_key() {
        assert!(
            message("session_ttl = \"five\"").contains("session_ttl"),
            "{}",
            message("session_ttl = \"five\"")
        );
        assert!(message("stroe = \"memory\"").contains("stroe"));
        assert!(message("store = \"mongodb://x\"").starts_with("settings: store:"));
        assert!(message("addr = \"localhost\"").contains("addr"));
        assert!(message("public_origin = \"https://b.example/path\"").contains("public_origin"));
        assert!(message("session_ttl = \"2h\"").contains("session_ttl"));
        let bad_app = APP.replace("rp_id = \"localhost\"", "rp_id = \"example.com\"");
        assert!(
            message(&bad_app).contains("apps[0].rp_id"),
            "{}",
            message(&bad_app)
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // the closure's error type is figment's, fixed by Jail
    fn the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Leptos.toml");
        std::fs::write(&path, APP).unwrap();
        // The variables are read through figment's Jail so the test leaves the process environment alone.
        figment::Jail::expect_with(|jail| {
            jail.set_env("QR_BRIDGE_STORE", "redis://127.0.0.1:6379");
            jail.set_env("QR_BRIDGE_ADDR", "127.0.0.1:4000");
            jail.set_env("QR_BRIDGE_CONFIG", "ignored.toml");
            jail.set_env("QR_BRIDGE_LIMITS__INIT_PER_CLIENT", "5/10s");
            let s = Settings::load(&path).map_err(|e| e.to_string())?;
            assert_eq!(
                s.store,
                StoreKind::Redis {
                    url: "redis://127.0.0.1:6379".into()
                }
            );
            assert_eq!(s.addr.port(), 4000);
            assert_eq!(
                s.limits.init_per_client,
                crate::limits::Rate {
                    count: 5,
                    per: Duration::from_secs(10)
                }
            );
            jail.set_env("QR_BRIDGE_LIMITS__INIT_PER_CLIENT", "lots");
            let err = Settings::load(&path).unwrap_err().to_string();
            assert!(
                err.to_lowercase().contains("init_per_client") && err.contains("\"lots\""),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_demo_key_is_served_on_localhost_only() {
        let demo = APP.replace("cli_demo_0123456789abcdef", DEMO_PUBLISHABLE_KEY);
        assert!(Settings::from_toml(&demo).is_ok(), "the quick start works");
        let everywhere = format!("addr = \"0.0.0.0:3000\"\n{demo}");
        assert!(
            message(&everywhere).contains("apps[0].publishable_key"),
            "listening beyond this machine"
        );
        let public = format!(
            "public_origin = \"https://localhost.example\"\n{}",
            demo.replace("localhost\"", "localhost.example\"")
        );
        let err = message(&public);
        assert!(
            err.contains("apps[0].publishable_key")
                && err.contains("qr-bridge apps remove app_demo"),
            "{err}"
        );
    }

    #[test]
    fn plain_http_and_catch_all_proxies() {
        let err = message(&format!("public_origin = \"http://bridge.example\"\n{APP}"));
        assert!(
            err.contains("public_origin") && err.contains("https://"),
            "{err}"
        );
        let quiet = Settings::from_toml(APP).unwrap();
        assert!(quiet.warnings.is_empty());
        let open = Settings::from_toml(&format!(
            "trusted_proxies = [\"0.0.0.0/0\", \"::/0\"]\n{APP}"
        ))
        .unwrap();
        assert!(
            open.warnings
                .iter()
                .any(|w| w.contains("trusted_proxies trusts every address")),
            "{:?}",
            open.warnings
        );
        let narrow =
            Settings::from_toml(&format!("trusted_proxies = [\"10.0.0.0/8\"]\n{APP}")).unwrap();
        assert!(narrow.warnings.is_empty());
    }

    #[test]
    fn an_old_signing_key_setting_says_what_to_do() {
        let err = message(&format!("signing_key = \"data/k.pem\"\n{APP}"));
        assert!(err.contains("qr-bridge keys import data/k.pem"), "{err}");
    }

    #[test]
    fn https_settings_that_could_not_reach_a_phone_say_so() {
        let files = "tls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"";
        // Beyond this machine, passkeys belong to a name: it must be given.
        let err = message(&format!("addr = \"0.0.0.0:443\"\n{files}"));
        assert!(err.contains("public_origin"), "{err}");
        let ok = Settings::from_toml(&format!(
            "addr = \"0.0.0.0:443\"\npublic_origin = \"https://bridge.example.com\"\n{files}"
        ))
        .unwrap();
        assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
        assert_eq!(
            Settings::from_toml(files).unwrap().public_origin,
            "https://localhost:3000"
        );
        // The CA checks on 443: another port only works when forwarded, which is said.
        let acme = Settings::from_toml(
            "addr = \"0.0.0.0:8443\"\n[acme]\ndomains = [\"bridge.example.com\"]",
        )
        .unwrap();
        assert!(
            acme.warnings
                .iter()
                .any(|w| w.contains("port 443") && w.contains("8443")),
            "{:?}",
            acme.warnings
        );
        let Some(tls::Source::Acme(settings)) = acme.tls else {
            panic!("ACME settings")
        };
        assert_eq!(settings.contact, Vec::<String>::new());
        assert_eq!(settings.cache_dir, PathBuf::from("data/acme"));
        assert_eq!(settings.directory, acme::LETS_ENCRYPT);
    }

    #[test]
    fn a_missing_file_is_an_error_not_an_empty_config() {
        let err = Settings::load(Path::new("/nonexistent/Leptos.toml")).unwrap_err();
        assert!(matches!(err, SettingsError::Missing(_)));
    }
}
