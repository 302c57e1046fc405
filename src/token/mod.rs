//! Session tokens: RS256 JWTs bound to their app, signed with a key ring that rotates, and the JWKS integrators verify them with.
//!
//! Longer than 400 lines with its tests: the tokens and the key ring they are signed with change
//! together, and the tests check them against an independent JWT implementation.
//!
//! # The key ring
//!
//! Every key has one role: `next` (published, not yet signing), `current` (signing) or `retired`
//! (published until every token it signed has expired). `qr-bridge keys rotate` makes `next`
//! current, retires the current one and publishes a new `next`. So the key a rotation starts
//! signing with has been in the JWKS since the rotation before it (or since the ring was made):
//! a verifier that cached the JWKS (the SDK keeps it an hour) already knows it. The ring is kept
//! in the store, so every instance of a deployment reads the same one.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, pkcs1::DecodeRsaPrivateKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::session::{SessionToken, Timestamp};

mod signer;

/// How long a retired key stays published beyond the token lifetime: instances pick a rotation
/// up within [`crate::bridge::KEY_REFRESH`], and verifiers allow some clock skew.
pub const RETIRED_GRACE: Duration = Duration::from_secs(60);

/// The longest `token_ttl` the settings accept. The stored ring keeps a retired key this long
/// (plus the grace), whatever lifetime the command that rotates it was given; what the JWKS
/// publishes follows each bridge's own `token_ttl`.
pub const LONGEST_TOKEN_TTL: Duration = Duration::from_secs(30 * 86_400);

/// What a session token says. `tenant_id` is the app: in QR Bridge each app is its own tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The bridge's public origin.
    pub iss: String,
    /// The app the token was issued for: its backend must refuse a token for another.
    pub aud: String,
    pub sub: String,
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    pub tenant_id: String,
    pub app_id: String,
    pub iat: u64,
    pub exp: u64,
    /// The cross-device session that produced the token.
    pub jti: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("signing key: {0}")]
    Key(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
    #[error("the token was revoked")]
    Revoked,
    #[error("could not sign the token: {0}")]
    Signing(String),
}

/// Seconds since the epoch on this instance's clock. `iat` must never be in the verifier's
/// future (the SDK allows no skew there), and whole seconds round down, which helps.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh 2048-bit RSA key as PKCS#8 PEM.
pub fn generate_pem() -> Result<String, TokenError> {
    let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| TokenError::Key(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| TokenError::Key(e.to_string()))?;
    Ok(pem.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Role {
    Next,
    Current,
    Retired { at: Timestamp },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RingKey {
    pub kid: String,
    pub role: Role,
    pub created_at: Timestamp,
    /// PKCS#8 (or PKCS#1) PEM. Never logged: `Debug` of the ring shows it, so keep rings out of logs.
    pub pem: String,
}

/// The deployment's signing keys, as stored. Pure: time comes in as a value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeyRing {
    pub keys: Vec<RingKey>,
}

/// A parsed key: what signs and what verifies.
struct Parsed {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: serde_json::Value,
}

fn parse(pem: &str) -> Result<Parsed, String> {
    signer::install();
    let key = RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|_| "not an RSA private key in PEM (PKCS#8 or PKCS#1)".to_owned())?;
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    // Refused here, at import or rotation, rather than at the first sign-in it should sign for.
    signer::accepts(&encoding)?;
    let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
    let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?;
    // RFC 7638 thumbprint: the same key gives the same kid on every instance.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let jwk =
        serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e});
    Ok(Parsed {
        kid,
        encoding,
        decoding,
        jwk,
    })
}

impl KeyRing {
    fn key(pem: String, role: Role, now: Timestamp) -> Result<RingKey, TokenError> {
        let kid = parse(&pem).map_err(TokenError::Key)?.kid;
        Ok(RingKey {
            kid,
            role,
            created_at: now,
            pem,
        })
    }

    /// A new ring: a current key and the next one, already published.
    pub fn generate(now: Timestamp) -> Result<Self, TokenError> {
        Self::from_pems(generate_pem()?, generate_pem()?, now)
    }

    /// A new ring from two keys made elsewhere (tests share theirs to save key generation).
    pub fn from_pems(current: String, next: String, now: Timestamp) -> Result<Self, TokenError> {
        Ok(Self {
            keys: vec![
                Self::key(current, Role::Current, now)?,
                Self::key(next, Role::Next, now)?,
            ],
        })
    }

