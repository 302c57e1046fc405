//! The apps (tenants) a bridge serves, checked at start, and how a request proves which app it speaks for.
//!
//! Longer than 400 lines only with its tests, which sit below the checks they pin.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::secret;
use crate::session::StartedBy;

/// The demo app's publishable key, printed in the README and the shipped settings: anyone knows
/// it, so a bridge refuses to serve it anywhere but on this machine.
pub const DEMO_PUBLISHABLE_KEY: &str = "cli_demo_publishable_key_0001";

/// An app as written in the settings file. Its `Debug` leaves the webhook secret out.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub id: String,
    pub name: String,
    pub publishable_key: String,
    /// Only the digest of the secret key is kept; `qr-bridge apps add` prints the key once.
    pub secret_key_sha256: String,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    pub rp_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_qr_base_url: Option<String>,
    /// Whether a phone without a passkey may create one (and an account) from a sign-in request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub open_signup: bool,
    /// Whether a browser (publishable key) may name the `external_user_id` of the new account it
    /// creates. Off by default: see the README's security model for the risk.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub browser_external_ids: bool,
    /// Whether the bridge's own desktop page serves this app at `/login/<id>`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hosted_login: bool,
    /// Number matching: once a phone opens a request, the desktop shows a two-digit number and
    /// the phone must pick it among three before it may approve (a wrong pick declines).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm_code: bool,
    /// Where the app's backend hears about sign-ins (see `webhooks`); set with its secret by
    /// `qr-bridge apps webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The Standard Webhooks signing secret (`whsec_…`), printed once when made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("allowed_origins", &self.allowed_origins)
            .field("rp_id", &self.rp_id)
            .field("webhook_url", &self.webhook_url)
            .finish_non_exhaustive()
    }
}

/// Where an app's webhooks go and the secret they are signed with.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: Url,
    /// `whsec_…`: never printed, never logged.
    pub secret: String,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The prefix of a Standard Webhooks secret; the rest is base64 of the key.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// An app whose every field has been checked.
#[derive(Clone, Debug)]
pub struct App {
    pub id: String,
    pub name: String,
    pub publishable_key: String,
    secret_key_sha256: String,
    /// Serialised origins (`https://app.example`), compared as the browser sends them.
    pub allowed_origins: Vec<String>,
    pub rp_id: String,
    pub primary_qr_base_url: Option<Url>,
    pub open_signup: bool,
    pub browser_external_ids: bool,
    pub hosted_login: bool,
    pub confirm_code: bool,
    pub webhook: Option<WebhookTarget>,
}

/// A settings problem: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct Invalid {
    pub key: String,
    pub problem: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Hosts only this machine reaches: where plain http and a well-known demo key harm nobody.
pub fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where webhooks are POSTed: https (or http on this machine), with a host.
pub fn parse_webhook_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} must be an https:// URL"));
    }
    require_https(&url, text)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{text:?}: no credentials in the URL; the signature proves the sender"
        ));
    }
    Ok(url)
}

/// `whsec_` and base64 of at least 24 bytes.
fn check_webhook_secret(secret: &str) -> Result<String, String> {
    use base64::Engine as _;
    let key = secret
        .strip_prefix(WEBHOOK_SECRET_PREFIX)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    match key {
        Some(key) if key.len() >= 24 => Ok(secret.to_owned()),
        _ => Err(
            "expected whsec_ and base64 of at least 24 bytes (made by `qr-bridge apps webhook`)"
                .into(),
        ),
    }
}

/// Plain http reaches a browser only through everyone on the way: passkeys, tokens and the
/// approval page need https anywhere but on this machine.
fn require_https(url: &Url, text: &str) -> Result<(), String> {
    if url.scheme() == "http" && !url.host_str().is_some_and(is_local_host) {
        return Err(format!(
            "{text:?} must use https:// (http:// is only for localhost)"
        ));
    }
    Ok(())
}

