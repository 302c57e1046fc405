//! Managing people: list and remove users, list and revoke passkeys, sign a user out everywhere, on whichever store.
//!
//! The commands (`qr-bridge users|passkeys`) call [`Manager::run`]: directly on Redis, which every
//! instance shares, and through the running bridge's admin socket ([`socket`]) on the embedded
//! store, whose users live in that one process.

pub mod socket;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::account::{StoredPasskey, User};
use crate::apps::Apps;
use crate::audit::{Action, AuditEvent, Query};
use crate::bridge::Recorder;
use crate::session::{Timestamp, UserId};
use crate::store::{LoadedUser, Replaced, Store, StoreError};
use crate::token::{LONGEST_TOKEN_TTL, RETIRED_GRACE};

/// How often a change judged on a read is tried again when another writer came first.
const ATTEMPTS: usize = 8;

/// A sign-out reaches a little into the future. Tokens carry their instance's clock (`iat`) and
/// the sign-out the store's, which may differ by a little; and a sign-in already past its check
/// when the sign-out lands mints its token a moment later. Both are refused this way; a person
/// who signs in again within these seconds is refused once and simply signs in again.
const SIGN_OUT_MARGIN: Duration = Duration::from_secs(5);

/// One management request, as the command line and the admin socket carry it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    ListUsers { app: Option<String> },
    ShowUser { user: String },
    RemoveUser { user: String },
    SignOut { user: String },
    ListPasskeys { user: String },
    RevokePasskey { passkey: String },
    Audit { query: Query },
}

/// A request with who asked (`user@host`), as the admin socket carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub operator: String,
    pub request: Request,
}

