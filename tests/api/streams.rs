//! The status stream on real servers: events as the SDK reads them, its endings, several instances on one Redis.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_stores;
use crate::helpers::*;
use crate::phone::Phone;

/// One event as the SDK sees it: the JSON of its `data:` line, and its id.
#[derive(Debug)]
pub struct Received {
    pub id: Option<String>,
    pub data: Value,
}

/// Reads a stream the way the SDK's fetch-based reader does: text split on newlines, `data:` lines
/// parsed alone, comment lines kept aside (they are the heartbeats).
pub struct Events {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    body: Pin<Box<dyn Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    buffer: String,
    pub comments: usize,
}

impl Events {
    /// Opens the status URL as the SDK's fetch does: with the polling token and no other header.
    pub async fn open(
        client: &Client,
        id: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Events {
        let mut req = client
            .http
            .get(format!("{}/v1/auth/cross-device/status/{id}", client.base));
        if let Some(token) = token {
            req = req.header("X-Polling-Token", token);
        } else {
            req = req.header("Accept", "text/event-stream");
        }
        if let Some(last) = last_event_id {
            req = req.header("Last-Event-ID", last);
        }
        // The client's overall timeout would cut long streams; each read is bounded below instead.
        let res = req.timeout(Duration::from_secs(600)).send().await.unwrap();
        Events {
            status: res.status(),
            headers: res.headers().clone(),
            body: Box::pin(res.bytes_stream()),
            buffer: String::new(),
            comments: 0,
        }
    }

    /// The next event, or `None` once the server ended the stream. Panics after `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.next())
            .await
            .expect("an event or the end of the stream in time")
    }

    pub async fn next(&mut self) -> Option<Received> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut data) = (None, None);
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("data:") {
                        data = Some(
                            serde_json::from_str(v.trim())
                                .expect("each data line is one JSON object"),
                        );
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if line.starts_with(':') {
                        self.comments += 1;
                    }
                }
                if let Some(data) = data {
                    return Some(Received { id, data });
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }
}

both_stores!(
    a_stream_sees_the_scan_then_the_completion_with_its_token,
    a_stream_opened_after_completion_gets_the_final_state_at_once,
    streams_end_on_expiry_denial_and_cancellation,
    a_stream_needs_the_right_polling_token,
    last_event_id_is_honoured_on_reconnect,
    streams_end_when_the_server_shuts_down,
);

async fn a_stream_sees_the_scan_then_the_completion_with_its_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    let user = app.register(&mut phone, None).await;
    let s = app.init().await;
    let mut events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(events.headers["content-type"], "text/event-stream");
    assert_eq!(events.headers["cache-control"], "no-cache");
    assert_eq!(events.headers["x-accel-buffering"], "no");

    let first = events.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(first.data, json!({"status": "pending"}));
    let options = app.options(&s.session_id).await;
    let scanned = events.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(scanned.data, json!({"status": "pending", "scanned": true}));
    app.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
        .await;
    let done = events.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(done.data["status"], "completed");
    assert_eq!(done.data["user_id"], user.as_str());
    assert_eq!(
        done.data["session_token"].as_str(),
        Some(app.completion(&s).await.1.as_str())
    );
    let ids: Vec<u64> = [&first, &scanned, &done]
        .iter()
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "event ids grow: {ids:?}"
    );
    assert!(
        events.next_within(Duration::from_secs(5)).await.is_none(),
        "the stream ends after completion"
    );
}

async fn a_stream_opened_after_completion_gets_the_final_state_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let (s, options) = app.opened_sign_in().await;
    app.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
        .await;
    let mut events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    let only = events.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(only.data["status"], "completed");
    assert!(only.data["session_token"].is_string());
    assert!(events.next_within(Duration::from_secs(5)).await.is_none());
}