/// `https://Example.com:443/` -> `https://example.com`; refuses anything with a path, query or
/// credentials, since an origin is only scheme, host and port, and http off localhost.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{text:?} must start with https:// (or http:// for local testing)"
        ));
    }
    require_https(&url, text)?;
    if url.host_str().is_none()
        || url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "{text:?} is not an origin: write only scheme, host and port, e.g. https://app.example"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{text:?} must not contain credentials"));
    }
    Ok(url.origin().ascii_serialization())
}

/// A base URL for the integrator's own approval page: http(s), no query or fragment.
pub fn parse_qr_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} must be an https:// URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?} must not have a query or fragment: /mobile-auth?session_id=… is appended to it"
        ));
    }
    require_https(&url, text)?;
    Ok(url)
}

/// Whether `rp_id` is a public suffix (`com`, `co.uk`, `github.io`): a passkey made for it would
/// be usable by every site under it.
pub fn is_public_suffix(rp_id: &str) -> bool {
    psl::suffix(rp_id.as_bytes())
        .is_some_and(|suffix| suffix.is_known() && suffix.as_bytes() == rp_id.as_bytes())
}

/// WebAuthn lets a page use an rp_id equal to its host or to a parent domain of it.
pub fn rp_id_covers(rp_id: &str, host: &str) -> bool {
    host == rp_id
        || host
            .strip_suffix(rp_id)
            .is_some_and(|rest| rest.ends_with('.'))
}

impl App {
    /// Checks one `[[apps]]` entry; `key` is its place in the file (e.g. `apps[1]`) for messages,
    /// and `bridge_host` is where the hosted approval page runs.
    pub fn from_config(key: &str, config: &AppConfig, bridge_host: &str) -> Result<App, Invalid> {
        let field = |name: &str| format!("{key}.{name}");
        let id = config.id.trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(Invalid::new(
                field("id"),
                "use lower-case letters, digits, '_' and '-' only",
            ));
        }
        let name = config.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Invalid::new(
                field("name"),
                "give the name people will see, 1 to 100 characters",
            ));
        }
        if !config.publishable_key.starts_with("cli_") || config.publishable_key.len() < 20 {
            return Err(Invalid::new(
                field("publishable_key"),
                "expected cli_ followed by at least 16 characters",
            ));
        }
        let digest = &config.secret_key_sha256;
        if digest.len() != 64
            || !digest
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        {
            return Err(Invalid::new(
                field("secret_key_sha256"),
                "expected 64 lower-case hex digits",
            ));
        }
        let allowed_origins = config
            .allowed_origins
            .iter()
            .enumerate()
            .map(|(i, o)| {
                parse_origin(o).map_err(|p| Invalid::new(format!("{key}.allowed_origins[{i}]"), p))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let primary_qr_base_url = match &config.primary_qr_base_url {
            None => None,
            Some(text) => Some(
                parse_qr_base_url(text)
                    .map_err(|p| Invalid::new(field("primary_qr_base_url"), p))?,
            ),
        };
        let rp_id = config.rp_id.trim().to_ascii_lowercase();
        let page_host = primary_qr_base_url
            .as_ref()
            .and_then(Url::host_str)
            .unwrap_or(bridge_host);
        if is_public_suffix(&rp_id) {
            return Err(Invalid::new(
                field("rp_id"),
                format!(
                    "{rp_id:?} is a public suffix, shared by unrelated sites: use your own domain, e.g. {page_host:?}"
                ),
            ));
        }
        // An rp_id that is the bridge's own host reaches the app's page on another domain
        // through the related origins the bridge serves (`/.well-known/webauthn`).
        let related = rp_id == bridge_host;
        if rp_id.is_empty() || !(rp_id_covers(&rp_id, page_host) || related) {
            return Err(Invalid::new(
                field("rp_id"),
                format!(
                    "{rp_id:?} must be the approval page's host {page_host:?} or a parent domain of it, or the bridge's host {bridge_host:?} (its passkeys then follow the app's page by related origins)"
                ),
            ));
        }
        if config.browser_external_ids && !config.open_signup {
            return Err(Invalid::new(
                field("browser_external_ids"),
                "needs open_signup = true: it only lets browsers name the new accounts they may create",
            ));
        }
        let webhook = match (&config.webhook_url, &config.webhook_secret) {
            (None, None) => None,
            (Some(url), Some(secret)) => Some(WebhookTarget {
                url: parse_webhook_url(url).map_err(|p| Invalid::new(field("webhook_url"), p))?,
                secret: check_webhook_secret(secret)
                    .map_err(|p| Invalid::new(field("webhook_secret"), p))?,
            }),
            _ => {
                return Err(Invalid::new(
                    field("webhook_url"),
                    "webhook_url and webhook_secret go together: set both with `qr-bridge apps webhook`",
                ));
            }
        };
        Ok(App {
            id: id.to_owned(),
            name: name.to_owned(),
            publishable_key: config.publishable_key.clone(),
            secret_key_sha256: digest.clone(),
            allowed_origins,
            rp_id,
            primary_qr_base_url,
            open_signup: config.open_signup,
            browser_external_ids: config.browser_external_ids,
            hosted_login: config.hosted_login,
            confirm_code: config.confirm_code,
            webhook,
        })
    }

    /// Every origin the app's passkey ceremonies may run on, each once: the bridge's hosted
    /// page, the app's own approval page, and its allowed origins. WebAuthn answers from any
    /// other origin are refused, and the bridge's `/.well-known/webauthn` lists exactly these.
    pub fn ceremony_origins(&self, bridge_origin: &str) -> Vec<String> {
        let page = self
            .primary_qr_base_url
            .as_ref()
            .map(|u| u.origin().ascii_serialization());
        let mut origins: Vec<String> = Vec::new();
        for origin in std::iter::once(bridge_origin.to_owned())
            .chain(page)
            .chain(self.allowed_origins.iter().cloned())
        {
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        origins
    }

    pub fn allows_origin(&self, origin: &str) -> bool {
        parse_origin(origin).is_ok_and(|o| self.allowed_origins.contains(&o))
    }
}

/// Why a request could not be tied to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("send Authorization: Bearer <publishable or secret key>")]
    MissingKey,
    #[error("the API key is not valid")]
    UnknownKey,
    #[error("this origin is not allowed for the app")]
    OriginNotAllowed,
    #[error("requests without an Origin header must use the app's secret key")]
    OriginRequired,
    #[error("this endpoint is for the app's backend: send Authorization: Bearer <secret key>")]
    SecretKeyRequired,
}

