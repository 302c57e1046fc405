//! A store that times every operation and counts its failures, for the metrics; otherwise the store it wraps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Created, Loaded, LoadedUser, Replaced, Store, StoreError, StoredKeys, Subscription};
use crate::account::{Ceremony, User};
use crate::audit::AuditEvent;
use crate::outbox::{Claimed, Delivery};
use crate::session::{Session, SessionId, Timestamp, UserId};
use crate::telemetry;

pub struct Measured(pub Arc<dyn Store>);

/// Runs one operation of the inner store under its name.
macro_rules! timed {
    ($name:literal, $call:expr) => {{
        let started = Instant::now();
        let result = $call;
        telemetry::store_operation($name, started.elapsed(), result.is_err());
        result
    }};
}

#[async_trait]
impl Store for Measured {
    async fn now(&self) -> Result<Timestamp, StoreError> {
        timed!("now", self.0.now().await)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        timed!("ping", self.0.ping().await)
    }
    async fn insert(&self, session: &Session) -> Result<(), StoreError> {
        timed!("insert", self.0.insert(session).await)
    }
    async fn load(&self, id: &SessionId) -> Result<Option<Loaded>, StoreError> {
        timed!("load", self.0.load(id).await)
    }
    async fn replace(
        &self,
        id: &SessionId,
        rev: u64,
        session: &Session,
    ) -> Result<Replaced, StoreError> {
        timed!("replace", self.0.replace(id, rev, session).await)
    }
    async fn note_expiry(&self, id: &SessionId) -> Result<bool, StoreError> {
        timed!("note_expiry", self.0.note_expiry(id).await)
    }
    async fn put_ceremony(
        &self,
        id: &SessionId,
        ceremony: &Ceremony,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        timed!(
            "put_ceremony",
            self.0.put_ceremony(id, ceremony, until).await
        )
    }
    async fn take_ceremony(&self, id: &SessionId) -> Result<Option<Ceremony>, StoreError> {
        timed!("take_ceremony", self.0.take_ceremony(id).await)
    }
    async fn load_user(&self, app_id: &str, id: &UserId) -> Result<Option<LoadedUser>, StoreError> {
        timed!("load_user", self.0.load_user(app_id, id).await)
    }
    async fn find_user_by_external_id(
        &self,
        app_id: &str,
        external_user_id: &str,
    ) -> Result<Option<User>, StoreError> {
        timed!(
            "find_user_by_external_id",
            self.0
                .find_user_by_external_id(app_id, external_user_id)
                .await
        )
    }
    async fn create_user(&self, user: &User) -> Result<Created, StoreError> {
        timed!("create_user", self.0.create_user(user).await)
    }
    async fn replace_user(&self, user: &User, rev: u64) -> Result<Replaced, StoreError> {
        timed!("replace_user", self.0.replace_user(user, rev).await)
    }
    async fn list_users(&self, app_id: &str) -> Result<Vec<LoadedUser>, StoreError> {
        timed!("list_users", self.0.list_users(app_id).await)
    }
    async fn remove_user(
        &self,
        app_id: &str,
        id: &UserId,
        rev: u64,
    ) -> Result<Replaced, StoreError> {
        timed!("remove_user", self.0.remove_user(app_id, id, rev).await)
    }
    async fn sign_out_user(
        &self,
        app_id: &str,
        id: &UserId,
        at: Timestamp,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        timed!(
            "sign_out_user",
            self.0.sign_out_user(app_id, id, at, until).await
        )
    }
    async fn signed_out_at(
        &self,
        app_id: &str,
        id: &UserId,
    ) -> Result<Option<Timestamp>, StoreError> {
        timed!("signed_out_at", self.0.signed_out_at(app_id, id).await)
    }
    async fn load_keys(&self) -> Result<Option<StoredKeys>, StoreError> {
        timed!("load_keys", self.0.load_keys().await)
    }
    async fn save_keys(&self, json: &str, version: u64) -> Result<bool, StoreError> {
        timed!("save_keys", self.0.save_keys(json, version).await)
    }
    async fn revoke_token(&self, jti: &str, until: Timestamp) -> Result<(), StoreError> {
        timed!("revoke_token", self.0.revoke_token(jti, until).await)
    }
    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        timed!("is_token_revoked", self.0.is_token_revoked(jti).await)
    }
    async fn append_audit(&self, event: &AuditEvent, keep: Duration) -> Result<(), StoreError> {
        timed!("append_audit", self.0.append_audit(event, keep).await)
    }
    async fn read_audit(&self, since: Timestamp) -> Result<Vec<AuditEvent>, StoreError> {
        timed!("read_audit", self.0.read_audit(since).await)
    }
    async fn enqueue_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        timed!("enqueue_delivery", self.0.enqueue_delivery(delivery).await)
    }
    async fn claim_delivery(&self, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        timed!("claim_delivery", self.0.claim_delivery(lease).await)
    }
    async fn finish_delivery(&self, claim: &Claimed) -> Result<bool, StoreError> {
        timed!("finish_delivery", self.0.finish_delivery(claim).await)
    }
    async fn retry_delivery(
        &self,
        claim: &Claimed,
        delivery: &Delivery,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        timed!(
            "retry_delivery",
            self.0.retry_delivery(claim, delivery, at).await
        )
    }
    async fn subscribe(&self, id: &SessionId) -> Result<Subscription, StoreError> {
        timed!("subscribe", self.0.subscribe(id).await)
    }
}
