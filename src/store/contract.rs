//! The behaviour every store promises, run against each backend (Redis at `REDIS_URL`, and a Redis Cluster of the tests' own).
//!
//! Longer than 400 lines: a test suite, one function per promise, and each runs on both backends.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::account::{Ceremony, User};
use crate::clock::Clock;
use crate::passkey::Passkeys;
use crate::session::{Event, Kind, NewSession, State};
use crate::settings::Settings;

fn redis_url() -> String {
    crate::testing::redis_url().unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// Deletes every key under a test's own prefix when the test ends, whatever its outcome.
pub(crate) struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(client) = ::redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{}:*", self.0))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = ::redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// The embedded store on a clock the test turns.
async fn memory() -> (Arc<dyn Store>, Clock) {
    let clock = Clock::turnable();
    (Arc::new(MemoryStore::in_memory(clock.clone())), clock)
}

/// Lets `by` pass for the store: turns the embedded store's clock; Redis's own clock must be
/// waited for.
async fn pass(clock: &Clock, by: Duration) {
    if !clock.turn(by) {
        tokio::time::sleep(by).await;
    }
}

/// A store under a prefix of its own, or `None` when no Redis answers (the test skips).
async fn redis() -> Option<(Arc<dyn Store>, Option<Cleanup>)> {
    let url = crate::testing::redis_url()?;
    let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(&url, &prefix)
        .await
        .expect("Redis at REDIS_URL (default 127.0.0.1:6379)");
    Some((Arc::new(store), Some(Cleanup(prefix))))
}

/// A store on a Redis Cluster of the test process's own (three masters), under a prefix of its
/// own; the cluster goes with the process, so nothing is cleaned up key by key.
async fn cluster() -> Option<Arc<dyn Store>> {
    let url = crate::testing::cluster_url()?;
    let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(&url, &prefix)
        .await
        .expect("the test's Redis Cluster");
    Some(Arc::new(store))
}

fn new_session(now: Timestamp, ttl: Duration) -> Session {
    Session::new(
        NewSession {
            id: SessionId::from_uuid(uuid::Uuid::new_v4()),
            app_id: "app_contract".into(),
            kind: Kind::Auth,
            polling_token_sha256: "ab".repeat(32),
            approval_context: None,
            external_user_id: None,
            started_by: crate::session::StartedBy::Browser,
            requester: crate::session::Requester::default(),
        },
        now,
        ttl,
    )
}

async fn inserted(store: &dyn Store, ttl: Duration) -> Session {
    let now = store.now().await.unwrap();
    let s = new_session(now, ttl);
    store.insert(&s).await.unwrap();
    s
}

async fn reads_back_what_it_stored(store: Arc<dyn Store>, _clock: Clock) {
    let s = inserted(&*store, Duration::from_secs(60)).await;
    let got = store.load(&s.id).await.unwrap().expect("stored session");
    assert_eq!(got.session, s);
    assert_eq!(got.rev, 1);
    assert!(got.now >= s.created_at && got.now < s.expires_at);
}

async fn unknown_ids_are_absent(store: Arc<dyn Store>, _clock: Clock) {
    let id = SessionId::from_uuid(uuid::Uuid::new_v4());
    assert!(store.load(&id).await.unwrap().is_none());
    let s = new_session(store.now().await.unwrap(), Duration::from_secs(60));
    assert_eq!(store.replace(&id, 1, &s).await.unwrap(), Replaced::Gone);
}

async fn refuses_a_second_insert_of_one_id(store: Arc<dyn Store>, _clock: Clock) {
    let s = inserted(&*store, Duration::from_secs(60)).await;
    assert!(matches!(store.insert(&s).await, Err(StoreError::Duplicate)));
}

async fn replace_is_a_compare_and_set(store: Arc<dyn Store>, _clock: Clock) {
    let s = inserted(&*store, Duration::from_secs(60)).await;
    let mut next = s.clone();
    next.apply(Event::Scan, store.now().await.unwrap()).unwrap();
    assert_eq!(
        store.replace(&s.id, 1, &next).await.unwrap(),
        Replaced::Done
    );
    let got = store.load(&s.id).await.unwrap().unwrap();
    assert_eq!(
        (got.rev, got.session.state_at(got.now)),
        (2, State::Scanned)
    );
    // A writer still holding revision 1 lost the race and must not overwrite.
    assert_eq!(store.replace(&s.id, 1, &s).await.unwrap(), Replaced::Stale);
    assert_eq!(store.load(&s.id).await.unwrap().unwrap().session, next);
}

async fn concurrent_writers_of_one_revision_have_one_winner(store: Arc<dyn Store>, _clock: Clock) {
    let s = inserted(&*store, Duration::from_secs(60)).await;
    let writers = (0..16).map(|i| {
        let store = store.clone();
        let mut next = s.clone();
        tokio::spawn(async move {
            let now = store.now().await.unwrap();
            next.apply(
                if i % 2 == 0 {
                    Event::Deny
                } else {
                    Event::Cancel
                },
                now,
            )
            .unwrap();
            (store.replace(&next.id, 1, &next).await.unwrap(), next)
        })
    });
    let results = futures::future::join_all(writers).await;
    let winners: Vec<_> = results
        .into_iter()
        .map(Result::unwrap)
        .filter(|(r, _)| *r == Replaced::Done)
        .collect();
    assert_eq!(winners.len(), 1);
    let stored = store.load(&s.id).await.unwrap().unwrap();
    assert_eq!((stored.rev, &stored.session), (2, &winners[0].1));
}

async fn writes_after_expiry_are_refused_but_the_session_stays_readable(
    store: Arc<dyn Store>,
    clock: Clock,
) {
    let s = inserted(&*store, Duration::from_millis(80)).await;
    pass(&clock, Duration::from_millis(150)).await;
    let got = store.load(&s.id).await.unwrap().expect("kept after expiry");
    assert_eq!(got.session.state_at(got.now), State::Expired);
    let mut cancelled = s.clone();
    cancelled.apply(Event::Cancel, s.created_at).unwrap();
    assert_eq!(
        store.replace(&s.id, 1, &cancelled).await.unwrap(),
        Replaced::Expired
    );
    assert_eq!(store.load(&s.id).await.unwrap().unwrap().rev, 1);
}

async fn sessions_past_retention_are_gone(store: Arc<dyn Store>, _clock: Clock) {
    let now = store.now().await.unwrap();
    let long_ago =
        Timestamp::from_millis(now.as_millis() - KEPT_AFTER_EXPIRY.as_millis() as u64 - 120_000);
    let old = new_session(long_ago, Duration::from_secs(60));
    store.insert(&old).await.unwrap();
    assert!(store.load(&old.id).await.unwrap().is_none());
}

async fn the_clock_is_wall_time(store: Arc<dyn Store>, _clock: Clock) {
    let local = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let theirs = store.now().await.unwrap().as_millis();
    assert!(
        local.abs_diff(theirs) < 5_000,
        "store clock {theirs} vs local {local}"
    );
}

/// A real sign-in ceremony (its challenge state), as the bridge would store it.
fn ceremony() -> Ceremony {
    let settings = Settings::from_toml(
        r#"
        public_origin = "https://bridge.test"
        [[apps]]
        id = "app_contract"
        name = "Contract"
        publishable_key = "cli_contract_0123456789"
        secret_key_sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
        rp_id = "bridge.test"
        "#,
    )
    .unwrap();
    let passkeys = Passkeys::new(&settings.apps, &settings.public_origin).unwrap();
    passkeys
        .start_sign_in(settings.apps.get("app_contract").unwrap())
        .unwrap()
        .1
}

fn same(a: &Ceremony, b: &Ceremony) -> bool {
    serde_json::to_string(a).unwrap() == serde_json::to_string(b).unwrap()
}

async fn an_expiry_is_noted_by_its_first_reader_only(store: Arc<dyn Store>, clock: Clock) {
    let s = inserted(&*store, Duration::from_millis(100)).await;
    assert!(!store.note_expiry(&s.id).await.unwrap(), "not expired yet");
    pass(&clock, Duration::from_millis(150)).await;
    let noted = futures::future::join_all((0..4).map(|_| store.note_expiry(&s.id))).await;
    let first = noted.iter().filter(|n| *n.as_ref().unwrap()).count();
    assert_eq!(first, 1, "{noted:?}");
    assert!(!store.note_expiry(&s.id).await.unwrap());
    let unknown = SessionId::from_uuid(uuid::Uuid::new_v4());
    assert!(!store.note_expiry(&unknown).await.unwrap());
    assert!(store.load(&s.id).await.unwrap().is_some(), "still readable");
}

async fn the_audit_trail_keeps_events_for_their_retention(store: Arc<dyn Store>, clock: Clock) {
    use crate::audit::{Action, AuditEvent};
    let keep = Duration::from_millis(150);
    let now = store.now().await.unwrap();
    let old = AuditEvent::new(Action::SignIn, "app_a", now).user("usr_old");
    store.append_audit(&old, keep).await.unwrap();
    pass(&clock, Duration::from_millis(250)).await;
    let later = store.now().await.unwrap();
    let new = AuditEvent::new(Action::Declined, "app_b", later);
    store.append_audit(&new, keep).await.unwrap();
    let newer = AuditEvent::new(Action::SignedOut, "app_a", later).user("usr_new");
    store.append_audit(&newer, keep).await.unwrap();
    assert_eq!(
        store.read_audit(Timestamp::from_millis(0)).await.unwrap(),
        [new.clone(), newer.clone()],
        "the old event is gone, the rest kept in order"
    );
    assert_eq!(
        store
            .read_audit(later.plus(Duration::from_secs(60)))
            .await
            .unwrap(),
        []
    );
}

fn delivery(id: &str) -> crate::outbox::Delivery {
    crate::outbox::Delivery {
        id: id.into(),
        app_id: "app_a".into(),
        messages: vec![crate::outbox::Message {
            id: format!("msg_{id}"),
            kind: "session.completed".into(),
            body: "{}".into(),
        }],
        sent: 0,
        attempts: 0,
        failing_since: None,
    }
}

async fn a_webhook_delivery_is_held_by_one_claim_at_a_time(store: Arc<dyn Store>, clock: Clock) {
    let lease = Duration::from_secs(60);
    assert_eq!(store.claim_delivery(lease).await.unwrap(), None);
    store.enqueue_delivery(&delivery("a")).await.unwrap();
    pass(&clock, Duration::from_millis(5)).await;
    store.enqueue_delivery(&delivery("b")).await.unwrap();
    let a = store.claim_delivery(lease).await.unwrap().unwrap();
    assert_eq!(a.delivery, delivery("a"), "first in, first out");
    let b = store.claim_delivery(lease).await.unwrap().unwrap();
    assert_eq!(b.delivery.id, "b");
    assert_eq!(
        store.claim_delivery(lease).await.unwrap(),
        None,
        "a claimed delivery is nobody else's"
    );
    assert!(store.finish_delivery(&a).await.unwrap());
    assert!(!store.finish_delivery(&a).await.unwrap(), "finished once");

    // b failed: it comes back, as it now stands, once due.
    let mut tried = b.delivery.clone();
    tried.attempts = 1;
    let at = b.now.plus(Duration::from_millis(100));
    assert!(store.retry_delivery(&b, &tried, at).await.unwrap());
    assert_eq!(
        store.claim_delivery(lease).await.unwrap(),
        None,
        "not due yet"
    );
    pass(&clock, Duration::from_millis(150)).await;
    let again = store
        .claim_delivery(Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.delivery, tried);

    // Its holder vanished: once the lease ends, someone else takes it, and the old claim is void.
    pass(&clock, Duration::from_millis(150)).await;
    let taken = store.claim_delivery(lease).await.unwrap().unwrap();
    assert_eq!(taken.delivery.id, "b");
    assert_ne!(taken.token, again.token);
    assert!(!store.finish_delivery(&again).await.unwrap());
    assert!(!store.retry_delivery(&again, &tried, at).await.unwrap());
    assert!(store.finish_delivery(&taken).await.unwrap());
    assert_eq!(store.claim_delivery(lease).await.unwrap(), None);
}

async fn a_ceremony_is_taken_once(store: Arc<dyn Store>, _clock: Clock) {
    let s = inserted(&*store, Duration::from_secs(60)).await;
    let c = ceremony();
    store.put_ceremony(&s.id, &c, s.expires_at).await.unwrap();
    assert!(same(
        &store.take_ceremony(&s.id).await.unwrap().expect("stored"),
        &c
    ));
    assert!(
        store.take_ceremony(&s.id).await.unwrap().is_none(),
        "a challenge is answered once"
    );
}

async fn a_newer_ceremony_replaces_the_older(store: Arc<dyn Store>, _clock: Clock) {
    let s = inserted(&*store, Duration::from_secs(60)).await;
    let (old, new) = (ceremony(), ceremony());
    store.put_ceremony(&s.id, &old, s.expires_at).await.unwrap();
    store.put_ceremony(&s.id, &new, s.expires_at).await.unwrap();
    assert!(same(
        &store.take_ceremony(&s.id).await.unwrap().unwrap(),
        &new
    ));
}

async fn concurrent_takers_of_one_ceremony_have_one_winner(store: Arc<dyn Store>, _clock: Clock) {
    let s = inserted(&*store, Duration::from_secs(60)).await;
    store
        .put_ceremony(&s.id, &ceremony(), s.expires_at)
        .await
        .unwrap();
    let takers = (0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.take_ceremony(&s.id).await.unwrap().is_some() })
    });
    let got = futures::future::join_all(takers).await;
    assert_eq!(got.into_iter().filter(|t| *t.as_ref().unwrap()).count(), 1);
}

