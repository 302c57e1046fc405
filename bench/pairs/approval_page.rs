//! Pair 6: the phone's approval page rendered alone and under load, and the weight of what it loads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bridge::Bridge;
use crate::load::{Load, wrk};
use crate::options::Settings;

#[derive(Debug, Serialize, Deserialize)]
pub struct ApprovalPage {
    /// One request at a time: the render time itself.
    pub render_alone: Load,
    pub render_at_concurrency: Load,
    /// The page and what it loads, by path, as a browser that accepts brotli gets them.
    pub assets: BTreeMap<String, Asset>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Asset {
    /// The body as the file (or the page) is.
    pub bytes: usize,
    /// The body as sent to a browser that accepts `br, gzip`.
    pub wire_bytes: usize,
    /// `Content-Encoding` of that answer ("identity" when none).
    pub encoding: String,
    /// `Cache-Control` of that answer.
    pub cache: String,
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
    let assets = assets(&browser.http, &bridge.origin, &page_url).await;
    ApprovalPage {
        render_alone: wrk(&page_url, 1, s, None, Some(&header)),
        render_at_concurrency: wrk(&page_url, s.concurrency, s, None, Some(&header)),
        assets,
    }
}

/// The page and every `/pkg/` file it names, fetched as a phone's browser would (the client does
/// not decompress, so what arrives is what went over the wire) and then without compression.
async fn assets(http: &reqwest::Client, origin: &str, page_url: &str) -> BTreeMap<String, Asset> {
    let page = http
        .get(page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut paths: Vec<String> = page
        .split("\"/pkg/")
        .skip(1)
        .filter_map(|rest| Some(format!("/pkg/{}", &rest[..rest.find('"')?])))
        .collect();
    paths.sort();
    paths.dedup();
    let mut assets = BTreeMap::new();
    for (name, url) in std::iter::once(("/bridge/:id".to_owned(), page_url.to_owned())).chain(
        paths
            .into_iter()
            .map(|path| (path.clone(), format!("{origin}{path}"))),
    ) {
        let get =
            |encoding: &'static str| http.get(&url).header("accept-encoding", encoding).send();
        let wire = get("br, gzip").await.unwrap();
        let header = |name: &str| {
            wire.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (encoding, cache) = (header("content-encoding"), header("cache-control"));
        let wire_bytes = wire.bytes().await.unwrap().len();
        let bytes = get("identity").await.unwrap().bytes().await.unwrap().len();
        let encoding = if encoding.is_empty() {
            "identity".to_owned()
        } else {
            encoding
        };
        assets.insert(
            name,
            Asset {
                bytes,
                wire_bytes,
                encoding,
                cache,
            },
        );
    }
    assets
}
