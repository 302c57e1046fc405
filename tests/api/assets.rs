//! The site's files on the wire: compressed as the browser asks (never an event stream), and checked with the bridge before reuse.

use std::io::Read;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::helpers::{Backend, TestApp};

/// A site with one wasm file of `size` compressible bytes (real wasm compresses about 3:1).
fn site(size: usize) -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
    let wasm: Vec<u8> = (0..size)
        .map(|i| b"\0asm-func-local-i32"[i % 19] ^ (i / 4096) as u8)
        .collect();
    std::fs::write(dir.path().join("pkg/qr-bridge.wasm"), &wasm).unwrap();
    (dir, wasm)
}

#[tokio::test]
async fn assets_go_out_compressed_and_are_checked_before_reuse() {
    let (dir, wasm) = site(256 * 1024);
    let extra = format!("site_root = \"{}\"", dir.path().display());
    let app = TestApp::spawn_configured(Backend::Memory, "5m", &extra).await;
    let get = |encoding: Option<&'static str>| {
        let mut request = app.client.request(Method::GET, "/pkg/qr-bridge.wasm");
        if let Some(encoding) = encoding {
            request = request.header("accept-encoding", encoding);
        }
        async move { request.send().await.unwrap() }
    };

    let brotli = get(Some("br, gzip")).await;
    assert_eq!(brotli.status(), StatusCode::OK);
    assert_eq!(
        brotli.headers()["content-encoding"],
        "br",
        "brotli first when both are offered"
    );
    assert_eq!(brotli.headers()["cache-control"], "no-cache");
    let last_modified = brotli.headers()["last-modified"].clone();
    let sent = brotli.bytes().await.unwrap();
    assert!(
        sent.len() * 3 < wasm.len(),
        "{} bytes sent for {}",
        sent.len(),
        wasm.len()
    );

    let gzip = get(Some("gzip")).await;
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&gzip.bytes().await.unwrap()[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, wasm, "the same file, unpacked");

    let plain = get(None).await;
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.bytes().await.unwrap(), wasm);

    // A browser that kept it asks again and is told to reuse it: no body.
    let again = app
        .client
        .request(Method::GET, "/pkg/qr-bridge.wasm")
        .header("if-modified-since", last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

/// An event stream compressed would hold its events in the compressor's buffer.
#[tokio::test]
async fn a_status_stream_is_never_compressed() {
    let app = TestApp::spawn(Backend::Memory).await;
    let s = app.init().await;
    let http = reqwest::Client::new();
    let response = http
        .get(format!(
            "{}/v1/auth/cross-device/status/{}",
            app.client.base, s.session_id
        ))
        .header("X-Polling-Token", &s.polling_token)
        .header("accept", "text/event-stream")
        .header("accept-encoding", "br, gzip")
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("content-encoding").is_none());
}
