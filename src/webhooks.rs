//! Webhooks to an app's backend: what each audit event becomes, and the sender that delivers the queue at least once, signed the Standard Webhooks way, retrying with backoff.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::apps::{Apps, WebhookTarget};
use crate::audit::{Action, AuditEvent};
use crate::outbox::{Claimed, Delivery, Message};
use crate::store::Store;

/// How long a claimed delivery is this instance's: well above what its attempts can take.
const LEASE: Duration = Duration::from_secs(60);
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the queue is looked at when it was empty.
const POLL: Duration = Duration::from_millis(500);
/// Deliveries one instance sends at once: a backend that never answers holds one of them for
/// 10 s an attempt, not the whole queue.
const SENDERS: usize = 4;
/// The longest wait between two attempts.
const LONGEST_BACKOFF: Duration = Duration::from_secs(3600);

/// The delivery an event makes for its app's backend, if it is one they hear about.
pub fn delivery_for(event: &AuditEvent) -> Option<Delivery> {
    let types: &[&str] = match event.action {
        Action::Registration => &["passkey.created", "session.completed"],
        Action::SignIn => &["session.completed"],
        Action::Declined => &["session.denied"],
        Action::PasskeyRevoked => &["passkey.revoked"],
        Action::Disowned => &["session.disowned"],
        Action::PasskeyRefused | Action::SignedOut | Action::UserRemoved | Action::TokenRevoked => {
            return None;
        }
    };
    let messages = types
        .iter()
        .map(|kind| {
            let mut data = json!({ "app_id": event.app_id });
            for (key, value) in [
                ("session_id", &event.session_id),
                ("user_id", &event.user_id),
                ("passkey_id", &event.passkey_id),
            ] {
                if let Some(value) = value
                    && (key != "session_id" || *kind != "passkey.revoked")
                {
                    data[key] = value.as_str().into();
                }
            }
            let body = json!({
                "type": kind,
                "timestamp": crate::clock::iso8601(event.at),
                "data": data,
            });
            Message {
                id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
                kind: (*kind).to_owned(),
                body: body.to_string(),
            }
        })
        .collect();
    Some(Delivery {
        id: event.id.clone(),
        app_id: event.app_id.clone(),
        messages,
        sent: 0,
        attempts: 0,
        failing_since: None,
    })
}

/// The wait before attempt `failed + 1`: `first`, doubling, at most an hour.
pub fn backoff(first: Duration, failed: u32) -> Duration {
    let factor = 2u32.saturating_pow(failed.saturating_sub(1).min(20));
    first.saturating_mul(factor).min(LONGEST_BACKOFF)
}

/// Delivers the queue this deployment shares: every instance runs one, and a delivery is
/// claimed by one at a time.
pub struct Sender {
    store: Arc<dyn Store>,
    apps: Arc<Apps>,
    http: reqwest::Client,
    first_retry: Duration,
    give_up_after: Duration,
}

