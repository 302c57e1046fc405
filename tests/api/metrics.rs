//! `/metrics`: a scrape after a real flow on the bridge binary shows the counters moved by exactly what the flow did.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::cli::{listening_on, qr_bridge, serve_logged, wait_for_line};
use crate::helpers::{
    BRIDGE_ORIGIN, Client, OwnRedis, RedisCleanup, no_redis, redis_url, reply, settings_toml,
    store_lines,
};
use crate::https::Running;
use crate::phone::Phone;
use crate::streams::Events;

/// The value of one sample in a Prometheus text scrape: `name` with at least `labels`, summed
/// over any other labels; 0 when absent.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

#[test]
fn a_sample_is_found_by_name_and_labels() {
    let scrape = "# HELP x\nx_total{app=\"a\",outcome=\"done\"} 2\nx_total{app=\"b\",outcome=\"done\"} 3\nx_total_more 9\n";
    assert_eq!(sample(scrape, "x_total", &[("outcome", "done")]), 5.0);
    assert_eq!(sample(scrape, "x_total", &[("app", "b")]), 3.0);
    assert_eq!(sample(scrape, "x_total", &[("app", "c")]), 0.0);
}

struct Scraped {
    bridge: Client,
    metrics: String,
    _process: Running,
    _dir: tempfile::TempDir,
    _cleanup: Option<RedisCleanup>,
}

/// The bridge binary with metrics on a listener of their own, sessions living `ttl`.
fn bridge(on_redis: bool, ttl: &str) -> Scraped {
    bridge_on(on_redis.then(redis_url), ttl)
}

fn bridge_on(redis: Option<String>, ttl: &str) -> Scraped {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    let (store, cleanup) = store_lines(redis.as_deref());
    let mut extra = format!("metrics = \"127.0.0.1:0\"\n{store}");
    extra.push_str("[limits]\nstatus_per_token = \"3/1m\"\n");
    std::fs::write(&config, settings_toml(ttl, dir.path(), &extra)).unwrap();
    let (child, line, lines) = serve_logged(&config, &[]).expect("serves");
    let at = wait_for_line(&lines, "metrics at", Duration::from_secs(10)).expect("metrics listen");
    Scraped {
        bridge: Client::new(&format!("http://{}", listening_on(&line))),
        metrics: format!("http://{}", listening_on(&at)),
        _process: Running(Some(child)),
        _dir: dir,
        _cleanup: cleanup,
    }
}

impl Scraped {
    async fn scrape(&self) -> String {
        let response = reqwest::get(format!("{}/metrics", self.metrics))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        response.text().await.unwrap()
    }
}

