//! RS256 signatures by ring for jsonwebtoken, with each signing key parsed once rather than at every token.
//!
//! jsonwebtoken's own RustCrypto backend parses the private key and recomputes its CRT values for
//! every token, then signs with a generic big-integer library: about 1.2 ms a token, 5.6 times
//! OpenSSL's RSA-2048 sign on the same machine. ring (already built for rustls) signs with
//! assembly-backed Montgomery arithmetic. jsonwebtoken takes a backend through its `CryptoProvider`;
//! this one signs RS256 with ring and leaves everything else (verification, JWK helpers) to the
//! RustCrypto provider it replaces.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Once, RwLock};

use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// Makes this jsonwebtoken's backend for the process. Must run before the first token is signed or
/// checked (jsonwebtoken settles on a backend then); [`super::parse`] calls it, and every key is
/// parsed there before it is used.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let provider: &'static CryptoProvider = Box::leak(Box::new(CryptoProvider {
            signer_factory: signer,
            ..RUST_CRYPTO.clone()
        }));
        // Refused only if a backend was already chosen; tokens are then signed the slower way.
        if provider.install_default().is_err() {
            tracing::warn!(
                "jsonwebtoken already had a backend: RS256 tokens are signed without ring"
            );
        }
    });
}

/// Whether ring signs with this key: it refuses some that RustCrypto takes (over 4096 bits, an
/// exponent below 65537, more than two primes).
pub fn accepts(key: &EncodingKey) -> Result<(), String> {
    key_pair(key.inner()).map(|_| ()).map_err(|_| {
        "an RSA key ring cannot sign with (2048 to 4096 bits, exponent 65537, two primes)"
            .to_owned()
    })
}

fn signer(
    algorithm: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *algorithm != Algorithm::RS256 {
        return (RUST_CRYPTO.signer_factory)(algorithm, key);
    }
    Ok(Box::new(Rs256(key_pair(key.inner())?)))
}

/// Parsed key pairs by their PKCS#1 DER: a deployment signs with one key at a time and keeps a
/// handful, so this stays small; it is emptied if it ever grows past a rotation's worth.
static PARSED: LazyLock<RwLock<HashMap<Vec<u8>, Arc<RsaKeyPair>>>> =
    LazyLock::new(Default::default);
const KEPT: usize = 16;

fn key_pair(der: &[u8]) -> jsonwebtoken::errors::Result<Arc<RsaKeyPair>> {
    if let Some(pair) = PARSED.read().unwrap_or_else(|e| e.into_inner()).get(der) {
        return Ok(pair.clone());
    }
    let pair = Arc::new(
        RsaKeyPair::from_der(der)
            .map_err(|_| Error::from(ErrorKind::InvalidRsaKey("ring refused the key".into())))?,
    );
    let mut parsed = PARSED.write().unwrap_or_else(|e| e.into_inner());
    if parsed.len() >= KEPT {
        parsed.clear();
    }
    parsed.insert(der.to_vec(), pair.clone());
    Ok(pair)
}

struct Rs256(Arc<RsaKeyPair>);

impl signature::Signer<Vec<u8>> for Rs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| signature::Error::new())?;
        Ok(signature)
    }
}

impl JwtSigner for Rs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}