async fn streams_end_on_expiry_denial_and_cancellation(backend: Backend) {
    let app = TestApp::spawn_with(backend, "1500ms").await;
    let ending = |what: &'static str| json!({ "status": what });

    let s = app.init().await;
    app.context(&s.session_id).await;
    let mut events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    events.next_within(Duration::from_secs(5)).await.unwrap();
    app.deny(&s.session_id).await;
    assert_eq!(
        events
            .next_within(Duration::from_secs(5))
            .await
            .unwrap()
            .data,
        ending("denied")
    );
    assert!(events.next_within(Duration::from_secs(5)).await.is_none());

    let s = app.init().await;
    let mut events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    events.next_within(Duration::from_secs(5)).await.unwrap();
    app.cancel(&s.session_id, &s.polling_token).await;
    assert_eq!(
        events
            .next_within(Duration::from_secs(5))
            .await
            .unwrap()
            .data,
        ending("cancelled")
    );
    assert!(events.next_within(Duration::from_secs(5)).await.is_none());

    // Nobody writes at expiry: the stream notices by itself.
    let s = app.init().await;
    let mut events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    events.next_within(Duration::from_secs(5)).await.unwrap();
    let expired = events.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(expired.data, ending("expired"));
    assert!(expired.id.unwrap().ends_with(".expired"));
    assert!(events.next_within(Duration::from_secs(5)).await.is_none());
}

async fn a_stream_needs_the_right_polling_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut phone = Phone::new();
    app.register(&mut phone, None).await;
    let (s, options) = app.opened_sign_in().await;
    app.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
        .await;
    let other = app.init().await;

    let unknown = app
        .status(&uuid::Uuid::new_v4().to_string(), Some(&s.polling_token))
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, "qr_session_not_found");
    // No token at all is the caller's mistake, said as such (and checked in cross_device.rs).
    for token in [Some(other.polling_token.as_str()), Some("pt_wrong")] {
        let events = Events::open(&app, &s.session_id, token, None).await;
        assert_eq!(events.status, unknown.0, "{token:?}");
        let body: Value = serde_json::from_slice(
            &events
                .body
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .flat_map(|c| c.unwrap().to_vec())
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        assert_eq!(
            body, unknown.1,
            "a stream is refused exactly like an unknown session: {token:?}"
        );
    }
}

async fn last_event_id_is_honoured_on_reconnect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app.init().await;
    let mut events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    let first = events.next_within(Duration::from_secs(5)).await.unwrap();
    drop(events);
    // Reconnecting with what it saw, the client is not sent it again; the next change arrives.
    let mut again = Events::open(
        &app,
        &s.session_id,
        Some(&s.polling_token),
        first.id.as_deref(),
    )
    .await;
    app.context(&s.session_id).await;
    let next = again.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(next.data, json!({"status": "pending", "scanned": true}));
}

async fn streams_end_when_the_server_shuts_down(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let s = app.init().await;
    let mut events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    events.next_within(Duration::from_secs(5)).await.unwrap();
    app.shutdown.cancel();
    assert!(
        events.next_within(Duration::from_secs(5)).await.is_none(),
        "the stream ends"
    );
    let TestApp { server, .. } = app;
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful shutdown does not hang")
        .unwrap();
}

#[tokio::test]
async fn a_quiet_stream_carries_a_heartbeat() {
    let extra = format!("stream_heartbeat = \"200ms\"\n{RELAXED_LIMITS}");
    let app = TestApp::spawn_configured(Backend::Memory, "5m", &extra).await;
    let s = app.init().await;
    let mut events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    events.next_within(Duration::from_secs(5)).await.unwrap();
    // Nothing happens for a while; the read below returns only by timing out.
    let waited = tokio::time::timeout(Duration::from_millis(700), events.next()).await;
    assert!(waited.is_err(), "no event should come");
    assert!(
        events.comments >= 2,
        "comment lines kept the connection alive: {}",
        events.comments
    );
}

#[tokio::test]
async fn an_approval_on_one_instance_reaches_a_stream_on_another() {
    if crate::helpers::no_redis() {
        return;
    }
    approval_across_instances(TestApp::spawn(Backend::Redis).await).await;
}

/// The same on a Redis Cluster (three masters of the test process's own): the session, its
/// ceremony and its notice channel share one shard, reached by both instances.
#[tokio::test]
async fn an_approval_on_one_instance_reaches_a_stream_on_another_on_a_redis_cluster() {
    let Some(cluster) = crate::kit::testing::cluster_url() else {
        return;
    };
    approval_across_instances(TestApp::spawn_on_redis(&cluster).await).await;
}