/// Who runs this command: the login name and the machine, for the trail.
pub fn operator() -> String {
    let user = (std::env::var("USER").or_else(|_| std::env::var("LOGNAME")))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

/// What a request found or did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Reply {
    Users(Vec<UserView>),
    User(UserView),
    Passkeys(Vec<PasskeyView>),
    /// A change was made: which user it concerned, and from when their older tokens fail.
    SignedOut {
        user: UserView,
        at: String,
    },
    /// The audit trail's events that matched, oldest first.
    Audit(Vec<AuditEvent>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub app_id: String,
    pub external_user_id: Option<String>,
    pub created_at: String,
    pub passkeys: Vec<PasskeyView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    /// The credential id, base64url: what `passkeys revoke` takes.
    pub id: String,
    pub user_id: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("no app {0} in the settings")]
    UnknownApp(String),
    #[error("no user {0}")]
    UnknownUser(String),
    #[error("no passkey {0}")]
    UnknownPasskey(String),
    #[error("the user kept changing while this was tried; try again")]
    Contended,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The management operations over one store and the apps the settings name.
pub struct Manager {
    store: Arc<dyn Store>,
    apps: Arc<Apps>,
    recorder: Recorder,
}

impl Manager {
    /// Over `store`, for the settings' apps; changes are kept in the trail for `audit_retention`.
    pub fn new(store: Arc<dyn Store>, apps: Arc<Apps>, audit_retention: Duration) -> Self {
        let recorder = Recorder::new(store.clone(), audit_retention, apps.clone());
        Self {
            store,
            apps,
            recorder,
        }
    }

    /// Runs `request` for `operator` (who ran the command, `user@host`, as the trail keeps it).
    pub async fn run(&self, request: Request, operator: &str) -> Result<Reply, ManageError> {
        match request {
            Request::ListUsers { app } => self.list_users(app.as_deref()).await.map(Reply::Users),
            Request::ShowUser { user } => Ok(Reply::User(view(&self.find(&user).await?.user))),
            Request::ListPasskeys { user } => Ok(Reply::Passkeys(
                view(&self.find(&user).await?.user).passkeys,
            )),
            Request::RemoveUser { user } => self.remove(&user, operator).await,
            Request::Audit { query } => {
                let since = query.since.unwrap_or(Timestamp::from_millis(0));
                let events = self.store.read_audit(since).await?;
                Ok(Reply::Audit(
                    events.into_iter().filter(|e| query.matches(e)).collect(),
                ))
            }
            Request::SignOut { user } => {
                let user = self.find(&user).await?.user;
                let (now, at) = self.sign_out(&user).await?;
                let event = AuditEvent::new(Action::SignedOut, &user.app_id, now)
                    .user(user.id.as_str())
                    .operator(operator);
                self.recorder.record(event).await;
                Ok(Reply::SignedOut {
                    user: view(&user),
                    at: crate::clock::iso8601(at),
                })
            }
            Request::RevokePasskey { passkey } => self.revoke_passkey(&passkey, operator).await,
        }
    }

    fn app_ids(&self, only: Option<&str>) -> Result<Vec<String>, ManageError> {
        if let Some(id) = only {
            return match self.apps.get(id) {
                Some(app) => Ok(vec![app.id.clone()]),
                None => Err(ManageError::UnknownApp(id.to_owned())),
            };
        }
        let mut ids: Vec<String> = self.apps.iter().map(|a| a.id.clone()).collect();
        ids.sort();
        Ok(ids)
    }

    async fn list_users(&self, app: Option<&str>) -> Result<Vec<UserView>, ManageError> {
        let mut users = Vec::new();
        for app in self.app_ids(app)? {
            users.extend(
                (self.store.list_users(&app).await?.iter()).map(|loaded| view(&loaded.user)),
            );
        }
        Ok(users)
    }

    /// A user by id, in whichever app holds it (ids are random UUIDs: one app at most).
    async fn find(&self, id: &str) -> Result<LoadedUser, ManageError> {
        let user = UserId::new(id);
        for app in self.app_ids(None)? {
            if let Some(loaded) = self.store.load_user(&app, &user).await? {
                return Ok(loaded);
            }
        }
        Err(ManageError::UnknownUser(id.to_owned()))
    }

    /// Every token issued to `user` until now (and for [`SIGN_OUT_MARGIN`]) fails from now on,
    /// on every instance. Safe to repeat: a later time replaces an earlier one.
    /// Returns the store's time now, and the time before which tokens are refused.
    async fn sign_out(&self, user: &User) -> Result<(Timestamp, Timestamp), ManageError> {
        let now = self.store.now().await?;
        let at = now.plus(SIGN_OUT_MARGIN);
        // Whatever token_ttl an instance runs with, no token it issued outlives this.
        let until = at.plus(LONGEST_TOKEN_TTL + RETIRED_GRACE);
        self.store
            .sign_out_user(&user.app_id, &user.id, at, until)
            .await?;
        Ok((now, at))
    }

    async fn remove(&self, id: &str, operator: &str) -> Result<Reply, ManageError> {
        for _ in 0..ATTEMPTS {
            let loaded = self.find(id).await?;
            let user = &loaded.user;
            // Signed out first: should the removal fail, the tokens are dead already, and the
            // command can be run again (a removed user could no longer be found to sign out).
            let (now, at) = self.sign_out(user).await?;
            match self
                .store
                .remove_user(&user.app_id, &user.id, loaded.rev)
                .await?
            {
                Replaced::Done => {
                    let event = AuditEvent::new(Action::UserRemoved, &user.app_id, now)
                        .user(user.id.as_str())
                        .operator(operator);
                    self.recorder.record(event).await;
                    return Ok(Reply::SignedOut {
                        user: view(user),
                        at: crate::clock::iso8601(at),
                    });
                }
                Replaced::Stale => continue,
                Replaced::Gone | Replaced::Expired => {
                    return Err(ManageError::UnknownUser(id.to_owned()));
                }
            }
        }
        Err(ManageError::Contended)
    }

    /// Takes the passkey off its user, so it can no longer sign in, and signs the user out:
    /// a token it produced may be in a thief's hands.
    async fn revoke_passkey(&self, credential: &str, operator: &str) -> Result<Reply, ManageError> {
        let unknown = || ManageError::UnknownPasskey(credential.to_owned());
        let raw = URL_SAFE_NO_PAD
            .decode(credential.trim_end_matches('='))
            .map_err(|_| unknown())?;
        for _ in 0..ATTEMPTS {
            let Some(mut loaded) = self.holder(&raw).await? else {
                return Err(unknown());
            };
            loaded
                .user
                .passkeys
                .retain(|p| p.passkey.cred_id().as_slice() != raw.as_slice());
            // As for a removal: the tokens die first.
            let (now, at) = self.sign_out(&loaded.user).await?;
            match self.store.replace_user(&loaded.user, loaded.rev).await? {
                Replaced::Done => {
                    let event = AuditEvent::new(Action::PasskeyRevoked, &loaded.user.app_id, now)
                        .user(loaded.user.id.as_str())
                        .passkey(&raw)
                        .operator(operator);
                    self.recorder.record(event).await;
                    return Ok(Reply::SignedOut {
                        user: view(&loaded.user),
                        at: crate::clock::iso8601(at),
                    });
                }
                Replaced::Stale => continue,
                Replaced::Gone | Replaced::Expired => return Err(unknown()),
            }
        }
        Err(ManageError::Contended)
    }

    /// The user holding a credential: a search of every app's users, fine for a command run by
    /// hand (no request ever takes this path).
    async fn holder(&self, credential: &[u8]) -> Result<Option<LoadedUser>, ManageError> {
        for app in self.app_ids(None)? {
            for loaded in self.store.list_users(&app).await? {
                if loaded.user.passkey(credential).is_some() {
                    return Ok(Some(loaded));
                }
            }
        }
        Ok(None)
    }
}

fn view(user: &User) -> UserView {
    UserView {
        id: user.id.to_string(),
        app_id: user.app_id.clone(),
        external_user_id: user.external_user_id.clone(),
        created_at: crate::clock::iso8601(user.created_at),
        passkeys: user
            .passkeys
            .iter()
            .map(|p| passkey_view(user, p))
            .collect(),
    }
}

fn passkey_view(user: &User, stored: &StoredPasskey) -> PasskeyView {
    PasskeyView {
        id: URL_SAFE_NO_PAD.encode(stored.passkey.cred_id().as_slice()),
        user_id: user.id.to_string(),
        created_at: crate::clock::iso8601(stored.created_at),
        last_used_at: stored.last_used_at.map(crate::clock::iso8601),
    }
}
