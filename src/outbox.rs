//! What waits to be sent to an app's backend: webhook deliveries as the store queues them (the sending is `webhooks`).

use serde::{Deserialize, Serialize};

use crate::session::Timestamp;

/// One webhook: its id (`webhook-id`, the same on every attempt), its type, and the exact JSON
/// body that is signed and sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub body: String,
}

/// The messages of one moment of one session (a registration's `passkey.created` then its
/// `session.completed`), sent in order: the next only once the one before was accepted, so a
/// backend never hears of a completion before the passkey it was made with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: String,
    pub app_id: String,
    pub messages: Vec<Message>,
    /// How many of `messages` the backend has accepted.
    #[serde(default)]
    pub sent: usize,
    /// Failed attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// When the first attempt failed: retries stop a while after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<Timestamp>,
}

/// A delivery taken from the queue by one instance until its lease ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    pub delivery: Delivery,
    /// Names this claim: only its holder may finish or reschedule the delivery.
    pub token: String,
    /// The store's clock when it was claimed.
    pub now: Timestamp,
}
