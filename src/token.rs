//! Session tokens: RS256 JWTs signed with the deployment's shared key, and the JWKS integrators verify them with.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, pkcs1::DecodeRsaPrivateKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::session::SessionToken;

/// What a session token says. `tenant_id` is the app: in QR Bridge each app is its own tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
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
    #[error("signing key {path}: {problem}")]
    Key { path: String, problem: String },
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
    #[error("could not sign the token: {0}")]
    Signing(String),
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    jwks: serde_json::Value,
    ttl: Duration,
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
    let key =
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| TokenError::Key {
            path: "(new key)".into(),
            problem: e.to_string(),
        })?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| TokenError::Key {
            path: "(new key)".into(),
            problem: e.to_string(),
        })?;
    Ok(pem.to_string())
}

/// Writes a new key to `path`, readable by its owner only, never replacing an existing file.
pub fn write_new_key(path: &Path) -> Result<(), TokenError> {
    let problem = |e: std::io::Error| TokenError::Key {
        path: path.display().to_string(),
        problem: e.to_string(),
    };
    let pem = generate_pem()?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(problem)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(problem)?;
    file.write_all(pem.as_bytes()).map_err(problem)?;
    file.as_file().sync_all().map_err(problem)?;
    file.persist_noclobber(path).map_err(|e| problem(e.error))?;
    Ok(())
}

impl Tokens {
    /// Loads the signing key; with `create_if_missing` (embedded mode) a missing key is made and
    /// saved first. Several instances sharing a store must share the file instead.
    pub fn load(path: &Path, create_if_missing: bool, ttl: Duration) -> Result<Self, TokenError> {
        if create_if_missing && !path.exists() {
            match write_new_key(path) {
                Ok(()) => tracing::info!("created signing key {}", path.display()),
                // Another process created it in the meantime: use theirs.
                Err(_) if path.exists() => {}
                Err(e) => return Err(e),
            }
        }
        let pem = std::fs::read_to_string(path).map_err(|e| TokenError::Key {
            path: path.display().to_string(),
            problem: format!(
                "{e} (create one with `qr-bridge keys generate {}`)",
                path.display()
            ),
        })?;
        Self::from_pem(&pem, ttl).map_err(|problem| TokenError::Key {
            path: path.display().to_string(),
            problem,
        })
    }

    pub fn from_pem(pem: &str, ttl: Duration) -> Result<Self, String> {
        let key = RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map_err(|_| "not an RSA private key in PEM (PKCS#8 or PKCS#1)".to_owned())?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
        let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
        let decoding = DecodingKey::from_rsa_components(&n, &e).map_err(|e| e.to_string())?;
        // RFC 7638 thumbprint: the same key gives the same kid on every instance.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let jwks = serde_json::json!({
            "keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}]
        });
        Ok(Self {
            encoding,
            decoding,
            kid,
            jwks,
            ttl,
        })
    }

    /// The bare JWKS document served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
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
            sub: user_id.to_owned(),
            user_id: user_id.to_owned(),
            external_user_id: external_user_id.map(str::to_owned),
            tenant_id: app_id.to_owned(),
            app_id: app_id.to_owned(),
            iat,
            exp: iat + self.ttl.as_secs(),
            jti: session_id.to_owned(),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map(SessionToken::new)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Checks signature, key id and expiry of a token this deployment issued.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(TokenError::Invalid);
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(ttl: Duration) -> Tokens {
        static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        Tokens::from_pem(PEM.get_or_init(|| generate_pem().unwrap()), ttl).unwrap()
    }

    #[test]
    fn minted_tokens_verify_and_carry_their_claims() {
        let t = tokens(Duration::from_secs(3600));
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
        assert_eq!(claims.external_user_id.as_deref(), Some("ext-9"));
        assert_eq!(claims.exp - claims.iat, 3600);
        let header = jsonwebtoken::decode_header(token.expose()).unwrap();
        assert_eq!(header.kid.as_deref(), t.jwks()["keys"][0]["kid"].as_str());
    }

    #[test]
    fn tampered_foreign_and_expired_tokens_are_refused() {
        let t = tokens(Duration::from_secs(3600));
        let token = t.mint("usr_1", None, "shop", "s").unwrap();
        let (head, rest) = token.expose().split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"usr_admin","user_id":"usr_admin","tenant_id":"shop","app_id":"shop","iat":1,"exp":9999999999,"jti":"s"}"#);
        assert!(matches!(
            t.verify(&format!("{head}.{forged_claims}.{sig}")),
            Err(TokenError::Invalid)
        ));
        let other = Tokens::from_pem(&generate_pem().unwrap(), Duration::from_secs(3600)).unwrap();
        assert!(matches!(
            other.verify(token.expose()),
            Err(TokenError::Invalid)
        ));
        assert!(matches!(t.verify("not.a.jwt"), Err(TokenError::Invalid)));

        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(t.kid.clone());
        let old = Claims {
            sub: "u".into(),
            user_id: "u".into(),
            external_user_id: None,
            tenant_id: "shop".into(),
            app_id: "shop".into(),
            iat: 1_000,
            exp: 2_000,
            jti: "s".into(),
        };
        let expired = jsonwebtoken::encode(&header, &old, &t.encoding).unwrap();
        assert!(matches!(t.verify(&expired), Err(TokenError::Expired)));
    }

    #[test]
    fn a_key_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.pem");
        assert!(
            Tokens::load(&path, false, Duration::from_secs(60)).is_err(),
            "Redis mode never invents a key"
        );
        let first = Tokens::load(&path, true, Duration::from_secs(60)).unwrap();
        let again = Tokens::load(&path, true, Duration::from_secs(60)).unwrap();
        assert_eq!(first.kid, again.kid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o077,
                0,
                "owner only"
            );
        }
    }
}
