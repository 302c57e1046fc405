//! Connections that cannot be exhausted: slow or idle ones are closed by hyper's header timer, slow bodies by the request timeout, and no more than the cap are served at once (loopback only, bounded counts).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::both_stores;
use crate::helpers::*;

both_stores!(
    slow_idle_and_slow_body_connections_are_closed,
    no_more_than_the_cap_of_connections_is_served,
);

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; what it said on the way, and when it closed.
async fn until_closed(mut stream: TcpStream, within: Duration) -> Option<(String, Instant)> {
    let mut said = Vec::new();
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Some((String::from_utf8_lossy(&said).into_owned(), Instant::now()));
            }
            Ok(Ok(n)) => said.extend_from_slice(&buffer[..n]),
            Err(_) => return None,
        }
    }
}

async fn slow_idle_and_slow_body_connections_are_closed(backend: Backend) {
    let extra = format!("header_timeout = \"1s\"\nrequest_timeout = \"1s\"\n{RELAXED_LIMITS}");
    let app = TestApp::spawn_configured(backend, "5m", &extra).await;
    let started = Instant::now();
    let mut waiting = Vec::new();
    // Five slowloris connections: a request head begun, never finished.
    for _ in 0..5 {
        let mut slow = TcpStream::connect(address(&app)).await.unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: bridge\r\nX-Slow: ")
            .await
            .unwrap();
        waiting.push(("slow head", slow));
    }
    // One that says nothing at all.
    waiting.push(("idle", TcpStream::connect(address(&app)).await.unwrap()));
    // One whose body never arrives.
    let mut body = TcpStream::connect(address(&app)).await.unwrap();
    body.write_all(
        b"POST /v1/auth/cross-device/init HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\n\
          Authorization: Bearer cli_shop_test_key_0001\r\nOrigin: https://shop.test\r\nContent-Length: 100\r\n\r\n{\"a",
    )
    .await
    .unwrap();
    waiting.push(("slow body", body));

    for (what, stream) in waiting {
        let (said, closed) = until_closed(stream, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("the {what} connection is still open after 5 s"));
        assert!(
            closed - started < Duration::from_secs(4),
            "{what}: closed after {:?}",
            closed - started
        );
        if what == "slow body" {
            assert!(said.starts_with("HTTP/1.1 408"), "{what}: {said}");
            assert!(
                said.to_ascii_lowercase().contains("x-frame-options: deny"),
                "the 408 carries the security headers: {said}"
            );
        }
    }
    // The bridge itself is fine.
    assert_eq!(
        app.request(reqwest::Method::GET, "/healthz")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

async fn no_more_than_the_cap_of_connections_is_served(backend: Backend) {
    let extra = format!("header_timeout = \"1s\"\nmax_connections = 3\n{RELAXED_LIMITS}");
    let app = TestApp::spawn_configured(backend, "5m", &extra).await;
    let held: Vec<TcpStream> =
        futures::future::join_all((0..3).map(|_| TcpStream::connect(address(&app))))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    // Give the bridge a moment to accept the three.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let url = format!("{}/healthz", app.base);
    assert!(
        fresh.get(&url).send().await.is_err(),
        "a fourth connection waits while three are open"
    );
    // The three idle ones (still held by the client) are closed by the bridge's header timer;
    // then it serves again.
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert_eq!(
        patient.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    drop(held);
}
