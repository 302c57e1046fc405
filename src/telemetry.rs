//! What the bridge counts and times for Prometheus: every metric's name and help, and the one function each is recorded through.
//!
//! Labels come only from bounded sets (app ids from the settings, error codes, limit names,
//! route patterns, store operations), so no client can grow the scrape by what it sends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum_prometheus::{EndpointLabel, PrometheusMetricLayer, PrometheusMetricLayerBuilder};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::session::{Session, State, Timestamp};

pub const SESSIONS_STARTED: &str = "qr_bridge_sessions_started_total";
pub const SESSIONS_FINISHED: &str = "qr_bridge_sessions_finished_total";
pub const SCAN_SECONDS: &str = "qr_bridge_session_scan_seconds";
pub const APPROVAL_SECONDS: &str = "qr_bridge_session_approval_seconds";
pub const VERIFY_REFUSALS: &str = "qr_bridge_verify_refusals_total";
pub const STREAMS_OPEN: &str = "qr_bridge_status_streams_open";
pub const RATE_LIMITED: &str = "qr_bridge_rate_limited_total";
pub const STORE_SECONDS: &str = "qr_bridge_store_operation_duration_seconds";
pub const STORE_ERRORS: &str = "qr_bridge_store_errors_total";
pub const PUBSUB_RECONNECTS: &str = "qr_bridge_pubsub_reconnects_total";
pub const WEBHOOK_ATTEMPTS: &str = "qr_bridge_webhook_attempts_total";
pub const WEBHOOKS_GIVEN_UP: &str = "qr_bridge_webhooks_given_up_total";
/// axum-prometheus's names under our prefix.
pub const HTTP_REQUESTS: &str = "qr_bridge_http_requests_total";
pub const HTTP_SECONDS: &str = "qr_bridge_http_requests_duration_seconds";

/// A person takes seconds to minutes to scan and approve.
const HUMAN_BUCKETS: &[f64] = &[
    1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
];
/// A store operation takes well under a millisecond when all is well.
const STORE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0,
];
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Whether a recorder is installed: what only metrics need (the HTTP layer, noting expiries) is
/// skipped otherwise.
static ENABLED: AtomicBool = AtomicBool::new(false);

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Installs the process's recorder (once: `serve` calls it) and returns what renders the scrape.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(SCAN_SECONDS.into()), HUMAN_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(APPROVAL_SECONDS.into()), HUMAN_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(STORE_SECONDS.into()), STORE_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(HTTP_SECONDS.into()), HTTP_BUCKETS)?
        .install_recorder()?;
    describe();
    ENABLED.store(true, Ordering::Relaxed);
    // Histograms are kept in per-thread buffers until drained; the scrape drains them too.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    describe_counter!(
        SESSIONS_STARTED,
        "Cross-device sessions started, by app and kind (auth, registration)."
    );
    describe_counter!(
        SESSIONS_FINISHED,
        "Sessions that ended, by app and outcome: completed, denied, cancelled, or expired (counted once, when first seen expired)."
    );
    describe_histogram!(
        SCAN_SECONDS,
        Unit::Seconds,
        "From a session's start to its QR code being opened on a phone."
    );
    describe_histogram!(
        APPROVAL_SECONDS,
        Unit::Seconds,
        "From the phone opening a session to its completion."
    );
    describe_counter!(
        VERIFY_REFUSALS,
        "Phone answers (passkey sign-ins and registrations) refused, by reason (the API's error code)."
    );
    describe_gauge!(STREAMS_OPEN, "Status event streams open now.");
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by limit.");
    describe_histogram!(
        STORE_SECONDS,
        Unit::Seconds,
        "Store operations, by operation."
    );
    describe_counter!(STORE_ERRORS, "Store operations that failed, by operation.");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook POSTs, by result: accepted (2xx) or refused (anything else, or no answer)."
    );
    describe_counter!(
        WEBHOOKS_GIVEN_UP,
        "Webhook deliveries dropped after failing for webhook_give_up_after."
    );
    describe_counter!(
        PUBSUB_RECONNECTS,
        "Times a Redis pub/sub connection was lost and opened again."
    );
}

/// HTTP requests by route pattern, method and status, with their latency. A path no route
/// matched is counted as `unmatched`: a client probing random paths must not mint labels.
pub fn http_layer() -> PrometheusMetricLayer<'static> {
    PrometheusMetricLayerBuilder::new()
        .with_prefix("qr_bridge")
        .with_endpoint_label_type(EndpointLabel::MatchedPathWithFallbackFn(unmatched))
        .build()
}

fn unmatched(_path: &str) -> String {
    "unmatched".into()
}

pub fn session_started(session: &Session) {
    let kind = match session.kind {
        crate::session::Kind::Auth => "auth",
        crate::session::Kind::Registration => "registration",
    };
    counter!(SESSIONS_STARTED, "app" => session.app_id.clone(), "kind" => kind).increment(1);
}

/// A write moved `session` from `before` to its state at `now`.
pub fn transition(session: &Session, before: State, now: Timestamp) {
    let after = session.state_at(now);
    if after == before {
        return;
    }
    let app = session.app_id.clone();
    let seconds = |from: Timestamp| from.until(now).as_secs_f64();
    match after {
        State::Scanned => {
            histogram!(SCAN_SECONDS, "app" => app).record(seconds(session.created_at))
        }
        State::Completed => {
            let opened = session.scanned_at().unwrap_or(session.created_at);
            histogram!(APPROVAL_SECONDS, "app" => app.clone()).record(seconds(opened));
            session_finished(&app, State::Completed);
        }
        State::Denied | State::Cancelled => session_finished(&app, after),
        State::Pending | State::Expired => {}
    }
}

pub fn session_finished(app: &str, outcome: State) {
    let outcome = match outcome {
        State::Completed => "completed",
        State::Denied => "denied",
        State::Cancelled => "cancelled",
        State::Expired => "expired",
        State::Pending | State::Scanned => return,
    };
    counter!(SESSIONS_FINISHED, "app" => app.to_owned(), "outcome" => outcome).increment(1);
}

pub fn verify_refused(code: &'static str) {
    counter!(VERIFY_REFUSALS, "reason" => code).increment(1);
}

pub fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

pub fn store_operation(operation: &'static str, took: Duration, failed: bool) {
    histogram!(STORE_SECONDS, "operation" => operation).record(took.as_secs_f64());
    if failed {
        counter!(STORE_ERRORS, "operation" => operation).increment(1);
    }
}

pub fn webhook_attempt(accepted: bool) {
    let result = if accepted { "accepted" } else { "refused" };
    counter!(WEBHOOK_ATTEMPTS, "result" => result).increment(1);
}

pub fn webhook_given_up() {
    counter!(WEBHOOKS_GIVEN_UP).increment(1);
}

pub fn pubsub_reconnected() {
    counter!(PUBSUB_RECONNECTS).increment(1);
}

/// Counts one open status stream for as long as it is held.
pub struct OpenStream(());

impl OpenStream {
    pub fn counted() -> Self {
        gauge!(STREAMS_OPEN).increment(1.0);
        OpenStream(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        gauge!(STREAMS_OPEN).decrement(1.0);
    }
}
