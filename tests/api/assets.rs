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

/// A release build names its files after their content (`hash.txt` in the site root says how):
/// those names may be kept for a year, the page links them, and the page itself is never kept.
#[tokio::test]
async fn hashed_files_are_kept_for_a_year_and_the_page_names_them() {
    let (dir, wasm) = site(64 * 1024);
    let pkg = dir.path().join("pkg");
    std::fs::write(
        dir.path().join("hash.txt"),
        "js: 3f2a9c\nwasm: 8b1e07\ncss: c0ffee\n",
    )
    .unwrap();
    std::fs::write(pkg.join("qr-bridge.8b1e07.wasm"), &wasm).unwrap();
    // What `--precompress` leaves beside it: sent as it is.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &wasm).unwrap();
    let precompressed = gz.finish().unwrap();
    std::fs::write(pkg.join("qr-bridge.8b1e07.wasm.gz"), &precompressed).unwrap();
    std::fs::write(pkg.join("qr-bridge.3f2a9c.js"), "export default 1;").unwrap();
    // The stylesheet is missing (a site copied in part): its 404 must not be kept for a year.
    let extra = format!("site_root = \"{}\"", dir.path().display());
    let app = TestApp::spawn_configured(Backend::Memory, "5m", &extra).await;
    let get = |path: &'static str| {
        let request = app
            .client
            .request(Method::GET, path)
            .header("accept-encoding", "br");
        async move { request.send().await.unwrap() }
    };

    for path in ["/pkg/qr-bridge.8b1e07.wasm", "/pkg/qr-bridge.3f2a9c.js"] {
        let kept = get(path).await;
        assert_eq!(kept.status(), StatusCode::OK, "{path}");
        assert_eq!(
            kept.headers()["cache-control"],
            "public, max-age=31536000, immutable",
            "{path}"
        );
    }
    let wasm_sent = get("/pkg/qr-bridge.8b1e07.wasm").await;
    assert_eq!(
        wasm_sent.headers()["content-encoding"],
        "br",
        "kept and compressed"
    );
    let gzip_sent = app
        .client
        .request(Method::GET, "/pkg/qr-bridge.8b1e07.wasm")
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip_sent.headers()["content-encoding"], "gzip");
    assert!(
        gzip_sent
            .headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("accept-encoding")),
        "a cache must not hand gzip to a client that did not ask for it"
    );
    assert_eq!(
        gzip_sent.bytes().await.unwrap(),
        precompressed,
        "the build's own copy"
    );
    let missing = get("/pkg/qr-bridge.c0ffee.css").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_ne!(
        missing
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("public, max-age=31536000, immutable")
    );

    // A name this build did not make (an older build's file left in place) is only revalidated.
    let older = get("/pkg/qr-bridge.wasm").await;
    assert_eq!(older.status(), StatusCode::OK);
    assert_eq!(older.headers()["cache-control"], "no-cache");
    assert_eq!(
        get("/pkg/qr-bridge.000000.wasm").await.status(),
        StatusCode::NOT_FOUND
    );

    let page = app.client.request(Method::GET, "/").send().await.unwrap();
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    for linked in [
        "/pkg/qr-bridge.3f2a9c.js",
        "/pkg/qr-bridge.8b1e07.wasm",
        "/pkg/qr-bridge.c0ffee.css",
    ] {
        assert!(html.contains(linked), "the page links {linked}: {html}");
    }
}

/// hash.txt names files; a value that is not a hash (a path, a route pattern) is not trusted with
/// a year's caching or a route of its own.
#[tokio::test]
async fn a_hash_file_that_names_no_hashes_is_not_trusted() {
    let (dir, _) = site(1024);
    std::fs::write(
        dir.path().join("hash.txt"),
        "js: ../../etc/passwd\nwasm: {x}\ncss: c0ffee\n",
    )
    .unwrap();
    let extra = format!("site_root = \"{}\"", dir.path().display());
    let app = TestApp::spawn_configured(Backend::Memory, "5m", &extra).await;
    let plain = app
        .client
        .request(Method::GET, "/pkg/qr-bridge.wasm")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.headers()["cache-control"],
        "no-cache",
        "plain names, revalidated"
    );
}