async fn a_ceremony_ends_with_its_session(store: Arc<dyn Store>, clock: Clock) {
    let s = inserted(&*store, Duration::from_millis(80)).await;
    store
        .put_ceremony(&s.id, &ceremony(), s.expires_at)
        .await
        .unwrap();
    pass(&clock, Duration::from_millis(150)).await;
    assert!(store.take_ceremony(&s.id).await.unwrap().is_none());
}

async fn users_are_found_by_id_and_external_id_within_their_app(
    store: Arc<dyn Store>,
    _clock: Clock,
) {
    let now = store.now().await.unwrap();
    let ada = User::new(
        uuid::Uuid::new_v4(),
        "app_a",
        Some("ada@a.test".into()),
        now,
    );
    let anon = User::new(uuid::Uuid::new_v4(), "app_a", None, now);
    assert_eq!(store.create_user(&ada).await.unwrap(), Created::Done);
    assert_eq!(store.create_user(&anon).await.unwrap(), Created::Done);
    let loaded = store.load_user("app_a", &ada.id).await.unwrap().unwrap();
    assert_eq!(loaded.user.external_user_id, ada.external_user_id);
    assert_eq!(loaded.rev, 1);
    assert_eq!(
        store
            .find_user_by_external_id("app_a", "ada@a.test")
            .await
            .unwrap()
            .unwrap()
            .id,
        ada.id
    );
    assert!(store.load_user("app_a", &anon.id).await.unwrap().is_some());
    assert!(
        store.load_user("app_b", &ada.id).await.unwrap().is_none(),
        "users belong to one app"
    );
    assert!(
        store
            .find_user_by_external_id("app_b", "ada@a.test")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_user_by_external_id("app_a", "nobody")
            .await
            .unwrap()
            .is_none()
    );
}

