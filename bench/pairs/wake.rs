//! Pair 3: how soon a desktop waiting on instance A hears of a verify on instance B, against raw Redis pub/sub.

use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::bridge::{Bridge, events, registered_phone};
use crate::stats::Percentiles;

#[derive(Debug, Serialize, Deserialize)]
pub struct WakeLatency {
    pub completions: usize,
    pub verify_return_to_event_ms: Percentiles,
    pub verify_send_to_event_ms: Percentiles,
    pub raw_publish_to_message_ms: Percentiles,
}

pub async fn run(a: &Bridge, b: &Bridge, redis_url: &str, completions: usize) -> WakeLatency {
    let (from_return, from_send) = wake(a, b, completions).await;
    let raw = raw_pubsub(redis_url, completions).await;
    WakeLatency {
        completions,
        verify_return_to_event_ms: Percentiles::of(from_return),
        verify_send_to_event_ms: Percentiles::of(from_send),
        raw_publish_to_message_ms: Percentiles::of(raw),
    }
}

/// From the phone's verify returning (and from its sending) to the desktop's event, in ms.
async fn wake(a: &Bridge, b: &Bridge, rounds: usize) -> (Vec<f64>, Vec<f64>) {
    let desktop = a.client();
    // One pool for both sides, as one browser would keep.
    let approver = b.client_over(desktop.http.clone());
    let mut phone = registered_phone(&approver).await;
    let (mut from_return, mut from_send) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let session = desktop.init().await;
        let id = &session.session_id;
        let mut events = Box::pin(events(&desktop, &session).await);
        assert_eq!(events.next().await.unwrap()["status"], "pending");
        // Signed before the clock starts: the phone's own work is not the bridge's.
        let signed = phone.sign(&b.origin, &approver.options(id).await);
        assert_eq!(events.next().await.unwrap()["scanned"], true);
        let arrived = tokio::spawn(async move {
            while let Some(e) = events.next().await {
                if e["status"] == "completed" {
                    assert!(e["session_token"].is_string());
                    return Instant::now();
                }
            }
            panic!("stream ended without completion");
        });
        let sent = Instant::now();
        let (status, body) = approver.verify(id, &signed).await;
        let returned = Instant::now();
        assert_eq!(status, 204, "{body}");
        let arrived = arrived.await.unwrap();
        // The event may beat the verify's own response back: then this is negative.
        let since_sent = |t: Instant| t.duration_since(sent).as_secs_f64() * 1000.0;
        from_return.push(since_sent(arrived) - since_sent(returned));
        from_send.push(since_sent(arrived));
    }
    (from_return, from_send)
}

/// The pair: PUBLISH on one connection, the message on another, in ms.
async fn raw_pubsub(url: &str, rounds: usize) -> Vec<f64> {
    let client = redis::Client::open(url).unwrap();
    let mut publisher = client.get_multiplexed_async_connection().await.unwrap();
    let mut subscriber = client.get_async_pubsub().await.unwrap();
    subscriber.subscribe("qrbbench:wake").await.unwrap();
    let mut messages = subscriber.on_message();
    let mut latencies = Vec::new();
    for i in 0..rounds {
        let sent = Instant::now();
        let _: i64 = redis::cmd("PUBLISH")
            .arg("qrbbench:wake")
            .arg(i)
            .query_async(&mut publisher)
            .await
            .unwrap();
        messages.next().await.unwrap();
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    latencies
}
