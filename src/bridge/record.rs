//! Where the bridge and the management commands write what happened: the audit trail (and, for the events an app hears about, its webhook queue).

use std::sync::Arc;
use std::time::Duration;

use crate::audit::AuditEvent;
use crate::store::Store;

/// Writes events to the store. A trail that cannot be written is logged, never a refusal of the
/// sign-in it describes: the person's request has already been decided.
#[derive(Clone)]
pub struct Recorder {
    store: Arc<dyn Store>,
    keep: Duration,
}

impl Recorder {
    pub fn new(store: Arc<dyn Store>, keep: Duration) -> Self {
        Recorder { store, keep }
    }

    pub async fn record(&self, event: AuditEvent) {
        if let Err(e) = self.store.append_audit(&event, self.keep).await {
            tracing::error!(error = %e, action = ?event.action, id = %event.id, "could not write an audit event");
        }
    }
}
