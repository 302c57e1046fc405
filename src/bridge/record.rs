//! Where the bridge and the management commands write what happened: the audit trail (and, for the events an app hears about, its webhook queue).

use std::sync::Arc;
use std::time::Duration;

use crate::apps::Apps;
use crate::audit::AuditEvent;
use crate::store::Store;
use crate::webhooks::delivery_for;

/// Writes events to the store. A trail that cannot be written is logged, never a refusal of the
/// sign-in it describes: the person's request has already been decided.
/// The events an app's backend hears about are queued for its webhook as well.
#[derive(Clone)]
pub struct Recorder {
    store: Arc<dyn Store>,
    keep: Duration,
    apps: Arc<Apps>,
}

impl Recorder {
    pub fn new(store: Arc<dyn Store>, keep: Duration, apps: Arc<Apps>) -> Self {
        Recorder { store, keep, apps }
    }

    pub async fn record(&self, event: AuditEvent) {
        if let Err(e) = self.store.append_audit(&event, self.keep).await {
            tracing::error!(error = %e, action = ?event.action, id = %event.id, "could not write an audit event");
        }
        let hooked = self
            .apps
            .get(&event.app_id)
            .is_some_and(|a| a.webhook.is_some());
        if let Some(delivery) = delivery_for(&event).filter(|_| hooked)
            && let Err(e) = self.store.enqueue_delivery(&delivery).await
        {
            tracing::error!(error = %e, action = ?event.action, id = %event.id, "could not queue a webhook");
        }
    }
}