/// Every app of this deployment, indexed for the lookups requests need.
#[derive(Debug, Default)]
pub struct Apps {
    by_id: HashMap<String, Arc<App>>,
    by_publishable_key: HashMap<String, Arc<App>>,
    by_secret_digest: HashMap<String, Arc<App>>,
}

impl Apps {
    pub fn new(apps: Vec<App>) -> Result<Self, Invalid> {
        let mut index = Apps::default();
        for (i, app) in apps.into_iter().enumerate() {
            let app = Arc::new(app);
            if index.by_id.insert(app.id.clone(), app.clone()).is_some() {
                return Err(Invalid::new(
                    format!("apps[{i}].id"),
                    format!("{:?} is used twice", app.id),
                ));
            }
            if index
                .by_publishable_key
                .insert(app.publishable_key.clone(), app.clone())
                .is_some()
            {
                return Err(Invalid::new(
                    format!("apps[{i}].publishable_key"),
                    "is used by another app",
                ));
            }
            if index
                .by_secret_digest
                .insert(app.secret_key_sha256.clone(), app.clone())
                .is_some()
            {
                return Err(Invalid::new(
                    format!("apps[{i}].secret_key_sha256"),
                    "is used by another app",
                ));
            }
        }
        Ok(index)
    }

    pub fn get(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.by_id.values()
    }

