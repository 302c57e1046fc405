//! `qr-bridge apps webhook ID --url URL | --off`: where an app's backend hears about sign-ins, and the secret that signs them.

use std::io::Write;
use std::path::Path;

use anyhow::bail;
use base64::Engine as _;
use rand::RngCore as _;
use toml_edit::{Item, value};

use super::{read_document, write_checked};
use crate::apps::{WEBHOOK_SECRET_PREFIX, parse_webhook_url};

/// Sets (or with `None`, removes) the app's webhook URL with a fresh secret, printed once.
pub fn set(
    path: &Path,
    id: &str,
    url: Option<String>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut doc = read_document(path)?;
    let app = doc
        .get_mut("apps")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|apps| {
            apps.iter_mut()
                .find(|t| t.get("id").and_then(Item::as_str) == Some(id))
        });
    let Some(app) = app else {
        bail!("no app {id:?} in {}", path.display())
    };
    let Some(url) = url else {
        app.remove("webhook_url");
        app.remove("webhook_secret");
        write_checked(path, &doc, false)?;
        writeln!(
            out,
            "App {id} sends no webhooks any more. Restart the bridge for it to take effect."
        )?;
        return Ok(());
    };
    let url = parse_webhook_url(&url).map_err(anyhow::Error::msg)?;
    // 32 random bytes, as Standard Webhooks secrets are usually made.
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let secret = format!(
        "{WEBHOOK_SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    app.insert("webhook_url", value(url.as_str()));
    app.insert("webhook_secret", value(&secret));
    write_checked(path, &doc, true)?;
    if json {
        let keys = serde_json::json!({"app_id": id, "webhook_url": url.as_str(), "webhook_secret": secret});
        writeln!(out, "{keys}")?;
    } else {
        writeln!(out, "App {id} now sends signed webhooks to {url}")?;
        writeln!(out, "  signing secret: {secret}")?;
        writeln!(
            out,
            "Give the secret to your backend now; {} is now readable by its owner only. Restart the bridge for it to take effect.",
            path.display()
        )?;
    }
    Ok(())
}
