//! Pair 5: the bridge's assertion check and token mint, in process, against openssl's raw P-256 verify and RSA-2048 sign.

use std::time::{Duration, Instant};

use qr_bridge::account::Ceremony;
use qr_bridge::passkey::Passkeys;
use qr_bridge::session::Timestamp;
use qr_bridge::settings::Settings;
use qr_bridge::token::{KeyRing, Tokens};
use serde::{Deserialize, Serialize};

use crate::bridge::KEY;
use crate::kit::phone::Phone;
use crate::system::{LOAD_CORE, run as command};

/// Microseconds per operation.
#[derive(Debug, Serialize, Deserialize)]
pub struct VerifyCost {
    pub assertion_check_us: f64,
    pub openssl_p256_verify_us: f64,
    /// The same verify in RustCrypto's p256, which webauthn-rs 0.6 checks assertions with
    /// (through crypto-glue): what the assertion check cannot go below.
    #[serde(default)]
    pub rustcrypto_p256_verify_us: f64,
    pub token_mint_us: f64,
    pub openssl_rsa2048_sign_us: f64,
}

/// Blocks for several seconds: run it off the async workers.
pub fn run() -> VerifyCost {
    let assertion_check_us = assertion_check_us();
    let token_mint_us = token_mint_us();
    VerifyCost {
        assertion_check_us,
        openssl_p256_verify_us: openssl_us("ecdsap256", 1),
        rustcrypto_p256_verify_us: rustcrypto_p256_verify_us(),
        token_mint_us,
        openssl_rsa2048_sign_us: openssl_us("rsa2048", 2),
    }
}

const ORIGIN: &str = "http://localhost:3000";

fn assertion_check_us() -> f64 {
    let settings = Settings::from_toml(&format!(
        r#"
        public_origin = "{ORIGIN}"
        [[apps]]
        id = "bench"
        name = "Bench"
        publishable_key = "{KEY}"
        secret_key_sha256 = "{}"
        rp_id = "localhost"
        "#,
        "0".repeat(64)
    ))
    .unwrap();
    let app = settings.apps.get("bench").unwrap().clone();
    let passkeys = Passkeys::new(&settings.apps, &settings.public_origin).unwrap();
    let mut phone = Phone::new();
    let (options, ceremony) = passkeys
        .start_register(&app, uuid::Uuid::new_v4(), "bench", vec![], false)
        .unwrap();
    let Ceremony::Register { state, .. } = ceremony else {
        unreachable!()
    };
    let created = serde_json::from_value(phone.create(ORIGIN, &options)).unwrap();
    let passkey = passkeys.finish_register(&app, &state, &created).unwrap();
    let n = 2000;
    // Signed beforehand: only the bridge's check is timed, not the phone's signing.
    let prepared: Vec<_> = (0..n)
        .map(|_| {
            let (options, ceremony) = passkeys.start_sign_in(&app).unwrap();
            let Ceremony::SignIn(state) = ceremony else {
                unreachable!()
            };
            let answer = serde_json::from_value(phone.sign(ORIGIN, &options)).unwrap();
            (state, answer)
        })
        .collect();
    let started = Instant::now();
    for (state, answer) in prepared {
        passkeys
            .finish_sign_in(&app, state, &answer, &passkey)
            .unwrap();
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn rustcrypto_p256_verify_us() -> f64 {
    use crypto_glue::ecdsa_p256::{EcdsaP256Signature, EcdsaP256SigningKey, new_key};
    use crypto_glue::traits::{Signer, Verifier};
    let signing = EcdsaP256SigningKey::from(new_key());
    let verifying = *signing.verifying_key();
    let n = 2000;
    let signed: Vec<(Vec<u8>, EcdsaP256Signature)> = (0..n)
        .map(|i| {
            let message = format!("authenticator data and client data hash {i}").into_bytes();
            let signature = signing.sign(&message);
            (message, signature)
        })
        .collect();
    let started = Instant::now();
    for (message, signature) in &signed {
        verifying.verify(message, signature).unwrap();
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn token_mint_us() -> f64 {
    let ring = KeyRing::generate(Timestamp::from_millis(0)).unwrap();
    let tokens = Tokens::new(
        ORIGIN,
        Duration::from_secs(3600),
        &ring,
        1,
        Timestamp::from_millis(0),
    )
    .unwrap();
    let n = 200;
    let started = Instant::now();
    for _ in 0..n {
        tokens.mint("usr_bench", None, "bench", "s").unwrap();
    }
    started.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// `openssl speed` for `algorithm`, from the `column`-th figure from the right of its last
/// table row (operations per second).
fn openssl_us(algorithm: &str, column: usize) -> f64 {
    let out = command(
        "taskset",
        &[
            "-c", LOAD_CORE, "openssl", "speed", "-seconds", "2", algorithm,
        ],
    );
    let row = out.lines().rfind(|l| l.contains("bits")).unwrap();
    let numbers: Vec<f64> = row
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    1e6 / numbers[numbers.len() - column]
}