async fn a_scrape_counts_exactly_what_a_flow_did(on_redis: bool) {
    let b = bridge(on_redis, "1500ms");
    let c = &b.bridge;
    let before = b.scrape().await;
    assert_eq!(
        sample(&before, "qr_bridge_sessions_started_total", &[]),
        0.0
    );

    // One registration and one sign-in, completed.
    let mut phone = Phone::new();
    let registration = c.init_registration(Some("ada")).await;
    let options = c.options(&registration.session_id).await;
    let created = phone.create(BRIDGE_ORIGIN, &options);
    let (status, body) = c
        .verify_registration(&registration.session_id, &created)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    c.completion(&registration).await;
    let (signed_in, options) = c.opened_sign_in().await;
    let signed = phone.sign(BRIDGE_ORIGIN, &options);
    assert_eq!(
        c.verify(&signed_in.session_id, &signed).await.0,
        StatusCode::NO_CONTENT
    );
    // The same answer again: refused, for a reason the scrape must name.
    let (status, replayed) = c.verify(&signed_in.session_id, &signed).await;
    assert!(status.is_client_error(), "{replayed}");
    let reason = replayed["error"]["code"].as_str().unwrap().to_owned();
    c.completion(&signed_in).await;

    // One declined on the phone, one cancelled (twice: one cancellation).
    let declined = c.init().await;
    c.options(&declined.session_id).await;
    assert_eq!(c.deny(&declined.session_id).await.0, StatusCode::NO_CONTENT);
    let cancelled = c.init().await;
    let mut stream = Events::open(
        c,
        &cancelled.session_id,
        Some(&cancelled.polling_token),
        None,
    )
    .await;
    stream
        .next_within(Duration::from_secs(5))
        .await
        .expect("the first event");
    let open = b.scrape().await;
    assert_eq!(sample(&open, "qr_bridge_status_streams_open", &[]), 1.0);
    for _ in 0..2 {
        assert_eq!(
            c.cancel(&cancelled.session_id, &cancelled.polling_token)
                .await
                .0,
            StatusCode::NO_CONTENT
        );
    }
    while stream.next_within(Duration::from_secs(5)).await.is_some() {}

    // One left to expire, looked at three times after: one expiry. Its fourth look is over the
    // limit (3 a minute per polling token here).
    let expiring = c.init().await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    for expected in ["qr_expired", "qr_expired", "qr_expired", "qr_rate_limited"] {
        let (_, body) = c
            .status(&expiring.session_id, Some(&expiring.polling_token))
            .await;
        assert_eq!(body["error"]["code"], expected, "{body}");
    }

    let after = b.scrape().await;
    let count = |name: &str, labels: &[(&str, &str)]| sample(&after, name, labels);
    let shop = ("app", "shop");
    assert_eq!(
        count(
            "qr_bridge_sessions_started_total",
            &[shop, ("kind", "registration")]
        ),
        1.0
    );
    assert_eq!(
        count(
            "qr_bridge_sessions_started_total",
            &[shop, ("kind", "auth")]
        ),
        4.0
    );
    for (outcome, n) in [
        ("completed", 2.0),
        ("denied", 1.0),
        ("cancelled", 1.0),
        ("expired", 1.0),
    ] {
        assert_eq!(
            count(
                "qr_bridge_sessions_finished_total",
                &[shop, ("outcome", outcome)]
            ),
            n,
            "{outcome}"
        );
    }
    // Opened on a phone: the registration, the sign-in and the declined one.
    assert_eq!(count("qr_bridge_session_scan_seconds_count", &[shop]), 3.0);
    assert_eq!(
        count("qr_bridge_session_approval_seconds_count", &[shop]),
        2.0
    );
    assert_eq!(
        count("qr_bridge_verify_refusals_total", &[("reason", &reason)]),
        1.0
    );
    assert_eq!(count("qr_bridge_verify_refusals_total", &[]), 1.0);
    assert_eq!(
        count(
            "qr_bridge_rate_limited_total",
            &[("limit", "status_per_token")]
        ),
        1.0
    );
    assert_eq!(count("qr_bridge_rate_limited_total", &[]), 1.0);
    assert_eq!(
        count("qr_bridge_status_streams_open", &[]),
        0.0,
        "the stream ended with its session"
    );
    assert_eq!(
        count(
            "qr_bridge_store_operation_duration_seconds_count",
            &[("operation", "insert")]
        ),
        5.0
    );
    assert_eq!(count("qr_bridge_store_errors_total", &[]), 0.0);
    let inits = [
        ("endpoint", "/v1/auth/cross-device/init"),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert_eq!(count("qr_bridge_http_requests_total", &inits), 4.0);
    let polls = [
        ("endpoint", "/v1/auth/cross-device/status/{id}"),
        ("status", "410"),
    ];
    assert_eq!(count("qr_bridge_http_requests_total", &polls), 3.0);
    assert!(count("qr_bridge_http_requests_duration_seconds_count", &inits) == 4.0);
    // Every metric says what it is.
    for name in [
        "qr_bridge_sessions_started_total",
        "qr_bridge_session_scan_seconds",
        "qr_bridge_store_operation_duration_seconds",
    ] {
        assert!(
            after.contains(&format!("# HELP {name} ")),
            "{name} has no help"
        );
    }
}

#[tokio::test]
async fn a_scrape_counts_exactly_what_a_flow_did_on_the_embedded_store() {
    a_scrape_counts_exactly_what_a_flow_did(false).await;
}

#[tokio::test]
async fn a_scrape_counts_exactly_what_a_flow_did_on_redis() {
    if no_redis() {
        return;
    }
    a_scrape_counts_exactly_what_a_flow_did(true).await;
}

/// Metrics on their own address stay off the public listener; paths nobody routes share one
/// label, so a client probing random paths cannot grow the scrape.
#[tokio::test]
async fn the_public_listener_serves_no_metrics_and_probes_mint_no_labels() {
    let b = bridge(false, "5m");
    let response = b
        .bridge
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    for n in 0..20 {
        b.bridge
            .request(Method::GET, &format!("/probe-{n}"))
            .send()
            .await
            .unwrap();
    }
    let scrape = b.scrape().await;
    assert!(!scrape.contains("probe-"), "a probed path became a label");
    assert!(
        sample(
            &scrape,
            "qr_bridge_http_requests_total",
            &[("endpoint", "unmatched")]
        ) >= 20.0
    );
}

#[test]
fn a_metrics_setting_that_is_neither_off_main_nor_an_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        settings_toml("5m", dir.path(), "metrics = \"everywhere\""),
    )
    .unwrap();
    let out = qr_bridge(&config, &["serve"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("metrics"),
        "{stderr}"
    );
}

#[tokio::test]
async fn metrics_main_serves_the_scrape_beside_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        settings_toml("5m", dir.path(), "metrics = \"main\""),
    )
    .unwrap();
    let (child, line, _) = serve_logged(&config, &[]).expect("serves");
    let _process = Running(Some(child));
    let c = Client::new(&format!("http://{}", listening_on(&line)));
    c.init().await;
    let response = c.request(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let scrape = response.text().await.unwrap();
    assert_eq!(
        sample(
            &scrape,
            "qr_bridge_sessions_started_total",
            &[("app", "shop")]
        ),
        1.0
    );
}

/// A Redis restart shows as store errors while it is down and as a pub/sub reconnect after.
#[tokio::test]
async fn a_redis_restart_shows_as_store_errors_and_a_pubsub_reconnect() {
    if no_redis() {
        return;
    }
    let mut redis = OwnRedis::start();
    let b = bridge_on(Some(redis.url()), "5m");
    let s = b.bridge.init().await;
    let mut stream = Events::open(&b.bridge, &s.session_id, Some(&s.polling_token), None).await;
    stream
        .next_within(Duration::from_secs(5))
        .await
        .expect("the first event");
    assert_eq!(
        sample(&b.scrape().await, "qr_bridge_pubsub_reconnects_total", &[]),
        0.0
    );

    redis.stop();
    let (status, _) = reply(
        b.bridge
            .app_request(Method::POST, "/v1/auth/cross-device/init")
            .json(&serde_json::json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    redis.start_again();
    // Waits for the hub to find Redis again (its backoff), not for a guessed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let scrape = loop {
        let scrape = b.scrape().await;
        if sample(&scrape, "qr_bridge_pubsub_reconnects_total", &[]) >= 1.0 {
            break scrape;
        }
        assert!(std::time::Instant::now() < deadline, "no reconnect counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(sample(&scrape, "qr_bridge_store_errors_total", &[]) >= 1.0);
    assert_eq!(
        sample(&scrape, "qr_bridge_sessions_started_total", &[]),
        1.0,
        "the refused start is not counted"
    );
}