async fn approval_across_instances(a: TestApp) {
    let b = a.sibling().await;
    let mut phone = Phone::new();
    b.register(&mut phone, None).await;
    let s = a.init().await;
    let mut events = Events::open(&a, &s.session_id, Some(&s.polling_token), None).await;
    assert_eq!(
        events
            .next_within(Duration::from_secs(5))
            .await
            .unwrap()
            .data["status"],
        "pending"
    );
    let options = b.options(&s.session_id).await;
    assert_eq!(
        events
            .next_within(Duration::from_secs(5))
            .await
            .unwrap()
            .data["scanned"],
        true
    );
    assert_eq!(
        b.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let done = events.next_within(Duration::from_secs(5)).await.unwrap();
    assert_eq!(done.data["status"], "completed");
    assert!(done.data["session_token"].is_string());
}

#[tokio::test]
async fn a_completion_survives_losing_the_pubsub_connection_at_that_moment() {
    if crate::helpers::no_redis() {
        return;
    }
    let a = TestApp::spawn(Backend::Redis).await;
    let b = a.sibling().await;
    let mut phone = Phone::new();
    b.register(&mut phone, None).await;
    let redis = redis::Client::open(redis_url()).unwrap();
    let mut admin = redis.get_multiplexed_async_connection().await.unwrap();
    for round in 0..3 {
        let s = a.init().await;
        let mut events = Events::open(&a, &s.session_id, Some(&s.polling_token), None).await;
        events.next_within(Duration::from_secs(5)).await.unwrap();
        let options = b.options(&s.session_id).await;
        assert_eq!(
            events
                .next_within(Duration::from_secs(5))
                .await
                .unwrap()
                .data["scanned"],
            true
        );
        let before = a.redis.as_ref().unwrap().pubsub_connections();
        let signed = phone.sign(BRIDGE_ORIGIN, &options);
        // Kill every subscriber connection while the approval is being written and announced.
        let mut kill = redis::cmd("CLIENT");
        kill.arg("KILL").arg("TYPE").arg("pubsub");
        let kill = kill.query_async::<i64>(&mut admin);

        let (killed, verified) = tokio::join!(kill, b.verify(&s.session_id, &signed));
        assert!(
            killed.unwrap() >= 1,
            "round {round}: a subscriber was killed"
        );
        assert_eq!(verified.0, StatusCode::NO_CONTENT);
        let done = events
            .next_within(Duration::from_secs(10))
            .await
            .expect("delivered after the reconnect");
        assert_eq!(done.data["status"], "completed", "round {round}");
        assert!(done.data["session_token"].is_string());
        assert!(
            a.redis.as_ref().unwrap().pubsub_connections() > before,
            "round {round}: the hub reconnected"
        );
    }
}

#[tokio::test]
async fn a_stream_outlives_a_redis_restart() {
    let mut redis_server = OwnRedis::start();
    let a = TestApp::spawn_on_redis(&redis_server.url()).await;
    let b = a.sibling().await;
    let mut phone = Phone::new();
    b.register(&mut phone, None).await;
    let s = a.init().await;
    let mut events = Events::open(&a, &s.session_id, Some(&s.polling_token), None).await;
    events.next_within(Duration::from_secs(5)).await.unwrap();
    let before = a.redis.as_ref().unwrap().pubsub_connections();

    redis_server.restart();
    // Only once A's hub is back is the approval written on B, so it arrives by the resubscribed
    // channel and not by the resync that follows a reconnect.
    let hub = a.redis.as_ref().unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while hub.pubsub_connections() <= before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the hub reconnects");
    let options = b.options(&s.session_id).await;

    assert_eq!(
        b.verify(&s.session_id, &phone.sign(BRIDGE_ORIGIN, &options))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let mut last = events.next_within(Duration::from_secs(15)).await.unwrap();
    while last.data["status"] != "completed" {
        last = events
            .next_within(Duration::from_secs(15))
            .await
            .expect("the completion arrives");
    }
    assert!(last.data["session_token"].is_string());
    assert!(
        a.redis.as_ref().unwrap().pubsub_connections() > before,
        "the hub reconnected"
    );
}

both_stores!(
    one_client_holds_at_most_its_cap_of_streams,
    a_stranger_with_a_wrong_token_takes_no_stream_place,
    a_session_holds_at_most_its_cap_of_streams,
    one_browser_holds_at_most_its_cap_of_desktop_streams,
    desktop_streams_are_counted_by_the_clients_status_budget,
);

async fn one_client_holds_at_most_its_cap_of_streams(backend: Backend) {
    let extra = format!("{RELAXED_LIMITS}\nstreams_per_client = 2");
    let app = TestApp::spawn_configured(backend, "5m", &extra).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let s = app.init().await;
        let events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
        assert_eq!(events.status, StatusCode::OK);
        open.push(events);
    }
    let s = app.init().await;
    let refused = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a third stream from one client, whatever the session"
    );
}