async fn an_external_id_names_one_user_per_app(store: Arc<dyn Store>, _clock: Clock) {
    let now = store.now().await.unwrap();
    let first = User::new(uuid::Uuid::new_v4(), "app_a", Some("bob".into()), now);
    let second = User::new(uuid::Uuid::new_v4(), "app_a", Some("bob".into()), now);
    assert_eq!(store.create_user(&first).await.unwrap(), Created::Done);
    assert_eq!(
        store.create_user(&second).await.unwrap(),
        Created::ExternalIdTaken
    );
    assert!(
        store
            .load_user("app_a", &second.id)
            .await
            .unwrap()
            .is_none(),
        "a refused user leaves nothing behind"
    );
    let mut same_id = first.clone();
    same_id.external_user_id = None;
    assert_eq!(
        store.create_user(&same_id).await.unwrap(),
        Created::Exists,
        "nor is an existing user overwritten"
    );
    let elsewhere = User::new(uuid::Uuid::new_v4(), "app_b", Some("bob".into()), now);
    assert_eq!(
        store.create_user(&elsewhere).await.unwrap(),
        Created::Done,
        "external ids are unique within an app"
    );
    assert_eq!(
        store
            .find_user_by_external_id("app_a", "bob")
            .await
            .unwrap()
            .unwrap()
            .id,
        first.id
    );
}