impl Sender {
    pub fn new(
        store: Arc<dyn Store>,
        apps: Arc<Apps>,
        first_retry: Duration,
        give_up_after: Duration,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            // A redirect would take the signed body somewhere its app never named.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("QR-Bridge-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender {
            store,
            apps,
            http,
            first_retry,
            give_up_after,
        })
    }

    /// Sends until `stop`, [`SENDERS`] deliveries at a time; those under way are finished first.
    pub async fn run(self, stop: CancellationToken) {
        let sender = Arc::new(self);
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..SENDERS {
            senders.spawn(sender.clone().work(stop.clone()));
        }
        while senders.join_next().await.is_some() {}
    }

    async fn work(self: Arc<Self>, stop: CancellationToken) {
        loop {
            while !stop.is_cancelled() {
                match self.store.claim_delivery(LEASE).await {
                    Ok(Some(claim)) => self.deliver(claim).await,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the webhook queue");
                        break;
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn deliver(&self, claim: Claimed) {
        let mut delivery = claim.delivery.clone();
        // No target here (this instance's settings may be older or newer than the one that
        // queued it, during a rolling restart): a failed attempt like any other, so the
        // instances that have it carry on, and it is dropped only after give_up_after.
        let target = (self.apps.get(&delivery.app_id)).and_then(|a| a.webhook.clone());
        while let Some(message) = delivery.messages.get(delivery.sent) {
            let posted = match &target {
                Some(target) => self.post(target, message).await,
                None => Err("this instance has no webhook for the app".to_owned()),
            };
            crate::telemetry::webhook_attempt(posted.is_ok());
            match posted {
                Ok(()) => delivery.sent += 1,
                Err(why) => {
                    delivery.attempts += 1;
                    let since = *delivery.failing_since.get_or_insert(claim.now);
                    if since.until(claim.now) >= self.give_up_after {
                        tracing::error!(
                            app = %delivery.app_id, id = %message.id, kind = %message.kind, attempts = delivery.attempts,
                            "gave up delivering a webhook: {why}"
                        );
                        crate::telemetry::webhook_given_up();
                        self.settle(&claim, None).await;
                        return;
                    }
                    let wait = backoff(self.first_retry, delivery.attempts);
                    tracing::warn!(
                        app = %delivery.app_id, id = %message.id, attempts = delivery.attempts,
                        "webhook not accepted ({why}); trying again in {}", humantime::format_duration(wait)
                    );
                    self.settle(&claim, Some((&delivery, claim.now.plus(wait))))
                        .await;
                    return;
                }
            }
        }
        self.settle(&claim, None).await;
    }

    /// Finishes the delivery, or makes it due again as it now stands.
    async fn settle(&self, claim: &Claimed, again: Option<(&Delivery, crate::session::Timestamp)>) {
        let settled = match again {
            None => self.store.finish_delivery(claim).await,
            Some((delivery, at)) => self.store.retry_delivery(claim, delivery, at).await,
        };
        match settled {
            Ok(true) => {}
            // Its lease ran out and another instance has it: that one carries on.
            Ok(false) => {
                tracing::warn!(id = %claim.delivery.id, "a webhook delivery outlived its claim")
            }
            Err(e) => {
                tracing::warn!(error = %e, id = %claim.delivery.id, "could not update the webhook queue; the delivery comes back when its claim ends")
            }
        }
    }

    /// One signed POST; `Err` says why it did not count as received (never the secret).
    async fn post(&self, target: &WebhookTarget, message: &Message) -> Result<(), String> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let timestamp = i64::try_from(timestamp).unwrap_or(i64::MAX);
        let signature = standardwebhooks::Webhook::new(&target.secret)
            .and_then(|w| w.sign(&message.id, timestamp, message.body.as_bytes()))
            .map_err(|e| format!("cannot sign: {e}"))?;
        let response = self
            .http
            .post(target.url.clone())
            .header("content-type", "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &message.id)
            .header(
                standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
                timestamp.to_string(),
            )
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
            .body(message.body.clone())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Requester, Timestamp};

    #[test]
    fn retries_double_from_the_first_wait_up_to_an_hour() {
        let first = Duration::from_secs(5);
        let waits: Vec<u64> = (1..=12).map(|n| backoff(first, n).as_secs()).collect();
        assert_eq!(
            waits,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(backoff(first, u32::MAX), LONGEST_BACKOFF);
    }

    #[test]
    fn a_registration_tells_of_the_passkey_before_the_completion() {
        let event = AuditEvent::new(Action::Registration, "shop", Timestamp::from_millis(0))
            .user("usr_1")
            .passkey(b"key")
            .phone(&Requester::default());
        let delivery = delivery_for(&event).unwrap();
        let kinds: Vec<&str> = delivery.messages.iter().map(|m| m.kind.as_str()).collect();
        assert_eq!(kinds, ["passkey.created", "session.completed"]);
        let body: serde_json::Value = serde_json::from_str(&delivery.messages[0].body).unwrap();
        assert_eq!(body["data"]["user_id"], "usr_1");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:00.000Z");
        assert!(
            body["data"].get("phone").is_none(),
            "addresses stay in the trail"
        );
        let refused = AuditEvent::new(Action::PasskeyRefused, "shop", Timestamp::from_millis(0));
        assert!(delivery_for(&refused).is_none());
    }
}