    /// WebAuthn's Related Origin Requests document for `rp_id` (`{"origins":[…]}`): the bridge's
    /// own origin and the approval page of every app whose passkeys belong to `rp_id`, or `None`
    /// when no app's do. Desktop pages (`allowed_origins`) run no ceremony, so they are left out:
    /// every origin listed is one more place a browser lets that rp_id's passkeys be used.
    pub fn related_origins(&self, rp_id: &str, bridge_origin: &str) -> Option<Vec<String>> {
        let mut apps: Vec<&Arc<App>> = self.iter().filter(|a| a.rp_id == rp_id).collect();
        if apps.is_empty() {
            return None;
        }
        apps.sort_by(|a, b| a.id.cmp(&b.id));
        let mut origins = vec![bridge_origin.to_owned()];
        for page in apps
            .iter()
            .filter_map(|a| a.primary_qr_base_url.as_ref())
            .map(|u| u.origin().ascii_serialization())
        {
            if !origins.contains(&page) {
                origins.push(page);
            }
        }
        Some(origins)
    }

    /// Every origin some app allows: what CORS may answer before it knows which app is asking.
    pub fn all_origins(&self) -> HashSet<String> {
        self.iter()
            .flat_map(|a| a.allowed_origins.iter().cloned())
            .collect()
    }