async fn concurrent_creators_of_one_external_id_have_one_winner(
    store: Arc<dyn Store>,
    _clock: Clock,
) {
    let now = store.now().await.unwrap();
    let attempts = (0..8).map(|_| {
        let store = store.clone();
        let user = User::new(uuid::Uuid::new_v4(), "app_a", Some("race".into()), now);
        tokio::spawn(async move { store.create_user(&user).await.unwrap() })
    });
    let outcomes = futures::future::join_all(attempts).await;
    let won = outcomes
        .iter()
        .filter(|o| *o.as_ref().unwrap() == Created::Done)
        .count();
    assert_eq!(won, 1, "{outcomes:?}");
}

async fn replace_user_is_a_compare_and_set(store: Arc<dyn Store>, _clock: Clock) {
    let now = store.now().await.unwrap();
    let mut user = User::new(uuid::Uuid::new_v4(), "app_a", Some("cas".into()), now);
    assert_eq!(store.create_user(&user).await.unwrap(), Created::Done);
    user.created_at = Timestamp::from_millis(7);
    assert_eq!(store.replace_user(&user, 2).await.unwrap(), Replaced::Stale);
    assert_eq!(store.replace_user(&user, 1).await.unwrap(), Replaced::Done);
    assert_eq!(
        store.replace_user(&user, 1).await.unwrap(),
        Replaced::Stale,
        "a revision is written once"
    );
    let loaded = store.load_user("app_a", &user.id).await.unwrap().unwrap();
    assert_eq!((loaded.rev, loaded.user.created_at), (2, user.created_at));
    let stranger = User::new(uuid::Uuid::new_v4(), "app_a", None, now);
    assert_eq!(
        store.replace_user(&stranger, 1).await.unwrap(),
        Replaced::Gone
    );
}

