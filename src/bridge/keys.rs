//! The signing keys as the store keeps them, for the bridge and for `qr-bridge keys`.

use super::{MAX_ATTEMPTS, SetupError};
use crate::session::Timestamp;
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use crate::token::{KeyRing, TokenError};

pub fn decode(json: &str) -> Result<KeyRing, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("signing keys: {e}")))
}

/// The deployment's key ring, made and saved first if there is none. An embedded bridge
/// that signed with `<data_dir>/signing-key.pem` before keys lived in the store keeps it.
pub async fn load_or_create(
    store: &dyn Store,
    settings: &Settings,
) -> Result<(KeyRing, u64), SetupError> {
    if let Some(stored) = store.load_keys().await? {
        return Ok((decode(&stored.json)?, stored.version));
    }
    let now = store.now().await?;
    let legacy = settings.data_dir.join("signing-key.pem");
    let mut ring = KeyRing::generate(now)?;
    if settings.store == crate::settings::StoreKind::Memory
        && let Ok(pem) = std::fs::read_to_string(&legacy)
    {
        ring.import(pem, now, settings.token_ttl)?;
        tracing::info!("imported the signing key {}", legacy.display());
    }
    let json = serde_json::to_string(&ring).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if store.save_keys(&json, 1).await? {
        tracing::info!("created the signing keys");
        return Ok((ring, 1));
    }
    // Another instance made the ring first: use theirs.
    let stored = store
        .load_keys()
        .await?
        .ok_or_else(|| StoreError::Corrupt("the signing keys vanished".into()))?;
    Ok((decode(&stored.json)?, stored.version))
}

/// Applies `change` to the stored ring (made first if there is none) with compare-and-set,
/// at the store's time; returns the ring as saved.
pub async fn change(
    store: &dyn Store,
    settings: &Settings,
    change: impl Fn(&mut KeyRing, Timestamp) -> Result<(), TokenError>,
) -> Result<KeyRing, SetupError> {
    for _ in 0..MAX_ATTEMPTS {
        let (mut ring, version) = load_or_create(store, settings).await?;
        change(&mut ring, store.now().await?)?;
        let json = serde_json::to_string(&ring).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if store.save_keys(&json, version + 1).await? {
            return Ok(ring);
        }
    }
    Err(StoreError::Unavailable("the signing keys kept changing under this write".into()).into())
}