    /// The app a request speaks for, and with whose authority. A browser (it sends `Origin`) must
    /// be on an allowed origin; a request without `Origin` comes from a backend and must prove
    /// itself with the secret key. Only the secret key speaks for the app's users.
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
        origin: Option<&str>,
    ) -> Result<(Arc<App>, StartedBy), AuthError> {
        let key = bearer
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::MissingKey)?;
        let (app, is_secret) = if key.starts_with("sk_") {
            (self.by_secret_digest.get(&secret::digest(key)), true)
        } else {
            (self.by_publishable_key.get(key), false)
        };
        let app = app.ok_or(AuthError::UnknownKey)?;
        let by = if is_secret {
            StartedBy::Backend
        } else {
            StartedBy::Browser
        };
        match origin {
            Some(origin) if app.allows_origin(origin) => Ok((app.clone(), by)),
            Some(_) => Err(AuthError::OriginNotAllowed),
            None if is_secret => Ok((app.clone(), by)),
            None => Err(AuthError::OriginRequired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AppConfig {
        AppConfig {
            id: "app_shop".into(),
            name: "Shop".into(),
            publishable_key: "cli_0123456789abcdef".into(),
            secret_key_sha256: secret::digest("sk_shop"),
            allowed_origins: vec!["https://Shop.example:443".into()],
            rp_id: "example".into(),
            primary_qr_base_url: Some("https://m.shop.example/app".into()),
            open_signup: false,
            browser_external_ids: false,
            hosted_login: false,
            confirm_code: false,
            webhook_url: None,
            webhook_secret: None,
        }
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            parse_origin("https://Shop.example:443/").unwrap(),
            "https://shop.example"
        );
        assert_eq!(
            parse_origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        assert!(parse_origin("https://shop.example/login").is_err());
        assert!(parse_origin("ftp://shop.example").is_err());
        assert!(parse_origin("null").is_err());
    }

    #[test]
    fn rp_id_must_cover_the_approval_page() {
        assert!(rp_id_covers("example.com", "example.com"));
        assert!(rp_id_covers("example.com", "login.example.com"));
        assert!(!rp_id_covers("example.com", "badexample.com"));
        assert!(!rp_id_covers("login.example.com", "example.com"));
        let mut c = config();
        c.rp_id = "other.example".into();
        let err = App::from_config("apps[0]", &c, "bridge.example").unwrap_err();
        assert_eq!(err.key, "apps[0].rp_id");
        c.primary_qr_base_url = None;
        c.rp_id = "example".into();
        assert!(App::from_config("apps[0]", &c, "bridge.example").is_ok());
    }

    #[test]
    fn a_bad_entry_names_its_key() {
        let mut c = config();
        c.allowed_origins.push("https://x.example/path".into());
        assert_eq!(
            App::from_config("apps[3]", &c, "x").unwrap_err().key,
            "apps[3].allowed_origins[1]"
        );
        let mut c = config();
        c.secret_key_sha256 = "nothex".into();
        assert_eq!(
            App::from_config("apps[0]", &c, "x").unwrap_err().key,
            "apps[0].secret_key_sha256"
        );
    }

    #[test]
    fn requests_prove_their_app() {
        let app = App::from_config("apps[0]", &config(), "bridge.example").unwrap();
        let apps = Apps::new(vec![app]).unwrap();
        let key = Some("cli_0123456789abcdef");
        assert_eq!(
            apps.authenticate(key, Some("https://shop.example"))
                .unwrap()
                .1,
            StartedBy::Browser
        );
        assert_eq!(
            apps.authenticate(key, Some("https://evil.example"))
                .unwrap_err(),
            AuthError::OriginNotAllowed
        );
        assert_eq!(
            apps.authenticate(key, None).unwrap_err(),
            AuthError::OriginRequired
        );
        assert_eq!(
            apps.authenticate(Some("sk_shop"), None).unwrap().1,
            StartedBy::Backend
        );
        assert_eq!(
            apps.authenticate(Some("sk_shop"), Some("https://evil.example"))
                .unwrap_err(),
            AuthError::OriginNotAllowed
        );
        assert_eq!(
            apps.authenticate(Some("sk_nope"), None).unwrap_err(),
            AuthError::UnknownKey
        );
        assert_eq!(
            apps.authenticate(Some("cli_nope"), Some("https://shop.example"))
                .unwrap_err(),
            AuthError::UnknownKey
        );
        assert_eq!(
            apps.authenticate(None, Some("https://shop.example"))
                .unwrap_err(),
            AuthError::MissingKey
        );
    }

    #[test]
    fn browsers_name_new_accounts_only_where_sign_up_is_open() {
        let mut c = config();
        c.browser_external_ids = true;
        let err = App::from_config("apps[0]", &c, "bridge.example").unwrap_err();
        assert_eq!(err.key, "apps[0].browser_external_ids");
        c.open_signup = true;
        assert!(App::from_config("apps[0]", &c, "bridge.example").is_ok());
    }

    #[test]
    fn plain_http_is_for_localhost_only() {
        assert!(parse_origin("http://localhost:3000").is_ok());
        assert!(parse_origin("http://127.0.0.1:3000").is_ok());
        assert!(parse_origin("http://[::1]:3000").is_ok());
        assert!(parse_origin("http://app.localhost").is_ok());
        let err = parse_origin("http://shop.example").unwrap_err();
        assert!(err.contains("https://"), "{err}");
        assert!(parse_qr_base_url("http://m.shop.example/app").is_err());
        assert!(parse_qr_base_url("https://m.shop.example/app").is_ok());
    }

    #[test]
    fn an_rp_id_may_not_be_a_public_suffix() {
        for suffix in ["com", "co.uk", "github.io"] {
            assert!(is_public_suffix(suffix), "{suffix}");
        }
        for own in ["example.com", "shop.github.io", "localhost", "bridge.test"] {
            assert!(!is_public_suffix(own), "{own}");
        }
        let mut c = config();
        c.primary_qr_base_url = Some("https://shop.github.io".into());
        c.rp_id = "github.io".into();
        let err = App::from_config("apps[0]", &c, "bridge.example").unwrap_err();
        assert_eq!(err.key, "apps[0].rp_id");
        assert!(err.problem.contains("public suffix"), "{}", err.problem);
        c.rp_id = "shop.github.io".into();
        assert!(App::from_config("apps[0]", &c, "bridge.example").is_ok());
    }

    #[test]
    fn duplicates_are_refused() {
        let a = App::from_config("apps[0]", &config(), "bridge.example").unwrap();
        let err = Apps::new(vec![a.clone(), a]).unwrap_err();
        assert_eq!(err.key, "apps[1].id");
    }
}