async fn users_are_listed_per_app_and_removed_with_their_external_id(
    store: Arc<dyn Store>,
    _clock: Clock,
) {
    let now = store.now().await.unwrap();
    let ada = User::new(uuid::Uuid::new_v4(), "app_a", Some("ada".into()), now);
    let anon = User::new(uuid::Uuid::new_v4(), "app_a", None, now);
    let other = User::new(uuid::Uuid::new_v4(), "app_b", Some("ada".into()), now);
    for user in [&ada, &anon, &other] {
        assert_eq!(store.create_user(user).await.unwrap(), Created::Done);
    }
    let listed = |app: &'static str| {
        let store = store.clone();
        async move {
            let mut ids: Vec<String> = (store.list_users(app).await.unwrap().into_iter())
                .map(|u| u.user.id.to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut both = vec![ada.id.to_string(), anon.id.to_string()];
    both.sort();
    assert_eq!(listed("app_a").await, both);
    assert_eq!(listed("app_b").await, [other.id.to_string()]);

    assert_eq!(
        store.remove_user("app_a", &ada.id, 2).await.unwrap(),
        Replaced::Stale,
        "a removal judged on an old read is refused"
    );
    assert_eq!(
        store.remove_user("app_a", &ada.id, 1).await.unwrap(),
        Replaced::Done
    );
    assert_eq!(
        store.remove_user("app_a", &ada.id, 1).await.unwrap(),
        Replaced::Gone
    );
    assert!(store.load_user("app_a", &ada.id).await.unwrap().is_none());
    assert_eq!(listed("app_a").await, [anon.id.to_string()]);
    assert_eq!(
        listed("app_b").await,
        [other.id.to_string()],
        "other apps untouched"
    );
    let again = User::new(uuid::Uuid::new_v4(), "app_a", Some("ada".into()), now);
    assert_eq!(
        store.create_user(&again).await.unwrap(),
        Created::Done,
        "the external id is free again"
    );
}

async fn a_sign_out_only_moves_forward_and_ends_with_the_tokens_it_guards(
    store: Arc<dyn Store>,
    clock: Clock,
) {
    let now = store.now().await.unwrap();
    let ada = crate::session::UserId::new("usr_ada");
    assert_eq!(store.signed_out_at("app_a", &ada).await.unwrap(), None);
    let until = now.plus(Duration::from_millis(200));
    let at = now.plus(Duration::from_millis(10));
    store.sign_out_user("app_a", &ada, at, until).await.unwrap();
    store
        .sign_out_user("app_a", &ada, now, until)
        .await
        .unwrap();
    assert_eq!(
        store.signed_out_at("app_a", &ada).await.unwrap(),
        Some(at),
        "an earlier sign-out never undoes a later one"
    );
    assert_eq!(store.signed_out_at("app_b", &ada).await.unwrap(), None);
    pass(&clock, Duration::from_millis(350)).await;
    assert_eq!(
        store.signed_out_at("app_a", &ada).await.unwrap(),
        None,
        "forgotten once every token it guards is dead anyway"
    );
}

async fn keys_are_saved_by_version(store: Arc<dyn Store>, _clock: Clock) {
    assert_eq!(store.load_keys().await.unwrap(), None);
    assert!(!store.save_keys(r#"{"keys":[]}"#, 2).await.unwrap());
    assert!(store.save_keys(r#"{"keys":[1]}"#, 1).await.unwrap());
    assert!(
        !store.save_keys(r#"{"keys":[2]}"#, 1).await.unwrap(),
        "of two first writers, one wins"
    );
    let stored = store.load_keys().await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored.json).unwrap(),
        serde_json::json!({"keys": [1]})
    );
    assert!(store.save_keys(r#"{"keys":[3]}"#, 2).await.unwrap());
    assert_eq!(store.load_keys().await.unwrap().unwrap().version, 2);
}

async fn a_revocation_lasts_until_its_token_would_expire(store: Arc<dyn Store>, clock: Clock) {
    let now = store.now().await.unwrap();
    assert!(!store.is_token_revoked("jti-a").await.unwrap());
    store
        .revoke_token("jti-a", now.plus(Duration::from_secs(60)))
        .await
        .unwrap();
    store
        .revoke_token("jti-b", now.plus(Duration::from_millis(100)))
        .await
        .unwrap();
    assert!(store.is_token_revoked("jti-a").await.unwrap());
    assert!(!store.is_token_revoked("jti-c").await.unwrap());
    pass(&clock, Duration::from_millis(250)).await;
    assert!(store.is_token_revoked("jti-a").await.unwrap());
    assert!(
        !store.is_token_revoked("jti-b").await.unwrap(),
        "forgotten once the token is dead anyway"
    );
}

async fn a_write_is_announced_to_its_subscribers_only(store: Arc<dyn Store>, _clock: Clock) {
    let s = inserted(&*store, Duration::from_secs(60)).await;
    let other = inserted(&*store, Duration::from_secs(60)).await;
    let mut watching = store.subscribe(&s.id).await.unwrap();
    let mut elsewhere = store.subscribe(&other.id).await.unwrap();
    let mut next = s.clone();
    next.apply(Event::Scan, store.now().await.unwrap()).unwrap();
    assert_eq!(
        store.replace(&s.id, 1, &next).await.unwrap(),
        Replaced::Done
    );
    let notice = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            // A resync (the Redis hub's first connection) may come first; a change must follow.
            if watching.next().await == Notice::Changed {
                return;
            }
        }
    });
    notice.await.expect("the write is announced");
    let stray = tokio::time::timeout(Duration::from_millis(200), async {
        loop {
            if elsewhere.next().await == Notice::Changed {
                return;
            }
        }
    });
    assert!(
        stray.await.is_err(),
        "another session's subscriber hears nothing"
    );
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod memory_backend {
            $(#[tokio::test] async fn $case() { let (s, clock) = super::memory().await; super::$case(s, clock).await })*
        }
        mod redis_backend {
            $(#[tokio::test] async fn $case() { let Some((s, _c)) = super::redis().await else { return }; super::$case(s, crate::clock::Clock::system()).await })*
        }
        mod redis_cluster_backend {
            $(#[tokio::test] async fn $case() { let Some(s) = super::cluster().await else { return }; super::$case(s, crate::clock::Clock::system()).await })*
        }
    };
}

contract!(
    reads_back_what_it_stored,
    unknown_ids_are_absent,
    refuses_a_second_insert_of_one_id,
    replace_is_a_compare_and_set,
    concurrent_writers_of_one_revision_have_one_winner,
    writes_after_expiry_are_refused_but_the_session_stays_readable,
    sessions_past_retention_are_gone,
    the_clock_is_wall_time,
    an_expiry_is_noted_by_its_first_reader_only,
    the_audit_trail_keeps_events_for_their_retention,
    a_webhook_delivery_is_held_by_one_claim_at_a_time,
    a_ceremony_is_taken_once,
    a_newer_ceremony_replaces_the_older,
    concurrent_takers_of_one_ceremony_have_one_winner,
    a_ceremony_ends_with_its_session,
    users_are_found_by_id_and_external_id_within_their_app,
    an_external_id_names_one_user_per_app,
    concurrent_creators_of_one_external_id_have_one_winner,
    replace_user_is_a_compare_and_set,
    users_are_listed_per_app_and_removed_with_their_external_id,
    a_sign_out_only_moves_forward_and_ends_with_the_tokens_it_guards,
    keys_are_saved_by_version,
    a_revocation_lasts_until_its_token_would_expire,
    a_write_is_announced_to_its_subscribers_only,
);

/// A user stored before the app's user set existed (a hash alone) is found by the commands once
/// `index_users` has run, as `serve` does at start.
#[tokio::test]
async fn redis_users_made_before_the_user_sets_are_listed_after_indexing() {
    let Some((store, cleanup)) = redis().await else {
        return;
    };
    let prefix = cleanup.as_ref().unwrap().0.clone();
    let user = User::new(
        uuid::Uuid::new_v4(),
        "app_a",
        None,
        Timestamp::from_millis(1),
    );
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}:app:{{app_a}}:user:{}", user.id);
    let _: () = ::redis::cmd("HSET")
        .arg(&key)
        .arg("rev")
        .arg(1)
        .arg("body")
        .arg(serde_json::to_string(&user).unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(store.list_users("app_a").await.unwrap().is_empty());
    assert_eq!(
        crate::store::index_users(&redis_url(), &prefix).await,
        Ok(1)
    );
    let listed = store.list_users("app_a").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].user.id, user.id);
    assert_eq!(
        crate::store::index_users(&redis_url(), &prefix).await,
        Ok(0),
        "listed once"
    );
}

/// Instances share Redis: a write through one store reaches a subscriber of another, and a
/// dropped subscription gives the channel back.
#[tokio::test]
async fn redis_notices_cross_instances_and_channels_are_released() {
    let Some((writer, cleanup)) = redis().await else {
        return;
    };
    let prefix = cleanup.as_ref().unwrap().0.clone();
    let reader = RedisStore::connect(&redis_url(), &prefix).await.unwrap();
    let s = inserted(&*writer, Duration::from_secs(60)).await;
    let mut watching = reader.subscribe(&s.id).await.unwrap();
    let mut next = s.clone();
    next.apply(Event::Deny, writer.now().await.unwrap())
        .unwrap();
    writer.replace(&s.id, 1, &next).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(5), async {
        while watching.next().await != Notice::Changed {}
    });
    heard.await.expect("announced across instances");

    let channel = format!("{prefix}:{{{}}}:events", s.id);
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let listeners = |conn: &mut ::redis::aio::MultiplexedConnection| {
        let mut cmd = ::redis::cmd("PUBSUB");
        cmd.arg("NUMSUB").arg(&channel);
        let mut conn = conn.clone();
        async move { cmd.query_async::<(String, u64)>(&mut conn).await.unwrap().1 }
    };
    assert_eq!(listeners(&mut conn).await, 1);
    drop(watching);
    let released = tokio::time::timeout(Duration::from_secs(5), async {
        while listeners(&mut conn).await != 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    released.await.expect("unsubscribed once nobody listens");
}

#[tokio::test]
async fn embedded_users_keys_and_revocations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let user = User::new(
        uuid::Uuid::new_v4(),
        "app_a",
        Some("ada".into()),
        Timestamp::from_millis(1),
    );
    {
        let store = MemoryStore::open(dir.path()).unwrap();
        store.create_user(&user).await.unwrap();
        let mut changed = user.clone();
        changed.created_at = Timestamp::from_millis(2);
        store.replace_user(&changed, 1).await.unwrap();
        assert!(store.save_keys(r#"{"keys":[]}"#, 1).await.unwrap());
        let later = Timestamp::from_millis(u64::MAX / 2);
        store.revoke_token("jti-kept", later).await.unwrap();
        store
            .sign_out_user("app_a", &user.id, Timestamp::from_millis(5), later)
            .await
            .unwrap();
        let event = crate::audit::AuditEvent::new(
            crate::audit::Action::SignIn,
            "app_a",
            store.now().await.unwrap(),
        );
        store
            .append_audit(&event, Duration::from_secs(3600))
            .await
            .unwrap();
    }
    let reopened = MemoryStore::open(dir.path()).unwrap();
    let found = reopened
        .find_user_by_external_id("app_a", "ada")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.created_at),
        (user.id.clone(), Timestamp::from_millis(2))
    );
    assert_eq!(reopened.load_keys().await.unwrap().unwrap().version, 1);
    assert!(
        reopened.is_token_revoked("jti-kept").await.unwrap(),
        "a revoked token stays revoked across a restart"
    );
    assert_eq!(
        reopened.signed_out_at("app_a", &user.id).await.unwrap(),
        Some(Timestamp::from_millis(5)),
        "and a signed-out user stays signed out"
    );
    assert_eq!(
        reopened
            .read_audit(Timestamp::from_millis(0))
            .await
            .unwrap()
            .len(),
        1,
        "and the audit trail is kept"
    );
    // Only the finished files are ever in place: no temporary file is left beside them.
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "audit.jsonl",
            "revoked-tokens.json",
            "signed-out.json",
            "signing-keys.json",
            "users.json"
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("signing-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private keys are the owner's only");
    }
}

/// The cluster under the cluster backend is a real one: sessions land on every shard, each
/// session's notice channel is subscribed on its own shard only, and the store still works.
#[tokio::test]
async fn a_cluster_spreads_sessions_over_its_shards_and_subscribes_each_on_its_own() {
    let Some(url) = crate::testing::cluster_url() else {
        return;
    };
    let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(&url, &prefix).await.unwrap();
    let nodes = super::cluster_nodes(&url).unwrap();
    let mut sessions = Vec::new();
    for _ in 0..30 {
        sessions.push(inserted(&store, Duration::from_secs(60)).await);
    }
    let _listening = store.subscribe(&sessions[0].id).await.unwrap();
    let mut shards_with_keys = 0;
    let mut subscribed_on = Vec::new();
    for node in &nodes {
        let mut conn = ::redis::Client::open(node.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let keys: usize = ::redis::cmd("DBSIZE").query(&mut conn).unwrap();
        shards_with_keys += usize::from(keys > 0);
        // Other tests share the cluster: only this session's channel is counted.
        let (_, listeners): (String, usize) = ::redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(format!("{prefix}:{{{}}}:events", sessions[0].id))
            .query(&mut conn)
            .unwrap();
        subscribed_on.push(listeners);
    }
    assert_eq!(shards_with_keys, nodes.len(), "every shard holds sessions");
    assert_eq!(
        subscribed_on.iter().sum::<usize>(),
        1,
        "one shard has the channel: {subscribed_on:?}"
    );
}

/// Losing the subscriber connections to every shard (`CLIENT KILL TYPE pubsub`): the hub asks
/// again until the shard confirms, its listener is told to re-read, and later writes are heard.
#[tokio::test]
async fn a_cluster_listener_hears_writes_again_after_its_shard_connections_are_killed() {
    let Some(url) = crate::testing::cluster_url() else {
        return;
    };
    let prefix = format!("qrbtest-{}", uuid::Uuid::new_v4().simple());
    let store = RedisStore::connect(&url, &prefix).await.unwrap();
    let s = inserted(&store, Duration::from_secs(60)).await;
    let mut listening = store.subscribe(&s.id).await.unwrap();
    let before = store.pubsub_connections();
    for node in super::cluster_nodes(&url).unwrap() {
        let mut conn = ::redis::Client::open(node.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let _: i64 = ::redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query(&mut conn)
            .unwrap();
    }
    // Write until one is heard (each write may land before the shard confirms again; the
    // resync that follows confirmation is what a stream acts on).
    let mut rev = 1;
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        let mut resynced = false;
        loop {
            assert_eq!(store.replace(&s.id, rev, &s).await.unwrap(), Replaced::Done);
            rev += 1;
            match tokio::time::timeout(Duration::from_millis(300), listening.next()).await {
                Ok(Notice::Changed) if resynced => return,
                Ok(Notice::Resync) => resynced = true,
                _ => {}
            }
        }
    })
    .await;
    assert!(heard.is_ok(), "writes are heard again after the kill");
    assert!(store.pubsub_connections() > before, "the loss was seen");
}

#[tokio::test]
async fn redis_users_never_expire() {
    let Some((store, cleanup)) = redis().await else {
        return;
    };
    let user = User::new(
        uuid::Uuid::new_v4(),
        "app_a",
        Some("ada".into()),
        store.now().await.unwrap(),
    );
    store.create_user(&user).await.unwrap();
    let prefix = &cleanup.as_ref().unwrap().0;
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for key in [
        format!("{prefix}:app:{{app_a}}:user:{}", user.id),
        format!("{prefix}:app:{{app_a}}:ext:ada"),
    ] {
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(ttl, -1, "{key} must exist without expiry");
    }
}

/// What only Redis can show: the key layout and that Redis, not the instance, drops the key.
#[tokio::test]
async fn redis_keys_carry_a_hash_tag_and_a_ttl_on_redis_clock() {
    let Some((store, cleanup)) = redis().await else {
        return;
    };
    let s = inserted(&*store, Duration::from_secs(60)).await;
    let prefix = &cleanup.as_ref().unwrap().0;
    let key = format!("{prefix}:{{{}}}", s.id);
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pexpiretime: i64 = ::redis::cmd("PEXPIRETIME")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        pexpiretime as u64,
        s.expires_at.plus(KEPT_AFTER_EXPIRY).as_millis()
    );
    let exp: u64 = ::redis::cmd("HGET")
        .arg(&key)
        .arg("exp")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exp, s.expires_at.as_millis());
}