async fn a_stranger_with_a_wrong_token_takes_no_stream_place(backend: Backend) {
    let extra = format!("{RELAXED_LIMITS}\nstreams_per_session = 1");
    let app = TestApp::spawn_configured(backend, "5m", &extra).await;
    let s = app.init().await;
    for _ in 0..3 {
        let wrong = Events::open(&app, &s.session_id, Some("pt_wrong"), None).await;
        assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    }
    let right = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    assert_eq!(
        right.status,
        StatusCode::OK,
        "the session's one place is still free"
    );
}

async fn a_session_holds_at_most_its_cap_of_streams(backend: Backend) {
    let app = TestApp::spawn_configured(
        backend,
        "5m",
        &format!("{RELAXED_LIMITS}\nstreams_per_session = 3"),
    )
    .await;
    let s = app.init().await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let events = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
        assert_eq!(events.status, StatusCode::OK);
        open.push(events);
    }
    let refused = Events::open(&app, &s.session_id, Some(&s.polling_token), None).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers.contains_key("retry-after"));
    // Another session is not affected, and polling still answers.
    let other = app.init().await;
    let events = Events::open(&app, &other.session_id, Some(&other.polling_token), None).await;
    assert_eq!(events.status, StatusCode::OK);
    assert_eq!(
        app.status(&s.session_id, Some(&s.polling_token)).await.0,
        StatusCode::OK
    );
    // The open streams still work: they see the session end.
    app.context(&s.session_id).await;
    for events in &mut open {
        assert!(events.next_within(Duration::from_secs(5)).await.is_some());
    }
}

async fn one_browser_holds_at_most_its_cap_of_desktop_streams(backend: Backend) {
    desktop_streams_refused_after(backend, "streams_per_browser = 3", 3).await;
}

async fn desktop_streams_are_counted_by_the_clients_status_budget(backend: Backend) {
    let limits = "[limits]\nstatus_per_client = \"2/1m\"\ninit_per_client = \"100/1m\"";
    desktop_streams_refused_after(backend, limits, 2).await;
}

/// A desktop page in one browser opens streams until the `allowed`-th, then is refused.
async fn desktop_streams_refused_after(backend: Backend, limits: &str, allowed: usize) {
    let limits = if limits.starts_with('[') {
        limits.to_owned()
    } else {
        format!("{RELAXED_LIMITS}\n{limits}")
    };
    let app = TestApp::spawn_configured(backend, "5m", &limits).await;
    let browser = Client::browser();
    let (status, _) = app
        .server_fn::<qr_bridge::ui::DeskOpen>(&browser, Some(BRIDGE_ORIGIN), &[("app_id", "shop")])
        .await;
    assert_eq!(status, StatusCode::OK);
    let stream = || {
        browser
            .get(format!("{}/login/shop/events", app.base))
            .header("Accept", "text/event-stream")
            .timeout(Duration::from_secs(600))
            .send()
    };
    let mut open = Vec::new();
    for _ in 0..allowed {
        let res = stream().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let refused = stream().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "qr_rate_limited");
}
