//! Pair 6: the phone's approval page rendered alone and under load, and the weight of what it loads.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::bridge::Bridge;
use crate::load::{Load, wrk};
use crate::options::Settings;
use crate::system::root;

#[derive(Debug, Serialize, Deserialize)]
pub struct ApprovalPage {
    /// One request at a time: the render time itself.
    pub render_alone: Load,
    pub render_at_concurrency: Load,
    /// By file name under the site's `pkg/`.
    pub assets: BTreeMap<String, Asset>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Asset {
    pub bytes: usize,
    pub gzip_bytes: usize,
}

pub async fn run(s: &Settings, bridge: &Bridge) -> ApprovalPage {
    // The page is served to the browser that first opened the request: wrk comes back as it,
    // with its cookie.
    let browser = bridge.client_over(
        reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap(),
    );
    let session = browser.init().await;
    let page_url = format!("{}/bridge/{}", bridge.origin, session.session_id);
    let first = browser.http.get(&page_url).send().await.unwrap();
    let cookie = first
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    assert_eq!(first.status(), 200);
    let header = format!("Cookie: {cookie}");
    ApprovalPage {
        render_alone: wrk(&page_url, 1, s, None, Some(&header)),
        render_at_concurrency: wrk(&page_url, s.concurrency, s, None, Some(&header)),
        assets: assets(),
    }
}

fn assets() -> BTreeMap<String, Asset> {
    ["qr-bridge.wasm", "qr-bridge.js", "qr-bridge.css"]
        .into_iter()
        .map(|name| {
            let raw = std::fs::read(root().join("target/site/pkg").join(name)).unwrap();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            gz.write_all(&raw).unwrap();
            let asset = Asset {
                bytes: raw.len(),
                gzip_bytes: gz.finish().unwrap().len(),
            };
            (name.to_owned(), asset)
        })
        .collect()
}