    pub fn current(&self) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.role == Role::Current)
    }

    /// Retires the current key, makes the published `next` current and publishes a new `next`
    /// (`new_next`, a PEM); retired keys whose tokens have all expired are dropped.
    pub fn rotate(
        &mut self,
        new_next: String,
        now: Timestamp,
        token_ttl: Duration,
    ) -> Result<(), TokenError> {
        let next = Self::key(new_next, Role::Next, now)?;
        let had_next = self.keys.iter().any(|k| k.role == Role::Next);
        for key in &mut self.keys {
            key.role = match key.role {
                Role::Current => Role::Retired { at: now },
                Role::Next => Role::Current,
                retired => retired,
            };
        }
        if had_next {
            self.keys.push(next);
        } else {
            // A ring that never had a next key (one imported by hand): the new key signs at once.
            self.keys.push(RingKey {
                role: Role::Current,
                ..next
            });
        }
        self.prune(now, token_ttl);
        Ok(())
    }

    /// Makes a key from elsewhere (a deployment's old key file) the current one, keeping `next`.
    pub fn import(
        &mut self,
        pem: String,
        now: Timestamp,
        token_ttl: Duration,
    ) -> Result<(), TokenError> {
        let imported = Self::key(pem, Role::Current, now)?;
        if self.keys.iter().any(|k| k.kid == imported.kid) {
            return Err(TokenError::Key(format!(
                "key {} is already in the ring",
                imported.kid
            )));
        }
        for key in &mut self.keys {
            if key.role == Role::Current {
                key.role = Role::Retired { at: now };
            }
        }
        self.keys.push(imported);
        self.prune(now, token_ttl);
        Ok(())
    }

    fn prune(&mut self, now: Timestamp, token_ttl: Duration) {
        let kept = token_ttl.max(LONGEST_TOKEN_TTL);
        self.keys.retain(|k| is_published(k, now, kept));
    }

    /// The keys a verifier may meet at `now`: current, next, and retired ones whose tokens may
    /// still be alive.
    pub fn published(&self, now: Timestamp, token_ttl: Duration) -> impl Iterator<Item = &RingKey> {
        self.keys
            .iter()
            .filter(move |k| is_published(k, now, token_ttl))
    }
}

fn is_published(key: &RingKey, now: Timestamp, token_ttl: Duration) -> bool {
    match key.role {
        Role::Next | Role::Current => true,
        Role::Retired { at } => now < at.plus(token_ttl + RETIRED_GRACE),
    }
}

/// The ring as this instance uses it: parsed once per change.
struct Active {
    /// Which stored ring and which published keys this was built from.
    built_from: (u64, Vec<String>),
    signing: Arc<Parsed>,
    verifying: HashMap<String, Arc<Parsed>>,
    jwks: serde_json::Value,
}

/// Signs and checks session tokens with the ring it was last given.
pub struct Tokens {
    issuer: String,
    ttl: Duration,
    active: RwLock<Arc<Active>>,
}

impl Tokens {
    /// `issuer` is the bridge's public origin; `ring` the stored ring at `version`.
    pub fn new(
        issuer: &str,
        ttl: Duration,
        ring: &KeyRing,
        version: u64,
        now: Timestamp,
    ) -> Result<Self, TokenError> {
        Ok(Self {
            issuer: issuer.to_owned(),
            ttl,
            active: RwLock::new(Arc::new(build(ring, version, now, ttl, None)?)),
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn active(&self) -> Arc<Active> {
        self.active
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Takes a (possibly) newer ring; parses only what changed. Returns whether anything did.
    pub fn update(&self, ring: &KeyRing, version: u64, now: Timestamp) -> Result<bool, TokenError> {
        let old = self.active();
        if old.built_from == fingerprint(ring, version, now, self.ttl) {
            return Ok(false);
        }
        let fresh = build(ring, version, now, self.ttl, Some(&old))?;
        *self
            .active
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(fresh);
        Ok(true)
    }

    /// The bare JWKS document served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        self.active().jwks.clone()
    }

    /// The current key's id: what new tokens are signed with.
    pub fn signing_kid(&self) -> String {
        self.active().signing.kid.clone()
    }

    pub fn mint(
        &self,
        user_id: &str,
        external_user_id: Option<&str>,
        app_id: &str,
        session_id: &str,
    ) -> Result<SessionToken, TokenError> {
        let iat = unix_now();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: app_id.to_owned(),
            sub: user_id.to_owned(),
            user_id: user_id.to_owned(),
            external_user_id: external_user_id.map(str::to_owned),
            tenant_id: app_id.to_owned(),
            app_id: app_id.to_owned(),
            iat,
            exp: iat + self.ttl.as_secs(),
            jti: session_id.to_owned(),
        };
        let signing = self.active().signing.clone();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(signing.kid.clone());
        jsonwebtoken::encode(&header, &claims, &signing.encoding)
            .map(SessionToken::new)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Checks signature (by a published key), issuer and expiry of a token this deployment
    /// issued, for any app: the caller decides whether its audience is the one it expects.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Invalid);
        }
        let active = self.active();
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| active.verifying.get(kid))
            .ok_or(TokenError::Invalid)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        match jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

fn fingerprint(ring: &KeyRing, version: u64, now: Timestamp, ttl: Duration) -> (u64, Vec<String>) {
    (
        version,
        ring.published(now, ttl).map(|k| k.kid.clone()).collect(),
    )
}

/// Parses the published keys of `ring`, reusing what `old` already parsed.
fn build(
    ring: &KeyRing,
    version: u64,
    now: Timestamp,
    ttl: Duration,
    old: Option<&Active>,
) -> Result<Active, TokenError> {
    let mut verifying = HashMap::new();
    for key in ring.published(now, ttl) {
        let parsed = match old.and_then(|o| o.verifying.get(&key.kid)) {
            Some(parsed) => parsed.clone(),
            None => {
                Arc::new(parse(&key.pem).map_err(|p| TokenError::Key(format!("{}: {p}", key.kid)))?)
            }
        };
        verifying.insert(key.kid.clone(), parsed);
    }
    let current = ring
        .current()
        .ok_or_else(|| TokenError::Key("the key ring has no current key".into()))?;
    let signing = verifying
        .get(&current.kid)
        .cloned()
        .ok_or_else(|| TokenError::Key("the current key is not published".into()))?;
    // Current first, so a client that takes the first key takes the one that signs.
    let mut keys = vec![signing.jwk.clone()];
    keys.extend(
        ring.published(now, ttl)
            .filter(|k| k.kid != current.kid)
            .map(|k| verifying[&k.kid].jwk.clone()),
    );
    Ok(Active {
        built_from: fingerprint(ring, version, now, ttl),
        signing,
        verifying,
        jwks: serde_json::json!({ "keys": keys }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3600);
    const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    /// Key generation is slow in debug builds: the tests share a few keys.
    fn pems() -> &'static [String; 5] {
        static PEMS: std::sync::OnceLock<[String; 5]> = std::sync::OnceLock::new();
        PEMS.get_or_init(|| std::array::from_fn(|_| generate_pem().unwrap()))
    }

    fn ring() -> KeyRing {
        KeyRing::from_pems(pems()[0].clone(), pems()[1].clone(), T0).unwrap()
    }

    fn tokens(ring: &KeyRing) -> Tokens {
        Tokens::new("https://bridge.test", TTL, ring, 1, T0).unwrap()
    }

    fn kids(t: &Tokens) -> Vec<String> {
        t.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn minted_tokens_verify_and_carry_their_claims() {
        let t = tokens(&ring());
        let token = t
            .mint(
                "usr_1",
                Some("ext-9"),
                "shop",
                "7f0c2a4e-9b1d-4c3a-8e2f-5a6b7c8d9e0f",
            )
            .unwrap();
        let claims = t.verify(token.expose()).unwrap();
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.app_id.as_str(),
                claims.tenant_id.as_str()
            ),
            ("usr_1", "shop", "shop")
        );
        assert_eq!(
            (claims.aud.as_str(), claims.iss.as_str()),
            ("shop", "https://bridge.test")
        );
        assert_eq!(claims.external_user_id.as_deref(), Some("ext-9"));
        assert_eq!(claims.exp - claims.iat, 3600);
        let header = jsonwebtoken::decode_header(token.expose()).unwrap();
        assert_eq!(header.kid, Some(t.signing_kid()));
        assert_eq!(kids(&t)[0], t.signing_kid(), "the signing key comes first");
        assert_eq!(kids(&t).len(), 2, "current and next are published");
    }

    #[test]
    fn tampered_foreign_and_expired_tokens_are_refused() {
        let r = ring();
        let t = tokens(&r);
        let token = t.mint("usr_1", None, "shop", "s").unwrap();
        let (head, rest) = token.expose().split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://bridge.test","aud":"shop","sub":"usr_admin","user_id":"usr_admin","tenant_id":"shop","app_id":"shop","iat":1,"exp":9999999999,"jti":"s"}"#);
        assert!(matches!(
            t.verify(&format!("{head}.{forged_claims}.{sig}")),
            Err(TokenError::Invalid)
        ));
        let other_ring = KeyRing::from_pems(pems()[2].clone(), pems()[3].clone(), T0).unwrap();
        let other = tokens(&other_ring);
        assert!(matches!(
            other.verify(token.expose()),
            Err(TokenError::Invalid)
        ));
        assert!(matches!(t.verify("not.a.jwt"), Err(TokenError::Invalid)));
        let elsewhere = Tokens::new("https://other.test", TTL, &r, 1, T0).unwrap();
        assert!(
            matches!(elsewhere.verify(token.expose()), Err(TokenError::Invalid)),
            "another deployment's issuer"
        );

        let signing = t.active().signing.clone();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(signing.kid.clone());
        let old = Claims {
            iss: "https://bridge.test".into(),
            aud: "shop".into(),
            sub: "u".into(),
            user_id: "u".into(),
            external_user_id: None,
            tenant_id: "shop".into(),
            app_id: "shop".into(),
            iat: 1_000,
            exp: 2_000,
            jti: "s".into(),
        };
        let expired = jsonwebtoken::encode(&header, &old, &signing.encoding).unwrap();
        assert!(matches!(t.verify(&expired), Err(TokenError::Expired)));
    }

    #[test]
    fn rotation_signs_with_the_published_next_key_and_keeps_the_old_one_for_a_token_lifetime() {
        let mut r = ring();
        let t = tokens(&r);
        let before = t.mint("usr_1", None, "shop", "s1").unwrap();
        let published_next = r.keys[1].kid.clone();
        let first = t.signing_kid();

        let rotated_at = T0.plus(Duration::from_secs(600));
        r.rotate(pems()[2].clone(), rotated_at, TTL).unwrap();
        assert!(t.update(&r, 2, rotated_at).unwrap());
        assert!(
            !t.update(&r, 2, rotated_at).unwrap(),
            "nothing new to parse"
        );
        assert_eq!(
            t.signing_kid(),
            published_next,
            "the key verifiers already had now signs"
        );
        assert_eq!(kids(&t).len(), 3, "new current, new next, retired");
        assert!(
            t.verify(before.expose()).is_ok(),
            "a token from before still verifies"
        );
        let after = t.mint("usr_1", None, "shop", "s2").unwrap();
        assert!(t.verify(after.expose()).is_ok());

        let still = rotated_at.plus(TTL);
        assert!(!t.update(&r, 2, still).unwrap());
        assert!(
            kids(&t).contains(&first),
            "kept through the grace after token_ttl"
        );
        let gone = rotated_at.plus(TTL + RETIRED_GRACE);
        assert!(t.update(&r, 2, gone).unwrap());
        assert!(
            !kids(&t).contains(&first),
            "gone once its tokens are all dead"
        );
        assert!(matches!(
            t.verify(before.expose()),
            Err(TokenError::Invalid)
        ));

        let much_later = rotated_at.plus(LONGEST_TOKEN_TTL + RETIRED_GRACE);
        r.rotate(pems()[3].clone(), gone, TTL).unwrap();
        assert!(
            r.keys.iter().any(|k| k.kid == first),
            "the stored ring keeps it for the longest token lifetime"
        );
        r.rotate(pems()[4].clone(), much_later, TTL).unwrap();
        assert!(r.keys.iter().all(|k| k.kid != first), "then drops it");
    }

    #[test]
    fn an_imported_key_signs_at_once() {
        let mut r = ring();
        r.import(pems()[2].clone(), T0, TTL).unwrap();
        let t = tokens(&r);
        assert_eq!(t.signing_kid(), parse(&pems()[2]).unwrap().kid);
        assert_eq!(kids(&t).len(), 3);
        assert!(r.import(pems()[2].clone(), T0, TTL).is_err(), "not twice");
    }

    /// RustCrypto reads a 1024-bit key, but ring will not sign with one: refused when it is
    /// imported, not at the first sign-in after it becomes current.
    #[test]
    fn a_key_the_signer_refuses_is_refused_at_import() {
        let weak = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024)
            .unwrap()
            .to_pkcs8_pem(LineEnding::LF)
            .unwrap()
            .to_string();
        let mut r = ring();
        let refused = r.import(weak, T0, TTL).unwrap_err();
        assert!(
            refused.to_string().contains("ring cannot sign"),
            "{refused}"
        );
        assert_eq!(r.keys.len(), ring().keys.len(), "the ring unchanged");
    }
}
